#!/usr/bin/python3
"""Integration tests of the real `cxrd serve` against hostile or unlucky network conditions
(issue 19, items 4, 6, 9, 10 and 11): slow clients (slowloris) and clients that leave, oversized
requests, graceful shutdown, the audit log failing or being replaced, and the memory of all
requests in flight together.

Environment and arguments as server_test.py (whose Server this reuses). The attacker connects
from 127.0.0.2 (loopback), the well-behaved client from 127.0.0.1.
"""
import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_test import Server  # noqa: E402

ATTACKER = "127.0.0.2"


def raw_request(port, data, timeout=10, source="127.0.0.1"):
    """Sends bytes, returns (status, headers text, body bytes) of the answer; the server may
    stop reading early (a refused head), so a failed send still reads the answer."""
    connection = socket.socket()
    connection.settimeout(timeout)
    connection.bind((source, 0))
    try:
        connection.connect(("127.0.0.1", port))
    except OSError:
        connection.close()
        raise
    try:
        connection.sendall(data)
    except OSError:
        pass
    received = b""
    try:
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    except OSError:
        pass
    connection.close()
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.") else None
    return status, head.decode("latin-1"), body


def stop_clean(test, server):
    """Stops the server; it must exit 0 (SIGTERM) with no sanitizer report in its log."""
    code = server.stop()
    server.remove()
    log = "".join(server.log)
    test.assertEqual(code, 0, log)
    test.assertNotIn("Sanitizer", log)
    test.assertNotIn("runtime error", log)


def envelope(test, body, message):
    parsed = json.loads(body)
    test.assertEqual(list(parsed.keys()), ["Result", "Data", "Message"])
    test.assertEqual(parsed["Result"], "Failure")
    test.assertIsNone(parsed["Data"])
    test.assertEqual(parsed["Message"], message)


def ping(port, timeout=3, source="127.0.0.1"):
    status, _, body = raw_request(port, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n", timeout,
                                  source)
    return status, body


def close_wait_count(port):
    """Sockets of the server's port in CLOSE-WAIT (the peer left, the server did not close)."""
    count = 0
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "08":
                count += 1
    return count


class Slowloris(unittest.TestCase):
    """64 connections trickling header lines from one address: /ping still answers at once
    while they trickle and right after they leave, and nothing is left in CLOSE-WAIT."""

    def test_ping_answers_during_and_after_attack(self):
        server = Server()
        attackers = []
        stop = threading.Event()
        try:
            for _ in range(64):
                attacker = socket.socket()
                attacker.bind((ATTACKER, 0))
                attacker.settimeout(5)
                attacker.connect(("127.0.0.1", server.port))
                try:
                    attacker.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
                except OSError:
                    pass  # refused at once: over the per-address limit
                attackers.append(attacker)

            def trickle():
                while not stop.is_set():
                    for attacker in attackers:
                        try:
                            attacker.send(b"X-Slow: 1\r\n")
                        except OSError:
                            pass
                    stop.wait(0.5)

            # Beyond [server] max_connections_per_ip (32) the attacker is answered and closed.
            refused = attackers[-1].recv(4096)
            self.assertTrue(refused.startswith(b"HTTP/1.1 503 "), refused)
            envelope(self, refused.partition(b"\r\n\r\n")[2], "Server busy: too many "
                     "connections from 127.0.0.2 (at most 32); retry later")
            trickler = threading.Thread(target=trickle, daemon=True)
            trickler.start()
            time.sleep(1)
            for _ in range(5):
                started = time.time()
                status, body = ping(server.port)
                self.assertEqual(status, 200, "/ping during the attack")
                self.assertLess(time.time() - started, 2)
            stop.set()
            trickler.join()
            for attacker in attackers:
                attacker.close()
            started = time.time()
            status, body = ping(server.port)
            self.assertEqual(status, 200, "/ping right after the attack")
            self.assertLess(time.time() - started, 2)
            deadline = time.time() + 2
            while close_wait_count(server.port) and time.time() < deadline:
                time.sleep(0.05)
            self.assertEqual(close_wait_count(server.port), 0)
        finally:
            stop.set()
            for attacker in attackers:
                attacker.close()
            stop_clean(self, server)

    def test_head_deadline_not_extended_by_trickling(self):
        """The default head deadline (10 s) holds although a line arrives every 0.3 s."""
        server = Server()
        try:
            connection = socket.socket()
            connection.settimeout(0.3)
            connection.connect(("127.0.0.1", server.port))
            started = time.time()
            connection.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
            received = b""
            while time.time() - started < 16:
                try:
                    connection.send(b"X-Slow: 1\r\n")
                except OSError:
                    break
                try:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    received += chunk
                except socket.timeout:
                    pass
                except OSError:
                    break
            elapsed = time.time() - started
            connection.close()
            self.assertTrue(received.startswith(b"HTTP/1.1 408 "), received)
            envelope(self, received.partition(b"\r\n\r\n")[2],
                     "Request timeout: the request head did not arrive within 10 s")
            self.assertGreater(elapsed, 9.5)
            self.assertLess(elapsed, 12)
            self.assertEqual(ping(server.port)[0], 200)
        finally:
            stop_clean(self, server)


