"""The real `cxrd serve` for the benchmarks (bench/api, bench/soak): writes a config for given
roots and model, makes a token, starts the server on a free loopback port (port = 0, read back
from its "listening on" log line), keeps its log in a file, and sends requests. Not a test."""
import http.client
import json
import os
import subprocess
import threading

SECRET = "benchmark-secret-0123456789abcdef0123456789"


class Server:
    def __init__(self, cxrd, model, base, input_root, output_root, workers=2, threads=0,
                 queue_size=64, audit=None):
        self.base = base
        config = os.path.join(base, "cxrd.ini")
        with open(config, "w") as out:
            out.write("[server]\naddress = 127.0.0.1\nport = 0\nworkers = %d\nqueue_size = %d\n"
                      "log_level = info\n[paths]\ninput_root = %s\noutput_root = %s\n"
                      "[model]\npath = %s\nthreads = %d\n[auth]\nsecret = %s\n"
                      % (workers, queue_size, input_root, output_root, os.path.abspath(model),
                         threads, SECRET))
            if audit:
                out.write("[audit]\ndatabase = %s\n" % audit)
        env = dict(os.environ, CXRD_JWT_SECRET=SECRET)
        self.token = subprocess.run([cxrd, "token", "--config", config, "--subject", "bench"],
                                    check=True, capture_output=True, text=True,
                                    env=env).stdout.strip()
        self.log_path = os.path.join(base, "server.log")
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen([cxrd, "serve", "--config", config],
                                        stderr=subprocess.PIPE, text=True, env=env)
        self.pid = self.process.pid
        self.port = None
        for line in self.process.stderr:
            self._log.write(line)
            if "listening on" in line:
                self.port = int(line.split(" port ")[1].split(";")[0])
                break
        if self.port is None:
            raise SystemExit("server did not start; log in " + self.log_path)
        # Keep draining stderr so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.process.stderr:
            self._log.write(line)
        self._log.flush()

    def request(self, method, route, body=None, timeout=600):
        """Returns (status, payload bytes); connection errors propagate (OSError)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Authorization": self.token}
            if body is not None:
                headers["Content-Type"] = "application/json"
                body = json.dumps(body)
            connection.request(method, route, body, headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def alive(self):
        return self.process.poll() is None

    def stop(self, timeout=120):
        if self.alive():
            self.process.terminate()
        self.process.wait(timeout=timeout)
        self._log.flush()


def proc_status_mib(pid, field):
    """A memory figure of /proc/PID/status in MiB (VmRSS now, VmHWM the peak); NaN if absent."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_seconds(pid):
    """utime + stime of the server process, all threads (CPU time is a fair measure even when
    other work shares the machine, unlike wall-clock latency)."""
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
