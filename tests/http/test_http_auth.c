/* JWT checks: tokens minted by `cxrd token` pass; missing, malformed, tampered, wrong key, wrong
 * algorithm (including HS256 signed with the RS256 public key), alg none, unsigned, expired and
 * not-yet-valid tokens are refused with the right outcome; short HS256 secrets are refused; kid
 * picks one of several keys and a revoked jti is refused. RS256/ES256 keys come from openssl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <jwt.h>

#include "http/http.h"

static const time_t now = 1900000000;

static void config_for(struct cxr_config *config, const char *algorithm, const char *secret,
                       const char *public_key, const char *private_key)
{
    unsetenv("CXRD_JWT_SECRET");
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_config_load(NULL, config, &err), CXR_OK);
    free(config->jwt_algorithm);
    config->jwt_algorithm = strdup(algorithm);
    free(config->jwt_secret);
    config->jwt_secret = strdup(secret);
    free(config->jwt_public_key);
    config->jwt_public_key = strdup(public_key);
    free(config->jwt_private_key);
    config->jwt_private_key = strdup(private_key);
}

/* Not inlined: gcc 12 at -O3 takes the returned token for a dangling pointer to the local
 * (-Wdangling-pointer, a false positive through cmocka's assert). */
__attribute__((noinline)) static char *mint(const struct cxr_config *config, const char *subject,
                                            uint64_t ttl, time_t at)
{
    char *token = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_http_auth_token_mint(config, subject, ttl, at, &token, &err), CXR_OK);
    return token;
}

static void base64url(const char *text, char *out)
{
    cxr_base64_encode((const uint8_t *)text, strlen(text), out);
    for (char *c = out; *c; c++) {
        if (*c == '+')
            *c = '-';
        else if (*c == '/')
            *c = '_';
        else if (*c == '=')
            *c = '\0';
    }
}

static enum cxr_http_auth_outcome check(const struct cxr_auth *auth, const char *header)
{
    char subject[64];
    return cxr_http_auth_check(auth, header, now, subject, sizeof subject);
}

