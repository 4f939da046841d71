/* `cxrd serve --config FILE`: loads the configuration and the model (refusing to start without
 * one), serves the v1 API until SIGTERM or SIGINT, then shuts down gracefully: no new
 * connections, requests in flight finished and answered. SIGHUP re-reads FILE for the auth
 * keys, the revocation list, the site thresholds, the log level and format, without stopping. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "api/api.h"
#include "cli/cli.h"
#include "http/http.h"
#include "report/report.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: cxrd serve --config FILE\n\n"
            "Serves the v1 HTTP API (POST /single_inference, POST /bulk_inference, GET /ping)\n"
            "and cxrd's own routes (GET /metrics, /openapi.json, /results, /ui, and /jobs; see\n"
            "README, \"HTTP API\") as configured in FILE (README, \"Configuration\"). Stops\n"
            "gracefully on SIGTERM or SIGINT. SIGHUP reloads the auth keys ([auth] secret,\n"
            "public_key, key_id, keys_dir), the revocation list ([auth] revoked), the\n"
            "[thresholds] section, log_level and log_format; other changes need a restart.\n");
}

static void reload(const char *config_path, struct cxr_api *api, struct cxr_server *server)
{
    struct cxr_config fresh;
    struct cxr_err err = CXR_ERR_INIT;
    sd_notify(0, "RELOADING=1");
    if (cxr_config_load(config_path, &fresh, &err) != CXR_OK) {
        cxr_log(CXR_LOG_ERROR, "SIGHUP: keeping the running configuration: %s", err.message);
        sd_notify(0, "READY=1");
        return;
    }
    if (cxr_http_server_reload_auth(server, &fresh, &err) != CXR_OK) {
        cxr_log(CXR_LOG_ERROR, "SIGHUP: keeping the running keys: %s", err.message);
    } else {
        enum cxr_log_level level = CXR_LOG_INFO;
        enum cxr_log_format format = CXR_LOG_TEXT;
        cxr_log_level_parse(fresh.log_level, &level);
        cxr_log_format_parse(fresh.log_format, &format);
        cxr_log_set_level(level);
        cxr_log_set_format(format);
        cxr_log(CXR_LOG_INFO, "SIGHUP: reloaded %s (log_level %s, log_format %s)", config_path,
                fresh.log_level, fresh.log_format);
    }
    struct cxr_err thresholds_err = CXR_ERR_INIT;
    if (cxr_api_thresholds_reload(api, &fresh.thresholds, &thresholds_err) != CXR_OK)
        cxr_log(CXR_LOG_ERROR, "SIGHUP: keeping the running thresholds (%s): %s",
                cxr_api_thresholds_used(api), thresholds_err.message);
    else
        cxr_log(CXR_LOG_INFO, "SIGHUP: thresholds: %s", cxr_api_thresholds_used(api));
    cxr_config_release(&fresh);
    sd_notify(0, "READY=1");
}

int cxr_cli_serve(int argc, char **argv)
{
    static const struct option options[] = {
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    optind = 1;
    for (int option; (option = getopt_long(argc, argv, "c:h", options, NULL)) != -1;) {
        if (option == 'c') {
            if (!cxr_cli_option_once("serve", "config", &config_path, optarg))
                return 2;
        } else if (option == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (config_path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }

    /* Block the stop signals before any thread starts so that every thread inherits the mask
     * and only sigwait below receives them. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct cxr_config config;
    struct cxr_err err = CXR_ERR_INIT;
    if (cxr_config_load(config_path, &config, &err) != CXR_OK) {
        fprintf(stderr, "cxrd serve: %s\n", err.message);
        return 1;
    }
    enum cxr_log_level level = CXR_LOG_INFO;
    cxr_log_level_parse(config.log_level, &level);
    cxr_log_set_level(level);
    enum cxr_log_format format = CXR_LOG_TEXT;
    cxr_log_format_parse(config.log_format, &format);
    cxr_log_set_format(format);

    struct cxr_api *api = NULL;
    struct cxr_server *server = NULL;
    bool created = cxr_api_create(&config, &api, &err) == CXR_OK;
    if (created) {
        /* Temp files of a server killed inside a commit, before any request can write. */
        size_t swept = cxr_api_output_sweep(api);
        if (swept)
            cxr_log(CXR_LOG_INFO, "removed %zu stale temp files under the output root", swept);
    }
    if (!created || cxr_http_server_start(&config, api, &server, &err) != CXR_OK) {
        fprintf(stderr, "cxrd serve: not starting: %s\n", err.message);
        cxr_api_destroy(api);
        cxr_config_release(&config);
        return 1;
    }
    cxr_log(CXR_LOG_INFO,
            "cxrd serve: listening on %s port %u; model %s (version %s); %u workers, queue %u",
            config.address, (unsigned)cxr_http_server_port(server), config.model_path,
            cxr_api_model_version(api), config.workers, config.queue_size);
    cxr_log(CXR_LOG_INFO, "thresholds: %s", cxr_api_thresholds_used(api));
    /* Under systemd (Type=notify): ready only now that the model is loaded and the port open.
     * Without NOTIFY_SOCKET this does nothing. */
    sd_notifyf(0, "READY=1\nSTATUS=serving on port %u, model %s",
               (unsigned)cxr_http_server_port(server), cxr_api_model_version(api));

    int received = 0;
    while (sigwait(&stop_signals, &received) == 0 && received == SIGHUP)
        reload(config_path, api, server);
    cxr_log(CXR_LOG_INFO, "cxrd serve: %s received, finishing requests in flight",
            received == SIGTERM ? "SIGTERM" : "SIGINT");
    sd_notify(0, "STOPPING=1\nSTATUS=finishing requests in flight");
    cxr_http_server_stop(server, config.shutdown_grace_s);
    cxr_api_destroy(api);
    cxr_report_shutdown(); /* every worker has joined: free the font caches */
    cxr_config_release(&config);
    cxr_log(CXR_LOG_INFO, "cxrd serve: stopped");
    return 0;
}
