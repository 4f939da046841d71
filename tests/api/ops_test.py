#!/usr/bin/python3
"""Integration tests of the operations features of the real `cxrd serve` (issue 16): request IDs
in the X-Request-Id header, the log line of every request and the audit row, the JSON log
format, key rotation with kid, jti revocation and reloads on SIGHUP, and TLS.

Environment and arguments as server_test.py (whose Server this reuses).
"""
import base64
import json
import os
import re
import signal
import sqlite3
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_test import Server, make_jwt  # noqa: E402


def claims_of(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def header_of(token):
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def wait_for(predicate, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class RequestIds(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.remove()

    def request_with_headers(self, method, path, body=None, token="default", headers=None):
        import http.client
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=300)
        all_headers = {"Content-Type": "application/json"}
        if token == "default":
            token = self.server.token
        if token:
            all_headers["Authorization"] = token
        all_headers.update(headers or {})
        connection.request(method, path, body=json.dumps(body) if body is not None else None,
                           headers=all_headers)
        response = connection.getresponse()
        text = response.read().decode()
        connection.close()
        return response.status, response.getheader("X-Request-Id"), text

    def log_line(self, request_id):
        found = []

        def look():
            found[:] = [line for line in self.server.log if "request_id=" + request_id in line]
            return found
        wait_for(look)
        self.assertEqual(len(found), 1, "".join(self.server.log))
        return found[0]

    def test_generated_id_header_log_and_audit(self):
        status, request_id, text = self.request_with_headers(
            "POST", "/single_inference", {"save_to_disk": False})
        self.assertEqual(status, 400)
        self.assertRegex(request_id, r"^[0-9a-f]{16}$")
        line = self.log_line(request_id)
        self.assertIn(" request request_id=%s method=POST route=single_inference status=400 "
                      % request_id, line)
        self.assertRegex(line, r" duration_ms=[0-9.]+ ")
        self.assertIn('sub=integration-tests message="input_image_path is required in the '
                      'request"', line)
        with sqlite3.connect(self.server.audit) as db:
            rows = db.execute("SELECT status, message FROM audit WHERE request_id = ?",
                              (request_id,)).fetchall()
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0][0], 400)

    def test_client_id_kept_unsafe_one_replaced(self):
        path = os.path.join(self.server.input_root, "pat001.dcm")
        status, request_id, _ = self.request_with_headers(
            "POST", "/single_inference", {"input_image_path": path, "save_to_disk": False},
            headers={"X-Request-Id": "proxy-42.a:b_c"})
        self.assertEqual((status, request_id), (200, "proxy-42.a:b_c"))
        line = self.log_line("proxy-42.a:b_c")
        self.assertIn("status=200", line)
        self.assertNotIn("message=", line)
        with sqlite3.connect(self.server.audit) as db:
            rows = db.execute("SELECT route, status FROM audit WHERE request_id = ?",
                              ("proxy-42.a:b_c",)).fetchall()
        self.assertEqual(rows, [("single_inference", 200)])
        for unsafe in ["a b", "x" * 65, "a\"b"]:
            status, request_id, _ = self.request_with_headers(
                "GET", "/ping", token=None, headers={"X-Request-Id": unsafe})
            self.assertEqual(status, 200)
            self.assertRegex(request_id, r"^[0-9a-f]{16}$")

    def test_refused_before_inference_has_id_in_audit(self):
        status, request_id, _ = self.request_with_headers("POST", "/single_inference", {},
                                                          token=None)
        self.assertEqual(status, 401)
        line = self.log_line(request_id)
        self.assertIn('status=401', line)
        self.assertIn('message="Token missing"', line)
        with sqlite3.connect(self.server.audit) as db:
            rows = db.execute("SELECT status FROM audit WHERE request_id = ?",
                              (request_id,)).fetchall()
        self.assertEqual(rows, [(401,)])


class LogJson(unittest.TestCase):
    def test_every_line_is_a_json_object(self):
        server = Server(config_extra={"server": {"log_format": "json"}})
        try:
            status, body = server.single({}, headers={"X-Request-Id": "json-1"})
            self.assertEqual(status, 400)
            self.assertTrue(wait_for(lambda: any("json-1" in line for line in server.log)))
        finally:
            server.stop()
            server.remove()
        lines = [json.loads(line) for line in server.log if line.strip()]
        self.assertTrue(lines)
        for line in lines:
            self.assertIn("time", line)
            self.assertIn("level", line)
        request = [line for line in lines if line.get("request_id") == "json-1"]
        self.assertEqual(len(request), 1)
        self.assertEqual(request[0]["event"], "request")
        self.assertEqual(request[0]["route"], "single_inference")
        self.assertEqual(request[0]["status"], 400)
        self.assertIsInstance(request[0]["duration_ms"], (int, float))
        self.assertEqual(request[0]["message"], "input_image_path is required in the request")

    def test_bad_format_refused(self):
        import subprocess
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".ini") as config:
            config.write("[server]\nlog_format = xml\n")
            config.flush()
            run = subprocess.run([os.environ.get("CXRD", "cxrd"), "serve", "--config",
                                  config.name], capture_output=True, text=True)
        self.assertEqual(run.returncode, 1)
        self.assertIn("config [server] log_format: 'xml' is not text or json", run.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