static void hs256_round_trip_and_refusals(void **state)
{
    (void)state;
    struct cxr_config config;
    config_for(&config, "HS256", "0123456789abcdef0123456789abcdef", "", "");
    struct cxr_auth *auth = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_http_auth_create(&config, &auth, &err), CXR_OK);

    char *token = mint(&config, "pacs-gateway", 3600, now - 10);
    char subject[64] = "";
    assert_int_equal(cxr_http_auth_check(auth, token, now, subject, sizeof subject), CXR_AUTH_OK);
    assert_string_equal(subject, "pacs-gateway");
    free(token);
    /* A subject longer than the room for it is cut between characters, never inside one. */
    char long_subject[128] = "";
    for (int i = 0; i < 40; i++)
        strcat(long_subject, "\xc3\xa9"); /* U+00E9, two bytes */
    token = mint(&config, long_subject, 3600, now - 10);
    assert_int_equal(cxr_http_auth_check(auth, token, now, subject, sizeof subject), CXR_AUTH_OK);
    assert_int_equal(strlen(subject), 62);
    assert_memory_equal(subject, long_subject, 62);
    free(token);
    token = mint(&config, "pacs-gateway", 3600, now - 10);
    char bearer[1024];
    snprintf(bearer, sizeof bearer, "Bearer %s", token);
    assert_int_equal(check(auth, bearer), CXR_AUTH_OK);
    snprintf(bearer, sizeof bearer, "bearer   %s  ", token);
    assert_int_equal(check(auth, bearer), CXR_AUTH_OK);

    /* Missing and malformed. */
    assert_int_equal(check(auth, NULL), CXR_AUTH_MISSING);
    assert_int_equal(check(auth, ""), CXR_AUTH_MISSING);
    assert_int_equal(check(auth, "Bearer "), CXR_AUTH_INVALID);
    assert_int_equal(check(auth, "not-a-token"), CXR_AUTH_INVALID);
    assert_int_equal(check(auth, "a.b"), CXR_AUTH_INVALID);
    assert_int_equal(check(auth, "a.b.c.d"), CXR_AUTH_INVALID);
    assert_int_equal(check(auth, "!!!.???.***"), CXR_AUTH_INVALID);

    /* Tampered payload: same header and signature, a different subject. */
    char tampered[1024];
    snprintf(tampered, sizeof tampered, "%s", token);
    char *payload = strchr(tampered, '.') + 1;
    char *signature = strchr(payload, '.');
    char forged[256];
    base64url("{\"sub\":\"admin\",\"exp\":1999999999}", forged);
    char rebuilt[1024];
    snprintf(rebuilt, sizeof rebuilt, "%.*s.%s%s", (int)(payload - 1 - tampered), tampered, forged,
             signature);
    assert_int_equal(check(auth, rebuilt), CXR_AUTH_INVALID);
    /* Flipped signature character. */
    snprintf(tampered, sizeof tampered, "%s", token);
    char *last = tampered + strlen(tampered) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    assert_int_equal(check(auth, tampered), CXR_AUTH_INVALID);
    /* Unsigned: empty signature segment. */
    snprintf(tampered, sizeof tampered, "%.*s.", (int)(signature - tampered), token);
    assert_int_equal(check(auth, tampered), CXR_AUTH_INVALID);

    /* alg none, with and without a signature segment. */
    char header_none[128], claims[256], none_token[512];
    base64url("{\"alg\":\"none\",\"typ\":\"JWT\"}", header_none);
    base64url("{\"sub\":\"x\",\"exp\":1999999999}", claims);
    snprintf(none_token, sizeof none_token, "%s.%s.", header_none, claims);
    assert_int_equal(check(auth, none_token), CXR_AUTH_INVALID);
    snprintf(none_token, sizeof none_token, "%s.%s.c2lnbmF0dXJl", header_none, claims);
    assert_int_equal(check(auth, none_token), CXR_AUTH_INVALID);

    /* Wrong secret. */
    struct cxr_config other;
    config_for(&other, "HS256", "another-secret-another-secret-xx", "", "");
    char *foreign = mint(&other, "x", 3600, now);
    assert_int_equal(check(auth, foreign), CXR_AUTH_INVALID);

    /* Expired (exp passed) and not yet valid (nbf in the future). */
    char *expired = mint(&config, "x", 60, now - 61);
    assert_int_equal(check(auth, expired), CXR_AUTH_EXPIRED);
    char *early = mint(&config, "x", 3600, now + 120);
    assert_int_equal(check(auth, early), CXR_AUTH_INVALID);

    /* A validly signed token without exp is refused: it would never expire. */
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grant(jwt, "sub", "forever"), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)config.jwt_secret,
                                 (int)strlen(config.jwt_secret)),
                     0);
    char *no_exp = jwt_encode_str(jwt);
    assert_non_null(no_exp);
    assert_int_equal(check(auth, no_exp), CXR_AUTH_INVALID);
    free(no_exp);
    jwt_free(jwt);
    free(token);
    free(foreign);
    free(expired);
    free(early);
    cxr_http_auth_destroy(auth);
    cxr_config_release(&config);
    cxr_config_release(&other);
}

struct keys {
    char folder[64];
    char rsa_private[128], rsa_public[128], ec_private[128], ec_public[128];
};

static int keys_setup(void **state)
{
    struct keys *keys = calloc(1, sizeof *keys);
    strcpy(keys->folder, "/tmp/cxr-keys-XXXXXX");
    if (mkdtemp(keys->folder) == NULL)
        return -1;
    snprintf(keys->rsa_private, sizeof keys->rsa_private, "%s/rsa.pem", keys->folder);
    snprintf(keys->rsa_public, sizeof keys->rsa_public, "%s/rsa.pub.pem", keys->folder);
    snprintf(keys->ec_private, sizeof keys->ec_private, "%s/ec.pem", keys->folder);
    snprintf(keys->ec_public, sizeof keys->ec_public, "%s/ec.pub.pem", keys->folder);
    char command[1024];
    snprintf(command, sizeof command,
             "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null &&"
             " openssl pkey -in %s -pubout -out %s &&"
             " openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s &&"
             " openssl pkey -in %s -pubout -out %s",
             keys->rsa_private, keys->rsa_private, keys->rsa_public, keys->ec_private,
             keys->ec_private, keys->ec_public);
    if (system(command) != 0)
        return -1;
    *state = keys;
    return 0;
}

static int keys_teardown(void **state)
{
    struct keys *keys = *state;
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", keys->folder);
    int rc = system(command);
    free(keys);
    return rc == 0 ? 0 : -1;
}

