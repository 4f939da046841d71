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

    def test_sighup_changes_log_level(self):
        server = Server()
        try:
            with open(server.config) as config:
                text = config.read()
            with open(server.config, "w") as config:
                config.write(text.replace("log_level = info", "log_level = debug"))
            server.process.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: any("log_level debug" in line
                                                 for line in server.log)))
            server.request("GET", "/ping", token=None, headers={"X-Request-Id": "probe-1"})
            self.assertTrue(wait_for(lambda: any("request_id=probe-1" in line
                                                 for line in server.log)))
        finally:
            server.stop()
            server.remove()


SECRET_OLD = "rotation-old-secret-0123456789abcdef"
SECRET_NEW = "rotation-new-secret-fedcba9876543210"


class Keys(unittest.TestCase):
    """Rotation with kid, jti revocation and reloads on SIGHUP with a request in flight."""

    def rewrite_config(self, server, auth):
        with open(server.config) as config:
            text = config.read()
        head, _, tail = text.partition("[auth]\n")
        tail = tail[tail.index("[audit]"):]
        with open(server.config, "w") as config:
            config.write(head + "[auth]\n" +
                         "".join("%s = %s\n" % item for item in auth.items()) + tail)

    def sighup(self, server):
        count = sum("auth reloaded" in line for line in server.log)
        server.process.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: sum("auth reloaded" in line for line in server.log)
                                 > count), "".join(server.log))

    def test_short_secret_refused(self):
        with self.assertRaises(RuntimeError) as refused:
            Server(config_extra={"auth": {"secret": "x" * 31}})
        self.assertIn("the HS256 secret of [auth] secret or CXRD_JWT_SECRET has 31 bytes; at "
                      "least 32 are needed", str(refused.exception))
        import subprocess
        run = subprocess.run([os.environ.get("CXRD", "cxrd"), "token", "--subject", "a"],
                             capture_output=True, text=True,
                             env=dict(os.environ, CXRD_JWT_SECRET="x" * 31))
        self.assertEqual(run.returncode, 1)
        self.assertIn("has 31 bytes; at least 32 are needed", run.stderr)

    def test_rotation_revocation_and_in_flight(self):
        server = Server(workers=1, config_extra={"auth": {"secret": SECRET_OLD,
                                                          "key_id": "k1"}})
        try:
            revoked = os.path.join(server.base, "revoked.txt")
            keys = os.path.join(server.base, "keys")
            os.makedirs(keys)
            old_token = server.mint("old-key")
            victim = server.mint("victim")
            self.assertEqual(header_of(old_token)["kid"], "k1")
            self.assertRegex(claims_of(old_token)["jti"], r"^[0-9a-f]{32}$")
            self.assertNotEqual(claims_of(old_token)["jti"], claims_of(victim)["jti"])
            self.assertEqual(server.single({}, token=victim)[0], 400)

            # A bulk run in flight with the victim's token while the keys change.
            folder = os.path.join(server.input_root, "many")
            os.makedirs(folder)
            for i in range(24):
                source = os.path.join(server.input_root, "conc%d.dcm" % (i % 8))
                with open(source, "rb") as src, \
                        open(os.path.join(folder, "f%02d.dcm" % i), "wb") as dst:
                    dst.write(src.read())
            bulk = {}

            def run_bulk():
                bulk["response"] = server.request(
                    "POST", "/bulk_inference",
                    {"input_folder_path": folder,
                     "output_folder_path": os.path.join(server.output_root, "many")},
                    token=victim)
            thread = threading.Thread(target=run_bulk)
            thread.start()
            time.sleep(0.05)

            # Rotate: the new key signs, the old one still verifies; revoke the victim.
            with open(os.path.join(keys, "k1.secret"), "w") as key:
                key.write(SECRET_OLD + "\n")
            with open(revoked, "w") as out:
                out.write("# revoked tokens\n%s\n" % claims_of(victim)["jti"])
            self.rewrite_config(server, {"secret": SECRET_NEW, "key_id": "k2",
                                         "keys_dir": keys, "revoked": revoked})
            self.assertNotIn("response", bulk)  # still running when the keys change
            self.sighup(server)
            self.assertTrue(any("1 revoked token IDs" in line and "2 keys" in line
                                for line in server.log), "".join(server.log))
            thread.join(timeout=300)
            self.assertEqual(bulk["response"][0], 200, bulk)  # in flight: finished

            new_token = server.mint("new-key")
            self.assertEqual(header_of(new_token)["kid"], "k2")
            for name, token in (("old kid", old_token), ("new kid", new_token)):
                with self.subTest(name):
                    self.assertEqual(server.single({}, token=token)[0], 400)
            code, body = server.single({}, token=victim)
            self.assertEqual((code, body["Message"]), (401, "Invalid token"))
            now = int(time.time())
            claims = {"sub": "x", "iat": now, "exp": now + 600}
            unknown = make_jwt(claims, secret=SECRET_OLD)  # no kid: only the k2 key
            self.assertEqual(server.single({}, token=unknown)[0], 401)

            # End of rotation: the old key file removed, its tokens refused.
            os.remove(os.path.join(keys, "k1.secret"))
            self.sighup(server)
            self.assertEqual(server.single({}, token=old_token)[0], 401)
            self.assertEqual(server.single({}, token=new_token)[0], 400)

            # A bad reload keeps the running keys.
            with open(os.path.join(keys, "short.secret"), "w") as key:
                key.write("short")
            server.process.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: any("keeping the running keys" in line
                                                 for line in server.log)))
            self.assertEqual(server.single({}, token=new_token)[0], 400)
        finally:
            self.assertEqual(server.stop(), 0)
            server.remove()