class SlowlorisTls(unittest.TestCase):
    """With TLS the intake cannot read the head; the connection is still shut down at the head
    deadline however slowly the (encrypted) head trickles, and /ping keeps answering."""

    def test_tls_head_deadline(self):
        import ssl
        from ops_test import make_certificates
        folder = tempfile.mkdtemp(prefix="cxr-tls-")
        made = make_certificates(folder)
        server = Server(config_extra={"server": {"tls_certificate": made["server"][0],
                                                 "tls_key": made["server"][1]}})
        context = ssl.create_default_context(cafile=made["ca"])
        try:
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            connection = context.wrap_socket(raw, server_hostname="127.0.0.1")
            connection.settimeout(0.3)
            started = time.time()
            connection.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
            closed = False
            while time.time() - started < 16 and not closed:
                try:
                    connection.sendall(b"X-Slow: 1\r\n")
                    closed = connection.recv(4096) == b""
                except socket.timeout:
                    pass
                except (OSError, ssl.SSLError):
                    closed = True
            elapsed = time.time() - started
            connection.close()
            self.assertTrue(closed, "the trickling TLS connection was not closed")
            self.assertGreater(elapsed, 9.5)
            self.assertLess(elapsed, 12)
            probe = context.wrap_socket(socket.create_connection(("127.0.0.1", server.port),
                                                                 timeout=5),
                                        server_hostname="127.0.0.1")
            probe.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(probe.recv(4096).startswith(b"HTTP/1.1 200 "))
            probe.close()
        finally:
            stop_clean(self, server)
            shutil.rmtree(folder, ignore_errors=True)


