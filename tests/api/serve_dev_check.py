#!/usr/bin/python3
"""`make serve` (scripts/serve-dev): with its port taken it fails at once, naming the port,
before printing a token or a curl example; with the port free it prints them and serves
(/ping answers), and stops cleanly on SIGTERM.

Usage: serve_dev_check.py SERVE_DEV BUILD_DIR"""
import http.client
import os
import signal
import socket
import subprocess
import sys
import time

serve_dev, build_dir = sys.argv[1:3]

# Port taken: a listening socket held here.
taken = socket.socket()
taken.bind(("127.0.0.1", 0))
taken.listen(1)
port = taken.getsockname()[1]
env = dict(os.environ, CXRD_DEV_PORT=str(port))
result = subprocess.run([serve_dev, build_dir], env=env, capture_output=True, text=True,
                        timeout=120)
taken.close()
assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
assert "port %d on 127.0.0.1 is in use" % port in result.stderr, result.stderr
assert "token" not in result.stdout and "curl" not in result.stdout, result.stdout

# Port free: it serves.
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
env["CXRD_DEV_PORT"] = str(port)
server = subprocess.Popen([serve_dev, build_dir], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
try:
    printed = ""
    while "Stop with Ctrl-C" not in printed:
        line = server.stdout.readline()
        assert line, "serve-dev stopped early: " + printed + server.stderr.read()
        printed += line
    assert "http://127.0.0.1:%d/ping" % port in printed, printed
    deadline = time.time() + 120
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/ping")
            status = connection.getresponse().status
            connection.close()
            break
        except OSError:
            assert time.time() < deadline, "no answer on port %d" % port
            time.sleep(0.2)
    assert status == 200, status
finally:
    server.send_signal(signal.SIGTERM)
    code = server.wait(timeout=120)
assert code == 0, code
print("serve-dev: ok")