static void public_key_algorithms(void **state)
{
    struct keys *keys = *state;
    struct cxr_config rsa, ec;
    config_for(&rsa, "RS256", "", keys->rsa_public, keys->rsa_private);
    config_for(&ec, "ES256", "", keys->ec_public, keys->ec_private);
    struct cxr_auth *rsa_auth = NULL, *ec_auth = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_http_auth_create(&rsa, &rsa_auth, &err), CXR_OK);
    assert_int_equal(cxr_http_auth_create(&ec, &ec_auth, &err), CXR_OK);

    char *rsa_token = mint(&rsa, "ris", 3600, now);
    char *ec_token = mint(&ec, "ris", 3600, now);
    assert_int_equal(check(rsa_auth, rsa_token), CXR_AUTH_OK);
    assert_int_equal(check(ec_auth, ec_token), CXR_AUTH_OK);
    /* Each server refuses the other algorithm. */
    assert_int_equal(check(rsa_auth, ec_token), CXR_AUTH_INVALID);
    assert_int_equal(check(ec_auth, rsa_token), CXR_AUTH_INVALID);

    /* Algorithm confusion: HS256 signed with the RSA public key's PEM text as the secret. */
    struct cxr_buf pem = CXR_BUF_INIT(0);
    assert_int_equal(cxr_file_read(keys->rsa_public, 1 << 16, &pem, &err), CXR_OK);
    assert_int_equal(cxr_buf_append(&pem, "", 1), CXR_OK);
    struct cxr_config confused;
    config_for(&confused, "HS256", (const char *)pem.data, "", "");
    char *confused_token = mint(&confused, "attacker", 3600, now);
    assert_int_equal(check(rsa_auth, confused_token), CXR_AUTH_INVALID);

    /* RS256 needs a public key to verify; a missing one is a start-up error. */
    struct cxr_config broken;
    config_for(&broken, "RS256", "", "/nonexistent/key.pem", "");
    struct cxr_auth *none = NULL;
    struct cxr_err err2 = CXR_ERR_INIT;
    assert_int_not_equal(cxr_http_auth_create(&broken, &none, &err2), CXR_OK);
    assert_null(none);
    /* HS256 without a secret too. */
    struct cxr_config empty;
    config_for(&empty, "HS256", "", "", "");
    struct cxr_err err3 = CXR_ERR_INIT;
    assert_int_equal(cxr_http_auth_create(&empty, &none, &err3), CXR_ERR_INVALID_ARG);

    free(rsa_token);
    free(ec_token);
    free(confused_token);
    cxr_buf_release(&pem);
    cxr_http_auth_destroy(rsa_auth);
    cxr_http_auth_destroy(ec_auth);
    cxr_config_release(&rsa);
    cxr_config_release(&ec);
    cxr_config_release(&confused);
    cxr_config_release(&broken);
    cxr_config_release(&empty);
}

/* HS256 secret length: the boundary of the 32-byte minimum, at start and when minting. */
static void hs256_secret_length(void **state)
{
    (void)state;
    static const struct {
        size_t length;
        enum cxr_status status;
    } cases[] = {{1, CXR_ERR_INVALID_ARG}, {31, CXR_ERR_INVALID_ARG}, {32, CXR_OK}, {64, CXR_OK}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char secret[65];
        memset(secret, 's', cases[i].length);
        secret[cases[i].length] = '\0';
        struct cxr_config config;
        config_for(&config, "HS256", secret, "", "");
        struct cxr_auth *auth = NULL;
        struct cxr_err err = CXR_ERR_INIT;
        assert_int_equal(cxr_http_auth_create(&config, &auth, &err), cases[i].status);
        if (cases[i].status != CXR_OK) {
            assert_null(auth);
            assert_non_null(strstr(err.message, "at least 32 are needed"));
            char *token = NULL;
            struct cxr_err mint_err = CXR_ERR_INIT;
            assert_int_equal(cxr_http_auth_token_mint(&config, "x", 60, now, &token, &mint_err),
                             CXR_ERR_INVALID_ARG);
            assert_null(token);
        }
        cxr_http_auth_destroy(auth);
        cxr_config_release(&config);
    }
}

static void write_text(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
}