class Thresholds(unittest.TestCase):
    """SIGHUP applies a changed [thresholds] section; the guard still refuses another version."""

    def test_reload_thresholds(self):
        server = Server()
        try:
            body = {"input_image_path": os.path.join(server.input_root, "pat001.dcm"),
                    "save_to_disk": False}
            code, first = server.single(body)
            self.assertEqual(code, 200, first)
            version = first["Data"]["metadata"]["model_version"]
            self.assertNotEqual(first["Data"]["result"], "Normal")  # something to switch off
            with open(server.config) as config:
                base = config.read()

            def reload(section, expect):
                count = sum(expect in line for line in server.log)
                with open(server.config, "w") as config:
                    config.write(base + section)
                server.process.send_signal(signal.SIGHUP)
                self.assertTrue(wait_for(lambda: sum(expect in line for line in server.log)
                                         > count), "".join(server.log))

            names = [finding["name"] for finding in first["Data"]["findings"]]
            off = "".join("%s = 1.5\n" % name for name in names)
            reload("[thresholds]\nmodel_version = %s\ncalibrated = 2026-12-03\n%s" %
                   (version, off), "SIGHUP: thresholds: site calibration of 2026-12-03")
            code, changed = server.single(body)
            self.assertEqual(changed["Data"]["result"], "Normal")
            self.assertFalse(any(f["presence"] for f in changed["Data"]["findings"]))
            self.assertEqual([f["confidence"] for f in changed["Data"]["findings"]],
                             [f["confidence"] for f in first["Data"]["findings"]])

            reload("[thresholds]\nmodel_version = other-model-9\n%s" % off,
                   "SIGHUP: keeping the running thresholds")
            self.assertEqual(server.single(body)[1]["Data"]["result"], "Normal")

            reload("", "SIGHUP: thresholds: model's own")
            code, back = server.single(body)
            self.assertEqual(back["Data"], first["Data"])
        finally:
            self.assertEqual(server.stop(), 0)
            server.remove()

    def test_audit_row_names_the_thresholds_of_its_result(self):
        """Reloads while requests run: each audit row names the thresholds its result was
        computed with. The row used to read them after the job, so a reload that waited for
        the running jobs landed in between and the row named the new calibration beside a
        result of the old one (the stress run: 48 of 15,000 rows over 43 reloads)."""
        server = Server()
        try:
            body = {"input_image_path": os.path.join(server.input_root, "pat001.dcm"),
                    "save_to_disk": False}
            code, first = server.single(body)
            self.assertEqual(first["Data"]["result"], "TB Presumptive")
            version = first["Data"]["metadata"]["model_version"]
            with open(server.config) as config:
                base = config.read()
            # The model of the fixtures finds only Tuberculosis: switched off, the result is
            # Normal, so each row's result says which thresholds it was computed with.
            site = ("[thresholds]\nmodel_version = %s\ncalibrated = 2026-12-03\n"
                    "Tuberculosis = 1.5\n" % version)
            stop = threading.Event()
            errors = []

            def client():
                while not stop.is_set():
                    code, answer = server.single(body)
                    if code != 200:
                        errors.append(answer)

            clients = [threading.Thread(target=client) for _ in range(3)]
            for thread in clients:
                thread.start()
            try:
                for reload in range(60):
                    with open(server.config + ".new", "w") as config:
                        config.write(base + (site if reload % 2 == 0 else ""))
                    os.rename(server.config + ".new", server.config)
                    server.process.send_signal(signal.SIGHUP)
                    time.sleep(0.15)
            finally:
                stop.set()
                for thread in clients:
                    thread.join()
            self.assertEqual(errors, [])
        finally:
            self.assertEqual(server.stop(), 0)
        try:
            with sqlite3.connect(server.audit) as db:
                rows = db.execute("SELECT result, thresholds FROM audit WHERE status = 200"
                                  " AND route = 'single_inference'").fetchall()
            by_kind = {}
            for result, thresholds in rows:
                by_kind.setdefault((result, thresholds), 0)
                by_kind[(result, thresholds)] += 1
            self.assertEqual(sorted(by_kind), [("Normal", "site calibration of 2026-12-03"),
                                               ("TB Presumptive", "model's own")], by_kind)
        finally:
            server.remove()