class Oversize(unittest.TestCase):
    """Oversized or malformed sizes and heads get the v1 envelope, never libmicrohttpd's
    HTML."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        stop_clean(unittest.TestCase(), cls.server)

    def test_header_too_large(self):
        for size in (20000, 100000, 1000000):
            status, head, body = raw_request(
                self.server.port, b"POST /single_inference HTTP/1.1\r\nHost: x\r\nX-Pad: " +
                b"y" * size + b"\r\nContent-Length: 2\r\n\r\n{}")
            self.assertEqual(status, 431, (size, head, body))
            self.assertIn("Content-Type: application/json", head)
            envelope(self, body, "Request headers too large: more than 16384 bytes")

    def test_content_length_too_large(self):
        for length in (b"100000000000000000000", b"18446744073709551616", b"65537"):
            status, head, body = raw_request(
                self.server.port, b"POST /single_inference HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: " + length + b"\r\n\r\n{}")
            self.assertEqual(status, 413, (length, head, body))
            self.assertIn("Content-Type: application/json", head)
            envelope(self, body, "Request body too large: more than 65536 bytes")

    def test_content_length_not_a_number(self):
        # "2 " and "2\t": libmicrohttpd refuses a value with trailing white space with its own
        # HTML page, which the intake let through before.
        for length in (b"1e20", b"-1", b"12abc", b"2 ", b"2\t", b"2 \t "):
            status, head, body = raw_request(
                self.server.port, b"POST /single_inference HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: " + length + b"\r\n\r\n{}")
            self.assertEqual(status, 400, (length, head, body))
            envelope(self, body, "Bad request: Content-Length is not a decimal number")

    def test_malformed_head(self):
        # What libmicrohttpd would answer with its own HTML page (or by closing).
        bad_line = ("Bad request: malformed request line (expected \"METHOD /path "
                    "HTTP/1.1\")")
        bad_header = "Bad request: malformed header line (expected \"name: value\")"
        cases = [(b"GET /ping\r\n\r\n", 400, bad_line),
                 (b"HELLO\r\n\r\n", 400, bad_line),
                 (b"GET /ping HTTP/1.1 extra\r\n\r\n", 400, bad_line),
                 (b"GET /ping HTTP/1.1\r\nno colon here\r\n\r\n", 400, bad_header),
                 (b"GET /ping HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, bad_header),
                 # A NUL: libmicrohttpd read "/ping\0x" as "/ping" (200) and cut values there.
                 (b"GET /ping\0x HTTP/1.1\r\n\r\n", 400, bad_line),
                 (b"GET /ping HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 400, bad_header),
                 (b"GET /ping HTTP/2.0\r\nHost: x\r\n\r\n", 505,
                  "HTTP version not supported: HTTP/2.0 (HTTP/1.0 and HTTP/1.1 are)"),
                 (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505,
                  "HTTP version not supported: HTTP/2.0 (HTTP/1.0 and HTTP/1.1 are)")]
        for request, status, message in cases:
            code, head, body = raw_request(self.server.port, request)
            self.assertEqual(code, status, (request, head, body))
            self.assertIn("Content-Type: application/json", head)
            envelope(self, body, message)
        # Still accepted: HTTP/1.0, bare LF line ends, a folded header line, an empty value.
        for request in (b"GET /ping HTTP/1.0\r\n\r\n", b"GET /ping HTTP/1.1\nHost: x\n\n",
                        b"GET /ping HTTP/1.1\r\nX-A: 1\r\n  2\r\nX-Empty:\r\n\r\n"):
            self.assertEqual(raw_request(self.server.port, request)[0], 200, request)

    def test_transfer_encoding_other_than_chunked(self):
        # libmicrohttpd reads such a body "until the connection closes": before, the request
        # got no answer at all and held its connection for request_timeout (120 s).
        token = self.server.token.encode()
        for coding in (b"gzip, chunked", b"chunked, gzip", b"identity", b"xchunked"):
            start = time.time()
            status, head, body = raw_request(
                self.server.port, b"POST /single_inference HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: " + token + b"\r\nTransfer-Encoding: " + coding +
                b"\r\nContent-Length: 2\r\n\r\n{}", timeout=15)
            self.assertEqual(status, 400, (coding, head, body))
            self.assertLess(time.time() - start, 5, coding)
            envelope(self, body, "Bad request: Transfer-Encoding %s is not supported (send "
                     "Content-Length or chunked)" % coding.decode())
        cases = [
            # Two Transfer-Encoding lines: libmicrohttpd looks at the first only.
            (b"HTTP/1.1", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
             "Bad request: Transfer-Encoding gzip is not supported (send Content-Length or "
             "chunked)"),
            # Any Transfer-Encoding in an HTTP/1.0 request is faulty framing (RFC 9112 6.1): a
            # proxy of that version reads the chunks as the body's bytes. libmicrohttpd decoded
            # them.
            (b"HTTP/1.0", b"Transfer-Encoding: chunked\r\n",
             "Bad request: Transfer-Encoding is not allowed in an HTTP/1.0 request (send "
             "Content-Length)")]
        for version, lines, message in cases:
            status, head, body = raw_request(
                self.server.port, b"POST /single_inference " + version + b"\r\nHost: x\r\n"
                b"Authorization: " + token + b"\r\n" + lines + b"\r\n2\r\n{}\r\n0\r\n\r\n",
                timeout=15)
            self.assertEqual(status, 400, (version, lines, head, body))
            envelope(self, body, message)
        # chunked (any case) is still read.
        status, head, body = raw_request(
            self.server.port, b"POST /single_inference HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: " + token + b"\r\nTransfer-Encoding: Chunked\r\n\r\n"
            b"2\r\n{}\r\n0\r\n\r\n", timeout=15)
        self.assertEqual(status, 400, (head, body))
        envelope(self, body, "input_image_path is required in the request")

    def test_too_many_fields(self):
        # libmicrohttpd keeps each header line, query parameter and cookie in a record of its
        # per-connection memory: about 1,450 of them in a 12 KB head ran it out, and the
        # request got no answer and held its connection until the idle timeout.
        message = ("Request headers too large: more than 1000 header lines, query parameters "
                   "and cookies")
        heads = [b"GET /ping?" + b"&".join(b"a" for _ in range(1500)) + b" HTTP/1.1\r\n\r\n",
                 b"GET /ping HTTP/1.1\r\n" + b"a:\r\n" * 1500 + b"\r\n",
                 b"GET /ping HTTP/1.1\r\nCookie: " + b";".join(b"a=" for _ in range(1500)) +
                 b"\r\n\r\n",
                 b"GET /ping?" + b"&".join(b"a" for _ in range(600)) + b" HTTP/1.1\r\n" +
                 b"a:\r\n" * 600 + b"\r\n"]
        for head in heads:
            start = time.time()
            status, answer_head, body = raw_request(self.server.port, head, timeout=15)
            self.assertEqual(status, 431, (head[:60], answer_head, body))
            self.assertLess(time.time() - start, 5)
            envelope(self, body, message)
        # 1000 of them together (the Cookie line counts too) are still served.
        head = (b"GET /ping?" + b"&".join(b"a" for _ in range(500)) + b" HTTP/1.1\r\n" +
                b"a:\r\n" * 249 + b"Cookie: " + b";".join(b"a=" for _ in range(250)) +
                b"\r\n\r\n")
        self.assertEqual(raw_request(self.server.port, head)[0], 200)

    def test_server_still_serves(self):
        self.assertEqual(ping(self.server.port)[0], 200)


class Shutdown(unittest.TestCase):
    """On SIGTERM the listening socket closes at once: a new connection is refused (or gets
    503) within a second; a head still arriving gets 503; the bulk run in flight completes."""

    def test_refused_quickly_in_flight_finishes(self):
        base = tempfile.mkdtemp(prefix="cxr-api-test-")
        try:
            server = Server(base=base, workers=1)
            folder = os.path.join(server.input_root, "many")
            os.makedirs(folder)
            for i in range(96):
                shutil.copyfile(os.path.join(server.input_root, "conc%d.dcm" % (i % 8)),
                                os.path.join(folder, "f%02d.dcm" % i))
            bulk_result = {}

            def run_bulk():
                bulk_result["response"] = server.request(
                    "POST", "/bulk_inference",
                    {"input_folder_path": folder,
                     "output_folder_path": os.path.join(server.output_root, "many")})
                bulk_result["time"] = time.time()

            bulk = threading.Thread(target=run_bulk)
            bulk.start()
            time.sleep(0.3)
            arriving = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            arriving.sendall(b"GET /ping HTTP/1.1\r\n")
            time.sleep(0.2)
            server.process.send_signal(signal.SIGTERM)
            signalled = time.time()
            time.sleep(0.2)
            outcomes = []
            for _ in range(5):
                started = time.time()
                try:
                    status, _, body = raw_request(server.port,
                                                  b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n",
                                                  timeout=2)
                    outcomes.append(status)
                except ConnectionRefusedError:
                    outcomes.append("refused")
                self.assertLess(time.time() - started, 1.0, outcomes)
            self.assertTrue(all(o in ("refused", 503) for o in outcomes), outcomes)
            arriving.settimeout(3)
            started = time.time()
            answer = b""
            while True:
                chunk = arriving.recv(4096)
                if not chunk:
                    break
                answer += chunk
            arriving.close()
            self.assertLess(time.time() - started, 2.5)
            self.assertTrue(answer.startswith(b"HTTP/1.1 503 "), answer)
            envelope(self, answer.partition(b"\r\n\r\n")[2],
                     "Server is shutting down; request not started")
            bulk.join(timeout=300)
            self.assertEqual(bulk_result["response"][0], 200, bulk_result)
            self.assertGreater(bulk_result["time"], signalled + 0.5, "the bulk run was not in "
                               "flight during the checks")
            self.assertTrue(bulk_result["response"][1]["Message"].startswith(
                "Bulk inference completed with 8 patient IDs written by more than one file"),
                bulk_result)
            self.assertEqual(server.stop(), 0, "".join(server.log))
            self.assertNotIn("Sanitizer", "".join(server.log))
            self.assertNotIn("runtime error", "".join(server.log))
        finally:
            shutil.rmtree(base, ignore_errors=True)


def audit_files(path):
    return [path + suffix for suffix in ("", "-wal", "-shm")]


class Audit(unittest.TestCase):
    """The audit database deleted or replaced while the server runs is reopened; a row that
    cannot be written is counted (cxrd_audit_failures_total) and, with [audit] required = true,
    refuses the request with 503."""

    def metric(self, server):
        status, text = server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        for line in text.splitlines():
            if line.startswith("cxrd_audit_failures_total "):
                return float(line.split()[1])
        self.fail("no cxrd_audit_failures_total in /metrics:\n" + text)

    def rows(self, path, request_id):
        with sqlite3.connect(path) as db:
            return db.execute("SELECT status FROM audit WHERE request_id = ?",
                              (request_id,)).fetchall()

    def bad_request(self, server, request_id):
        return server.single({"save_to_disk": False}, headers={"X-Request-Id": request_id})

    def test_deleted_database_is_reopened(self):
        server = Server()
        try:
            self.assertEqual(self.bad_request(server, "before-1")[0], 400)
            self.assertEqual(self.rows(server.audit, "before-1"), [(400,)])
            for path in audit_files(server.audit):
                if os.path.exists(path):
                    os.remove(path)
            self.assertEqual(self.bad_request(server, "after-1")[0], 400)
            self.assertTrue(os.path.exists(server.audit))
            self.assertEqual(self.rows(server.audit, "after-1"), [(400,)])
            # Replaced by another database file: rows go to the new one.
            for path in audit_files(server.audit):
                if os.path.exists(path):
                    os.remove(path)
            with sqlite3.connect(server.audit) as db:
                db.execute("CREATE TABLE other (x)")
            self.assertEqual(self.bad_request(server, "after-2")[0], 400)
            self.assertEqual(self.rows(server.audit, "after-2"), [(400,)])
            self.assertEqual(self.metric(server), 0)
        finally:
            stop_clean(self, server)

    def test_first_release_database_gains_columns_and_indexes(self):
        """A database of the first release (no predictions, job or folder columns, no index but
        the SOP one) is brought up to date when opened, and its old rows stay."""
        server = Server()
        try:
            for path in audit_files(server.audit):
                if os.path.exists(path):
                    os.remove(path)
            with sqlite3.connect(server.audit) as db:
                db.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, time TEXT NOT NULL,"
                           " subject TEXT NOT NULL, route TEXT NOT NULL, input_path TEXT NOT NULL,"
                           " sop_instance_uid TEXT NOT NULL, patient_id TEXT NOT NULL,"
                           " result TEXT NOT NULL, status INTEGER NOT NULL,"
                           " duration_ms REAL NOT NULL, message TEXT NOT NULL)")
                db.execute("INSERT INTO audit VALUES (1, '2026-01-01T00:00:00.000Z', '',"
                           " 'infer', '/a.dcm', '1.2.3', 'OLD', 'Normal', 200, 1.0, '')")
            db.close()
            self.assertEqual(self.bad_request(server, "new-1")[0], 400)
            with sqlite3.connect(server.audit) as db:
                columns = {row[1] for row in db.execute("PRAGMA table_info(audit)")}
                indexes = {row[0] for row in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit'")}
                old = db.execute("SELECT patient_id FROM audit WHERE id = 1").fetchall()
            db.close()
            self.assertTrue({"predictions", "thresholds", "request_id", "output_folder",
                             "job_id"} <= columns, columns)
            self.assertEqual(indexes, {"audit_sop", "audit_time", "audit_job", "audit_listed"})
            self.assertEqual(old, [("OLD",)])
            self.assertEqual(self.rows(server.audit, "new-1"), [(400,)])
            code, body = server.request("GET", "/results")
            self.assertEqual((code, body["Data"]), (200, []))  # no predictions
        finally:
            stop_clean(self, server)

    def test_unwritable_counted_not_required(self):
        server = Server()
        try:
            self.assertEqual(self.metric(server), 0)
            for path in audit_files(server.audit):
                if os.path.exists(path):
                    os.remove(path)
            os.makedirs(server.audit)  # a folder where the database was: cannot be written
            code, body = self.bad_request(server, "lost-1")
            self.assertEqual(code, 400, body)
            self.assertEqual(self.metric(server), 1)
            # The log is read by a background thread: the line may arrive after the answer.
            deadline = time.time() + 10
            while time.time() < deadline and not any(
                    "audit row of request lost-1 not written" in line for line in server.log):
                time.sleep(0.05)
            self.assertTrue(any("audit row of request lost-1 not written" in line
                                for line in server.log), "".join(server.log))
            os.rmdir(server.audit)
            self.assertEqual(self.bad_request(server, "back-1")[0], 400)
            self.assertEqual(self.rows(server.audit, "back-1"), [(400,)])
            self.assertEqual(self.metric(server), 1)
        finally:
            stop_clean(self, server)

    def test_required_refuses_with_503(self):
        server = Server(config_extra={"audit": {"required": "true"}})
        try:
            pat = os.path.join(server.input_root, "pat001.dcm")
            code, body = server.single({"input_image_path": pat, "save_to_disk": False})
            self.assertEqual(code, 200)
            for path in audit_files(server.audit):
                if os.path.exists(path):
                    os.remove(path)
            os.makedirs(server.audit)
            code, body = server.single({"input_image_path": pat, "save_to_disk": False})
            self.assertEqual(code, 503, body)
            self.assertEqual(body, {"Result": "Failure", "Data": None,
                                    "Message": "Audit log unavailable: the request could not be "
                                               "recorded ([audit] required = true); retry later"})
            self.assertEqual(self.metric(server), 1)
            os.rmdir(server.audit)
            code, body = server.single({"input_image_path": pat, "save_to_disk": False})
            self.assertEqual(code, 200)
        finally:
            stop_clean(self, server)


def rle_bomb(path, index, rows=16384, columns=16384):
    """A small, valid-looking RLE Lossless DICOM file declaring rows x columns 16-bit pixels:
    two segments of replicate runs that cover only part of the image."""
    def element(group, elem, vr, value):
        if isinstance(value, str):
            value = value.encode()
            if len(value) % 2:
                value += b"\0" if vr == "UI" else b" "
        if vr in ("OB", "OW", "SQ", "UN", "UT"):
            return struct.pack("<HH2sHI", group, elem, vr.encode(), 0, len(value)) + value
        return struct.pack("<HH2sH", group, elem, vr.encode(), len(value)) + value

    def us(value):
        return struct.pack("<H", value)
    sop = "1.2.826.0.1.3680043.10.1019.%d" % index
    meta_body = (element(0x0002, 0x0001, "OB", b"\0\1") +
                 element(0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.1.1") +
                 element(0x0002, 0x0003, "UI", sop) +
                 element(0x0002, 0x0010, "UI", "1.2.840.10008.1.2.5"))
    meta = element(0x0002, 0x0000, "UL", struct.pack("<I", len(meta_body))) + meta_body
    segment = bytes([0x81, 0x10]) * 32768  # replicate runs: 128 bytes of 0x10 each
    rle_header = struct.pack("<16I", 2, 64, 64 + len(segment), *([0] * 13))
    fragment = rle_header + segment + segment
    pixel = (struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF) +
             struct.pack("<HHI", 0xFFFE, 0xE000, 0) +
             struct.pack("<HHI", 0xFFFE, 0xE000, len(fragment)) + fragment +
             struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
    data = (element(0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.1.1") +
            element(0x0008, 0x0018, "UI", sop) +
            element(0x0008, 0x0060, "CS", "DX") +
            element(0x0010, 0x0020, "LO", "BOMB%d" % index) +
            element(0x0018, 0x0015, "CS", "CHEST") +
            element(0x0018, 0x5101, "CS", "PA") +
            element(0x0028, 0x0002, "US", us(1)) +
            element(0x0028, 0x0004, "CS", "MONOCHROME2") +
            element(0x0028, 0x0010, "US", us(rows)) +
            element(0x0028, 0x0011, "US", us(columns)) +
            element(0x0028, 0x0100, "US", us(16)) +
            element(0x0028, 0x0101, "US", us(12)) +
            element(0x0028, 0x0102, "US", us(11)) +
            element(0x0028, 0x0103, "US", us(0)) + pixel)
    with open(path, "wb") as out:
        out.write(b"\0" * 128 + b"DICM" + meta + data)


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Memory(unittest.TestCase):
    """Eight concurrent small RLE files declaring 16384x16384 with four workers: each request
    reserves its declared decode memory first, so with [limits] max_inflight_memory = 3G at
    most one decodes at a time and the others are refused with 503; the server's RSS stays
    within 2 GiB of where it started (without the reservation four decode together, about
    1.2 GiB each)."""

    def test_declared_size_reserved(self):
        server = Server(workers=4, queue_size=16,
                        config_extra={"limits": {"max_inflight_memory": "3G"}})
        try:
            paths = []
            for i in range(8):
                path = os.path.join(server.input_root, "bomb%d.dcm" % i)
                rle_bomb(path, i)
                paths.append(path)
            self.assertLess(os.path.getsize(paths[0]), 200 * 1024)
            baseline = rss_bytes(server.process.pid)
            peak = [baseline]
            done = threading.Event()

            def sample():
                while not done.is_set():
                    peak[0] = max(peak[0], rss_bytes(server.process.pid))
                    time.sleep(0.005)

            sampler = threading.Thread(target=sample)
            sampler.start()
            answers = []
            barrier = threading.Barrier(8)

            def client(path):
                barrier.wait()
                answers.append(server.single({"input_image_path": path,
                                              "save_to_disk": False}))

            clients = [threading.Thread(target=client, args=(p,)) for p in paths]
            for thread in clients:
                thread.start()
            for thread in clients:
                thread.join()
            done.set()
            sampler.join()
            growth = peak[0] - baseline
            sys.stderr.write("RSS: baseline %.0f MiB, peak %.0f MiB\n"
                             % (baseline / 2**20, peak[0] / 2**20))
            self.assertLess(growth, 2 * 2**30)
            codes = sorted(code for code, _ in answers)
            self.assertEqual(len(codes), 8)
            for code, body in answers:
                self.assertIn(code, (400, 503), body)
                if code == 503:
                    self.assertTrue(body["Message"].startswith(
                        "Server busy: not enough memory for the requests in flight"), body)
                else:
                    self.assertTrue(body["Message"].startswith(
                        "Invalid DICOM image, unable to render the pixel data: "), body)
            self.assertIn(503, codes)
            self.assertEqual(server.single({"input_image_path": os.path.join(
                server.input_root, "pat001.dcm"), "save_to_disk": False})[0], 200)
        finally:
            stop_clean(self, server)

    def test_larger_than_the_limit_alone(self):
        server = Server(config_extra={"limits": {"max_inflight_memory": "256M"}})
        try:
            path = os.path.join(server.input_root, "bomb.dcm")
            rle_bomb(path, 0)
            code, body = server.single({"input_image_path": path, "save_to_disk": False})
            self.assertEqual(code, 400, body)
            self.assertIn("more than [limits] max_inflight_memory", body["Message"])
            self.assertTrue(body["Message"].startswith(
                "Invalid DICOM image, unable to render the pixel data: "), body)
        finally:
            stop_clean(self, server)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1] + sys.argv[1:], verbosity=2)