/* kid picks the key; jti in the revocation list is refused; minted tokens carry both. */
static void kid_rotation_and_revocation(void **state)
{
    (void)state;
    char folder[] = "/tmp/cxr-auth-XXXXXX";
    assert_non_null(mkdtemp(folder));
    char keys[64], old_key[96], revoked[64];
    snprintf(keys, sizeof keys, "%s/keys", folder);
    snprintf(old_key, sizeof old_key, "%s/old.secret", keys);
    snprintf(revoked, sizeof revoked, "%s/revoked", folder);
    assert_int_equal(mkdir(keys, 0700), 0);
    static const char old_secret[] = "old-secret-old-secret-old-secret-0";
    static const char new_secret[] = "new-secret-new-secret-new-secret-1";
    write_text(old_key, "old-secret-old-secret-old-secret-0\n");

    struct cxr_config old_config, new_config;
    config_for(&old_config, "HS256", old_secret, "", "");
    free(old_config.jwt_key_id);
    old_config.jwt_key_id = strdup("old");
    config_for(&new_config, "HS256", new_secret, "", "");
    free(new_config.jwt_key_id);
    new_config.jwt_key_id = strdup("new");
    free(new_config.jwt_keys_dir);
    new_config.jwt_keys_dir = strdup(keys);

    char *old_token = mint(&old_config, "a", 3600, now);
    char *new_token = mint(&new_config, "b", 3600, now);
    char *revoked_token = mint(&new_config, "c", 3600, now);
    /* jti of the token to revoke, from its payload. */
    const char *payload = strchr(revoked_token, '.') + 1;
    struct cxr_buf decoded = CXR_BUF_INIT(4096);
    assert_int_equal(
            cxr_base64url_decode(payload, (size_t)(strchr(payload, '.') - payload), &decoded),
            CXR_OK);
    json_t *claims = json_loadb((const char *)decoded.data, decoded.len, 0, NULL);
    const char *jti = json_string_value(json_object_get(claims, "jti"));
    assert_non_null(jti);
    assert_int_equal(strlen(jti), 32);
    char list[128];
    snprintf(list, sizeof list, "# revoked\n\n  %s  \nsomething-else\n", jti);
    write_text(revoked, list);
    free(new_config.jwt_revoked);
    new_config.jwt_revoked = strdup(revoked);

    struct cxr_auth *auth = NULL;
    struct cxr_err err = CXR_ERR_INIT;
    assert_int_equal(cxr_http_auth_create(&new_config, &auth, &err), CXR_OK);
    assert_int_equal(cxr_http_auth_key_count(auth), 2);
    assert_int_equal(cxr_http_auth_revoked_count(auth), 2);
    static const struct {
        const char *name;
        int which; /* 0 old, 1 new, 2 revoked */
        enum cxr_http_auth_outcome outcome;
    } cases[] = {
            {"old kid, old key", 0, CXR_AUTH_OK},
            {"new kid, new key", 1, CXR_AUTH_OK},
            {"revoked jti", 2, CXR_AUTH_INVALID},
    };
    char *tokens[] = {old_token, new_token, revoked_token};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("%s\n", cases[i].name);
        assert_int_equal(check(auth, tokens[cases[i].which]), cases[i].outcome);
    }
    /* An unknown kid, and a kid that names the wrong key, are refused. */
    struct cxr_config stranger;
    config_for(&stranger, "HS256", old_secret, "", "");
    free(stranger.jwt_key_id);
    stranger.jwt_key_id = strdup("unknown");
    char *unknown_token = mint(&stranger, "d", 3600, now);
    assert_int_equal(check(auth, unknown_token), CXR_AUTH_INVALID);
    free(stranger.jwt_key_id);
    stranger.jwt_key_id = strdup("new"); /* signed with the old secret, claims the new kid */
    char *wrong_key_token = mint(&stranger, "e", 3600, now);
    assert_int_equal(check(auth, wrong_key_token), CXR_AUTH_INVALID);

    /* A short secret in keys_dir stops the (re)load. */
    char short_key[96];
    snprintf(short_key, sizeof short_key, "%s/short.secret", keys);
    write_text(short_key, "too-short\n");
    struct cxr_auth *refused = NULL;
    struct cxr_err err2 = CXR_ERR_INIT;
    assert_int_equal(cxr_http_auth_create(&new_config, &refused, &err2), CXR_ERR_INVALID_ARG);
    assert_null(refused);

    unlink(short_key);
    unlink(old_key);
    unlink(revoked);
    rmdir(keys);
    rmdir(folder);
    json_decref(claims);
    cxr_buf_release(&decoded);
    free(old_token);
    free(new_token);
    free(revoked_token);
    free(unknown_token);
    free(wrong_key_token);
    cxr_http_auth_destroy(auth);
    cxr_config_release(&old_config);
    cxr_config_release(&new_config);
    cxr_config_release(&stranger);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(hs256_round_trip_and_refusals),
            cmocka_unit_test(hs256_secret_length),
            cmocka_unit_test(kid_rotation_and_revocation),
            cmocka_unit_test_setup_teardown(public_key_algorithms, keys_setup, keys_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