def openssl(*args):
    import subprocess
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def make_certificates(folder):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    ca_key, ca = os.path.join(folder, "ca.key"), os.path.join(folder, "ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=cxrd test CA")
    made = {"ca": ca}
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage="
                                       "serverAuth"),
                            ("client", "extendedKeyUsage=clientAuth")):
        key, request = os.path.join(folder, name + ".key"), os.path.join(folder, name + ".csr")
        certificate, extfile = (os.path.join(folder, name + ".pem"),
                                os.path.join(folder, name + ".ext"))
        with open(extfile, "w") as out:
            out.write(extension + "\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key, "-out", request, "-subj", "/CN=cxrd test " + name)
        openssl("x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key,
                "-CAcreateserial", "-out", certificate, "-days", "2", "-extfile", extfile)
        made[name] = (certificate, key)
    return made


class Tls(unittest.TestCase):
    def https(self, server, ca, path="/ping", client=None, token=None):
        import http.client
        import ssl
        context = ssl.create_default_context(cafile=ca)
        if client:
            context.load_cert_chain(*client)
        connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context,
                                                 timeout=30)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = token
        connection.request("POST" if token else "GET", path, body="{}" if token else None,
                           headers=headers)
        response = connection.getresponse()
        body = json.loads(response.read().decode())
        connection.close()
        return response.status, body

    def test_https_and_plain_http_refused(self):
        import tempfile
        folder = tempfile.mkdtemp(prefix="cxr-tls-")
        made = make_certificates(folder)
        server = Server(config_extra={"server": {"tls_certificate": made["server"][0],
                                                 "tls_key": made["server"][1]}})
        try:
            self.assertEqual(self.https(server, made["ca"]), (200, {"status": "ok"}))
            code, body = self.https(server, made["ca"], "/single_inference", token=server.token)
            self.assertEqual((code, body["Message"]),
                             (400, "input_image_path is required in the request"))
            with self.assertRaises(Exception):
                code, _ = server.request("GET", "/ping", token=None, timeout=10)
                raise AssertionError("plain HTTP answered %s" % code)
        finally:
            server.stop()
            server.remove()

    def test_mutual_tls(self):
        import tempfile
        folder = tempfile.mkdtemp(prefix="cxr-tls-")
        made = make_certificates(folder)
        server = Server(config_extra={"server": {"tls_certificate": made["server"][0],
                                                 "tls_key": made["server"][1],
                                                 "tls_client_ca": made["ca"]}})
        try:
            self.assertEqual(self.https(server, made["ca"], client=made["client"]),
                             (200, {"status": "ok"}))
            with self.assertRaises(Exception):
                self.https(server, made["ca"])  # no client certificate
            # A client certificate from another CA is refused too.
            other = make_certificates(tempfile.mkdtemp(prefix="cxr-tls-other-"))
            with self.assertRaises(Exception):
                self.https(server, made["ca"], client=other["client"])
        finally:
            server.stop()
            server.remove()

    def test_half_configured_refused(self):
        with self.assertRaises(RuntimeError) as refused:
            Server(config_extra={"server": {"tls_certificate": "/nonexistent.pem"}})
        self.assertIn("tls_certificate and tls_key: set both or neither", str(refused.exception))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
