#!/usr/bin/python3
"""Integration tests of the real `cxrd serve` on a free loopback port: every validation row and
status code of the v1 spec (single and bulk), both save modes end to end, the JSON structure key
by key, base64 vs files, the PDF via poppler, auth refusals, path attacks, concurrency, the
audit log across a restart and graceful shutdown.

Environment: CXRD (the binary), CXR_API_FIXTURES (make_fixtures.py output). Arguments: unittest
names (e.g. Validation), so ctest can run the groups in parallel.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from PIL import Image

sys.dont_write_bytecode = True

CXRD = os.environ.get("CXRD", "cxrd")
FIXTURES = os.environ.get("CXR_API_FIXTURES", "")
SECRET = "integration-test-secret-0123456789abcdef"
FINDINGS = ["Tuberculosis", "Cardiomegaly", "Pleural Thickening", "Pleural Effusion",
            "Pneumothorax", "Consolidation", "Atelectasis", "Nodule Mass", "Fibrosis",
            "Infiltration", "Calcification"]
DATA_KEYS = ["result", "findings", "source_image", "heatmap", "metadata"]
METADATA_KEYS = ["model_version", "patient_id", "patient_name", "sop_instance_uid", "age", "sex"]
STARTUP_SECONDS = 60


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_jwt(claims, secret=SECRET, alg="HS256", signature=None):
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing_input = (header + "." + payload).encode()
    if signature is None:
        signature = b64url(hmac.new(secret.encode(), signing_input, hashlib.sha256).digest())
    return header + "." + payload + "." + signature


def without_summary(names):
    """A run's folder listing without its one run summary (cxrd_run_<UTC time>.csv, which
    jobs_test.py checks), sorted."""
    summaries = [name for name in names if name.startswith("cxrd_run_")]
    assert len(summaries) == 1, names
    return sorted(name for name in names if name not in summaries)


class Server:
    """A cxrd serve process with its own roots, config, audit database and log."""

    def __init__(self, model="model-tb.onnx", config_extra=None, base=None, workers=2,
                 queue_size=16, preexec_fn=None):
        self.base = base or tempfile.mkdtemp(prefix="cxr-api-test-")
        self.input_root = os.path.join(self.base, "in")
        self.output_root = os.path.join(self.base, "out")
        self.outside = os.path.join(self.base, "outside")
        for folder in (self.input_root, self.output_root, self.outside):
            os.makedirs(folder, exist_ok=True)
        for name in os.listdir(os.path.join(FIXTURES, "dicom")):
            target = os.path.join(self.input_root, name)
            if not os.path.exists(target):
                shutil.copyfile(os.path.join(FIXTURES, "dicom", name), target)
        self.audit = os.path.join(self.base, "audit.sqlite")
        self.config = os.path.join(self.base, "cxrd.ini")
        sections = {
            "server": {"address": "127.0.0.1", "port": "0", "workers": str(workers),
                       "queue_size": str(queue_size), "http_threads": "2",
                       "shutdown_grace": "20s", "log_level": "info"},
            "paths": {"input_root": self.input_root, "output_root": self.output_root},
            "model": {"path": os.path.join(FIXTURES, model), "threads": "2"},
            "auth": {"secret": SECRET},
            "audit": {"database": self.audit},
            "report": {"institution_name": "Integration Test Clinic"},
        }
        for section, values in (config_extra or {}).items():
            sections.setdefault(section, {}).update(values)
        with open(self.config, "w") as config:
            for section, values in sections.items():
                config.write("[%s]\n" % section)
                for key, value in values.items():
                    config.write("%s = %s\n" % (key, value))
        self.log = []
        env = dict(os.environ)
        env.pop("CXRD_JWT_SECRET", None)
        self.process = subprocess.Popen([CXRD, "serve", "--config", self.config],
                                        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        env=env, text=True, preexec_fn=preexec_fn)
        self.port = None
        deadline = time.time() + STARTUP_SECONDS
        while time.time() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self.log.append(line)
            if "listening on" in line:
                self.port = int(line.split(" port ")[1].split(";")[0])
                break
        if self.port is None:
            self.process.kill()
            raise RuntimeError("cxrd serve did not start:\n" + "".join(self.log))
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()
        self.token = self.mint("integration-tests")

    def _drain(self):
        for line in self.process.stderr:
            self.log.append(line)

    def mint(self, subject, ttl=None, secret=None):
        command = [CXRD, "token", "--config", self.config, "--subject", subject]
        if ttl:
            command += ["--ttl", ttl]
        env = dict(os.environ)
        env.pop("CXRD_JWT_SECRET", None)
        if secret:
            env["CXRD_JWT_SECRET"] = secret
        return subprocess.run(command, check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    def request(self, method, path, body=None, token="default", headers=None, raw=None,
                timeout=300):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        all_headers = {"Content-Type": "application/json"}
        if token == "default":
            token = self.token
        if token is not None:
            all_headers["Authorization"] = token
        all_headers.update(headers or {})
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8")
        connection.close()
        self.last_text = text  # the body as sent (tests of one request at a time read it)
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    def single(self, body, **kwargs):
        return self.request("POST", "/single_inference", body, **kwargs)

    def stop(self, expect_clean=True):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=120)
        self.reader.join(timeout=10)
        return self.process.returncode

    def remove(self):
        shutil.rmtree(self.base, ignore_errors=True)

    def tree(self, root=None):
        """Every file under root (default output root), relative, sorted."""
        root = root or self.output_root
        found = []
        for folder, _, files in os.walk(root):
            for name in files:
                found.append(os.path.relpath(os.path.join(folder, name), root))
        return sorted(found)


class ServerTest(unittest.TestCase):
    model = "model-tb.onnx"
    config_extra = None
    workers = 2
    queue_size = 16

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.model, cls.config_extra, workers=cls.workers,
                            queue_size=cls.queue_size)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        log = "".join(cls.server.log)
        cls.server.remove()
        if code != 0:
            raise AssertionError("cxrd serve exited with %s:\n%s" % (code, log))

    def path(self, name):
        return os.path.join(self.server.input_root, name)

    def assert_failure(self, response, status, message, prefix=False):
        code, body = response
        self.assertEqual(code, status, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(list(body.keys()), ["Result", "Data", "Message"])
        self.assertEqual(body["Result"], "Failure")
        self.assertIsNone(body["Data"])
        if prefix:
            self.assertTrue(body["Message"].startswith(message), body["Message"])
        else:
            self.assertEqual(body["Message"], message)
        return body["Message"]

    def assert_data_structure(self, data, result, patient_id):
        self.assertEqual(list(data.keys()), DATA_KEYS)
        self.assertEqual(data["result"], result)
        self.assertEqual([f["name"] for f in data["findings"]], FINDINGS)
        for finding in data["findings"]:
            self.assertEqual(list(finding.keys()), ["name", "presence", "confidence"])
            self.assertIsInstance(finding["presence"], bool)
            self.assertIsInstance(finding["confidence"], (int, float))
            self.assertGreaterEqual(finding["confidence"], 0.0)
            self.assertLessEqual(finding["confidence"], 1.0)
        self.assertEqual(list(data["metadata"].keys()), METADATA_KEYS)
        self.assertEqual(data["metadata"]["patient_id"], patient_id)
        for key in METADATA_KEYS:
            self.assertIsInstance(data["metadata"][key], str)


class Validation(ServerTest):
    """One test per row of the single-inference validation table, plus 404/405/415."""

    def body(self, **fields):
        base = {"input_image_path": self.path("pat001.dcm"), "save_to_disk": True,
                "output_folder_path": self.server.output_root}
        base.update(fields)
        return {k: v for k, v in base.items() if v is not Ellipsis}

    def test_missing_input_image_path(self):
        self.assert_failure(self.server.single(self.body(input_image_path=...)), 400,
                            "input_image_path is required in the request")
        self.assert_failure(self.server.single(self.body(input_image_path="")), 400,
                            "input_image_path is required in the request")

    def test_missing_save_to_disk(self):
        self.assert_failure(self.server.single(self.body(save_to_disk=...)), 400,
                            "save_to_disk is required in the request")

    def test_save_to_disk_not_boolean(self):
        self.assert_failure(self.server.single(self.body(save_to_disk="yes")), 400,
                            "Invalid value for save_to_disk, should be a boolean: yes")
        self.assert_failure(self.server.single(self.body(save_to_disk=1)), 400,
                            "Invalid value for save_to_disk, should be a boolean: 1")

    def test_missing_output_folder_path(self):
        self.assert_failure(self.server.single(self.body(output_folder_path=...)), 400,
                            "output_folder_path is required in the request when save_to_disk "
                            "is True")
        # Not needed without save_to_disk.
        code, body = self.server.single(self.body(output_folder_path=..., save_to_disk=False))
        self.assertEqual(code, 200, body)

    def test_invalid_file_path(self):
        for bad in ["relative/pat001.dcm", self.server.input_root + "/../in/pat001.dcm",
                    self.server.input_root + "//pat001.dcm", "/etc/passwd.dcm",
                    self.server.input_root + "/pat001.dcm\u0000.png"]:
            message = self.assert_failure(self.server.single(self.body(input_image_path=bad)),
                                          400, "Invalid path input_image_path: ", prefix=True)
            self.assertGreater(len(message), len("Invalid path input_image_path: "))
        self.assert_failure(self.server.single(self.body(input_image_path=42)), 400,
                            "Invalid path input_image_path: 42 (not a string)")

    def test_file_does_not_exist(self):
        missing = self.path("missing.dcm")
        self.assert_failure(self.server.single(self.body(input_image_path=missing)), 400,
                            "Input image path does not exist: " + missing)

    def test_file_is_not_dcm(self):
        for name in ["pat001.png", ""]:
            path = self.path(name).rstrip("/") if name else self.server.input_root
            self.assert_failure(self.server.single(self.body(input_image_path=path)), 400,
                                "Requested image is not a DICOM file: " + path)

    def test_cannot_read_dicom(self):
        path = self.path("junk.dcm")
        self.assert_failure(self.server.single(self.body(input_image_path=path)), 400,
                            "Invalid DICOM image, unable to fetch patient ID: " + path,
                            prefix=True)

    def test_invalid_request_patient_id(self):
        for bad in ["../x", "a/b", " ", ".hidden", "x" * 65, "semi;colon"]:
            self.assert_failure(self.server.single(self.body(patient_id=bad)), 400,
                                "Invalid patient_id: '%s' in request body" % bad)
        self.assert_failure(self.server.single(self.body(patient_id=7)), 400,
                            "Invalid patient_id: '7' in request body")
        # A DICOM PatientID that is not a safe folder name is refused too.
        self.assert_failure(self.server.single(self.body(input_image_path=self.path("badid.dcm"))),
                            400, "Invalid patient_id: '../evil' in DICOM PatientID", prefix=True)
        # A NUL inside the DICOM PatientID is a control character like the others; it used to
        # end the value, so 'PAT001\0X' wrote into patient PAT001's folder.
        import pydicom
        source = pydicom.dcmread(self.path("pat001.dcm"))
        source.PatientID = "PAT001\0X"
        nul_file = self.path("nul_in_id.dcm")
        source.save_as(nul_file)
        with open(nul_file, "rb") as saved:
            self.assertIn(b"PAT001\0X", saved.read())
        self.assert_failure(self.server.single(self.body(input_image_path=nul_file)), 400,
                            "Invalid patient_id: 'PAT001\ufffdX' in DICOM PatientID of %s" %
                            nul_file)

    def test_empty_patient_id(self):
        self.assert_failure(self.server.single(self.body(input_image_path=self.path("noid.dcm"))),
                            400, "Patient ID is empty or None", prefix=True)
        # An empty patient_id in the request is the same row of the spec, not an invalid one.
        self.assert_failure(self.server.single(self.body(patient_id="")), 400,
                            "Patient ID is empty or None: patient_id in the request body is "
                            "empty")
        # The request's patient_id fills the gap.
        code, body = self.server.single(self.body(input_image_path=self.path("noid.dcm"),
                                                  patient_id="GIVEN1", save_to_disk=False))
        self.assertEqual(code, 200, body)
        self.assertEqual(body["Data"]["metadata"]["patient_id"], "GIVEN1")

    def test_output_folder_creation_fails(self):
        # A file where a folder of output_folder_path should be.
        with open(os.path.join(self.server.output_root, "file.txt"), "w") as blocker:
            blocker.write("x")
        self.assert_failure(self.server.single(self.body(output_folder_path=os.path.join(
            self.server.output_root, "file.txt", "sub"))), 500,
            "Unable to create output folder: ", prefix=True)
        out = os.path.join(self.server.output_root, "blocked")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "PAT001"), "w") as blocker:
            blocker.write("a file where the patient folder should go")
        self.assert_failure(self.server.single(self.body(output_folder_path=out)), 500,
                            "Unable to create output folder: ", prefix=True)
        self.assertEqual(sorted(os.listdir(out)), ["PAT001"])

    def test_internal_error_is_500_without_cause(self):
        out = os.path.join(self.server.output_root, "internal")
        os.makedirs(os.path.join(out, "PAT001", "PAT001_report.pdf"))
        self.assert_failure(self.server.single(self.body(output_folder_path=out)), 500,
                            "Single Inference failed due to an internal error")
        # Nothing was written, and the cause is in the server log only.
        self.assertEqual(os.listdir(os.path.join(out, "PAT001")), ["PAT001_report.pdf"])
        time.sleep(0.2)
        self.assertTrue(any("PAT001_report.pdf" in line for line in self.server.log))

    def test_gate_refuses_other_modality(self):
        body = self.body(input_image_path=self.path("ct.dcm"), save_to_disk=True,
                         output_folder_path=os.path.join(self.server.output_root, "gate"))
        self.assert_failure(self.server.single(body), 400,
                            "Image is not a frontal chest radiograph: Modality CT is not a "
                            "radiograph (CR or DX)")
        self.assertFalse(os.path.exists(os.path.join(self.server.output_root, "gate")))
        time.sleep(0.2)
        db = sqlite3.connect(self.server.audit)
        rows = db.execute("SELECT status, message FROM audit WHERE sop_instance_uid = ?",
                          ("1.2.826.0.1.3680043.10.1004.1",)).fetchall()
        db.close()
        self.assertEqual(rows, [(400, "Image is not a frontal chest radiograph: Modality CT is "
                                      "not a radiograph (CR or DX)")])

    def test_gate_refuses_child_by_birth_date(self):
        body = self.body(input_image_path=self.path("child.dcm"), save_to_disk=False)
        self.assert_failure(self.server.single(body), 400,
                            "Image is not a frontal chest radiograph: PatientBirthDate 20120410 "
                            "and StudyDate 20210409: age 8 years is below the model's intended "
                            "age (18 years)")

    def test_gate_refuses_for_processing(self):
        body = self.body(input_image_path=self.path("forprocessing.dcm"), save_to_disk=False)
        self.assert_failure(self.server.single(body), 400,
                            "Image is not a frontal chest radiograph: PresentationIntentType FOR "
                            "PROCESSING: raw detector data, not an image for presentation")

    def test_gate_refuses_coded_lateral_view(self):
        body = self.body(input_image_path=self.path("lateral_coded.dcm"), save_to_disk=False)
        self.assert_failure(self.server.single(body), 400,
                            "Image is not a frontal chest radiograph: ViewCodeSequence \"left "
                            "lateral\" is not a frontal view")

    def test_415_not_a_json_object(self):
        for raw in ["not json", "[1, 2]", "", "\"text\"", "{\"a\": 1,}"]:
            self.assert_failure(self.server.request("POST", "/single_inference", raw=raw), 415,
                                "Unsupported Media Type: the body must be a JSON object",
                                prefix=True)
            self.assert_failure(self.server.request("POST", "/bulk_inference", raw=raw), 415,
                                "Unsupported Media Type: the body must be a JSON object",
                                prefix=True)

    def test_415_parse_error_quoting_bytes_that_are_not_utf8(self):
        # jansson's error quotes the body's bytes; bytes that are not UTF-8 used to drop the
        # Message from the envelope. Each such byte is now shown as '?'.
        raw = b'{"input_image_path":"z\\u000\xd4\x91\xdd"}'
        for route in ("/single_inference", "/bulk_inference"):
            message = self.assert_failure(self.server.request("POST", route, raw=raw), 415,
                                          "Unsupported Media Type: the body must be a JSON "
                                          "object (invalid escape near ", prefix=True)
            self.assertIn("?", message)

    def test_bodies_end_with_a_newline(self):
        # A JSON body ends with a newline, as text does (curl's prompt no longer follows it).
        code, _ = self.server.single(self.body(save_to_disk=False, output_folder_path=...))
        self.assertEqual(code, 200)
        self.assertTrue(self.server.last_text.endswith("}\n"), self.server.last_text[-20:])
        for response in (self.server.single(self.body(save_to_disk="yes")),
                         self.server.request("GET", "/nope"),
                         self.server.request("GET", "/ping", token=None)):
            self.assertIn(response[0], (200, 400, 404))
            self.assertTrue(self.server.last_text.endswith("}\n"), self.server.last_text)
            self.assertEqual(self.server.last_text.count("\n"), 1)

    def test_404_and_405(self):
        self.assert_failure(self.server.request("GET", "/nope"), 404, "Not found")
        self.assert_failure(self.server.request("GET", "/single_inference"), 405,
                            "Method not allowed: use POST")


class Limits(ServerTest):
    config_extra = {"limits": {"max_body": "4k", "max_header": "4k"}}

    def test_413_body_too_large(self):
        body = {"input_image_path": "/x.dcm", "save_to_disk": False, "pad": "x" * 8000}
        self.assert_failure(self.server.single(body), 413,
                            "Request body too large: more than 4096 bytes")

    def test_431_headers_too_large(self):
        self.assert_failure(self.server.single({}, headers={"X-Padding": "y" * 6000}), 431,
                            "Request headers too large: more than 4096 bytes")

    def test_within_limits_still_served(self):
        code, body = self.server.single({"input_image_path": self.path("pat001.dcm"),
                                         "save_to_disk": False})
        self.assertEqual(code, 200, body)


class Auth(ServerTest):
    def test_ping_needs_no_token(self):
        code, body = self.server.request("GET", "/ping", token=None)
        self.assertEqual((code, body), (200, {"status": "ok"}))

    def test_token_missing(self):
        for route in ["/single_inference", "/bulk_inference"]:
            self.assert_failure(self.server.request("POST", route, {}, token=None), 401,
                                "Token missing")
        self.assert_failure(self.server.request("GET", "/metrics", token=None), 401,
                            "Token missing")

    def test_invalid_tokens(self):
        now = int(time.time())
        valid_claims = {"sub": "x", "iat": now, "exp": now + 3600}
        header_none = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        payload = b64url(json.dumps(valid_claims).encode())
        good = make_jwt(valid_claims)
        cases = {
            "malformed": "not-a-jwt",
            "two segments": good.rsplit(".", 1)[0],
            "wrong signature": make_jwt(valid_claims, secret="some-other-secret-xxxxxxxxxxxx"),
            "tampered payload": good.split(".")[0] + "." +
            b64url(json.dumps({"sub": "admin", "exp": now + 99999}).encode()) + "." +
            good.split(".")[2],
            "not yet valid": make_jwt({"sub": "x", "nbf": now + 600, "exp": now + 3600}),
            "alg none": header_none + "." + payload + ".",
            "alg none signed": header_none + "." + payload + "." + b64url(b"sig"),
            "unsigned": good.rsplit(".", 1)[0] + ".",
            "wrong algorithm": make_jwt(valid_claims, alg="HS512"),
            "no exp": make_jwt({"sub": "x"}),
            "minted elsewhere": self.server.mint("x", secret="different-secret-0123456789abcdef"),
        }
        for name, token in cases.items():
            with self.subTest(name):
                self.assert_failure(self.server.single({}, token=token), 401, "Invalid token")
        self.assertEqual(self.server.single({}, token=good)[0], 400)  # the control passes auth

    def test_token_expired(self):
        now = int(time.time())
        expired = make_jwt({"sub": "x", "iat": now - 7200, "exp": now - 3600})
        self.assert_failure(self.server.single({}, token=expired), 401, "Token expired")
        short = self.server.mint("short-lived", ttl="1s")
        time.sleep(2.1)
        self.assert_failure(self.server.single({}, token=short), 401, "Token expired")

    def test_token_command_defaults_to_30_days(self):
        token = self.server.mint("lifetime")
        padded = token.split(".")[1] + "=" * (-len(token.split(".")[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
        self.assertEqual(claims["sub"], "lifetime")
        self.assertEqual(claims["exp"] - claims["iat"], 30 * 86400)
        self.assertLessEqual(abs(claims["iat"] - time.time()), 5)
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        self.assertEqual(header["alg"], "HS256")

    def test_bearer_prefix_and_metrics(self):
        code, body = self.server.single({}, token="Bearer " + self.server.token)
        self.assertEqual(code, 400)
        self.assertEqual(body["Message"], "input_image_path is required in the request")
        code, text = self.server.request("GET", "/metrics")
        self.assertEqual(code, 200)
        self.assertIn('cxrd_requests_total{route="single_inference",status="400"}', text)
        self.assertIn("# TYPE cxrd_stage_duration_seconds histogram", text)
        self.assertIn("cxrd_queue_depth 0", text)


class SaveModes(ServerTest):
    """Both save modes end to end, key by key, files vs base64, PDF via poppler, replacement."""

    def run_single(self, name, save, out=None, patient_id=None):
        body = {"input_image_path": self.path(name), "save_to_disk": save}
        if save:
            body["output_folder_path"] = out or self.server.output_root
        if patient_id:
            body["patient_id"] = patient_id
        code, response = self.server.single(body)
        self.assertEqual(code, 200, response)
        self.assertEqual(list(response.keys()), ["Result", "Data", "Message"])
        self.assertEqual(response["Result"], "Success")
        self.assertEqual(response["Message"], "Inference completed successfully.")
        return response["Data"]

    def test_save_to_disk_files_and_json(self):
        out = os.path.join(self.server.output_root, "save") + "/"
        data = self.run_single("pat001.dcm", True, out=out)
        self.assert_data_structure(data, "TB Presumptive", "PAT001")
        self.assertTrue(data["findings"][0]["presence"])
        self.assertEqual(data["metadata"], {
            "model_version": "test-tb", "patient_id": "PAT001", "patient_name": "John Doe",
            "sop_instance_uid": "1.2.826.0.1.3680043.10.1001.1", "age": "045Y", "sex": "M"})
        folder = os.path.join(out, "PAT001")
        self.assertEqual(data["source_image"], os.path.join(folder, "PAT001_source_image.png"))
        self.assertEqual(data["heatmap"], os.path.join(folder, "PAT001_heatmap.png"))
        self.assertEqual(sorted(os.listdir(folder)),
                         ["PAT001_heatmap.png", "PAT001_predictions.json",
                          "PAT001_report.pdf", "PAT001_source_image.png"])
        with open(os.path.join(folder, "PAT001_predictions.json")) as saved:
            predictions = json.load(saved)
        self.assertEqual(predictions, data)
        self.assertEqual(list(predictions.keys()), DATA_KEYS)
        for name in ["PAT001_source_image.png", "PAT001_heatmap.png"]:
            with open(os.path.join(folder, name), "rb") as png:
                self.assertEqual(png.read(8), b"\x89PNG\r\n\x1a\n")

        # base64 mode on the same file: the same PNG bytes, nothing written.
        before = self.server.tree()
        inline = self.run_single("pat001.dcm", False)
        self.assertEqual(self.server.tree(), before)
        self.assert_data_structure(inline, "TB Presumptive", "PAT001")
        self.assertEqual(inline["findings"], data["findings"])
        self.assertEqual(inline["metadata"], data["metadata"])
        for key, name in [("source_image", "PAT001_source_image.png"),
                          ("heatmap", "PAT001_heatmap.png")]:
            with open(os.path.join(folder, name), "rb") as png:
                self.assertEqual(base64.b64decode(inline[key], validate=True), png.read())

        # The PDF: poppler finds the patient, the result and every finding, and renders it.
        pdf = os.path.join(folder, "PAT001_report.pdf")
        text = subprocess.run(["pdftotext", "-layout", pdf, "-"], check=True,
                              capture_output=True, text=True).stdout
        # The PDF prints Person Names family name first, as stored ("Doe^John").
        for needle in ["Doe John", "TB Presumptive", "Integration Test Clinic"] + FINDINGS:
            self.assertIn(needle, text)
        prefix = os.path.join(self.server.base, "page")
        subprocess.run(["pdftoppm", "-r", "30", "-png", pdf, prefix], check=True)
        self.assertTrue(any(n.startswith("page") for n in os.listdir(self.server.base)))

    def test_patient_id_from_request_names_the_folder(self):
        out = os.path.join(self.server.output_root, "override")
        data = self.run_single("pat001.dcm", True, out=out, patient_id="REQ-42")
        self.assertEqual(data["metadata"]["patient_id"], "REQ-42")
        self.assertEqual(sorted(os.listdir(os.path.join(out, "REQ-42")))[0],
                         "REQ-42_heatmap.png")
        self.assertFalse(os.path.exists(os.path.join(out, "PAT001")))

    def test_utf8_patient_name(self):
        out = os.path.join(self.server.output_root, "greek")
        data = self.run_single("greek.dcm", True, out=out)
        self.assertEqual(data["metadata"]["patient_name"], "Νίκος Παπαδόπουλος")
        pdf = os.path.join(out, "PATGR1", "PATGR1_report.pdf")
        text = subprocess.run(["pdftotext", pdf, "-"], check=True, capture_output=True,
                              text=True).stdout
        self.assertIn("Παπαδόπουλος", text)


class DicomOutputs(ServerTest):
    """"dicom_outputs": true writes the three DICOM objects in the file group and lists them in
    Data; bad values are refused. The objects themselves are checked against dciodvfy, dsrdump
    and pydicom by tests/report/dicom_outputs_test.py."""

    def test_files_and_data_fields(self):
        out = os.path.join(self.server.output_root, "dicom")
        code, body = self.server.single({"input_image_path": self.path("pat001.dcm"),
                                         "save_to_disk": True, "output_folder_path": out,
                                         "dicom_outputs": True})
        self.assertEqual(code, 200, body)
        data = body["Data"]
        self.assertEqual(list(data.keys()),
                         DATA_KEYS + ["dicom_sr", "dicom_heatmap", "dicom_report"])
        folder = os.path.join(out, "PAT001")
        for key, suffix in [("dicom_sr", "_sr.dcm"), ("dicom_heatmap", "_heatmap.dcm"),
                            ("dicom_report", "_report.dcm")]:
            self.assertEqual(data[key], os.path.join(folder, "PAT001" + suffix))
            with open(data[key], "rb") as dicom:
                head = dicom.read(132)
            self.assertEqual(head[128:], b"DICM")
        self.assertEqual(len(os.listdir(folder)), 7)
        # The saved predictions JSON is the Data object, DICOM fields included.
        with open(os.path.join(folder, "PAT001_predictions.json")) as saved:
            self.assertEqual(json.load(saved), data)
        # false and null are the default: no DICOM fields, files of the earlier run removed.
        for value in (False, None):
            code, body = self.server.single({"input_image_path": self.path("pat001.dcm"),
                                             "save_to_disk": True, "output_folder_path": out,
                                             "dicom_outputs": value})
            self.assertEqual(code, 200, body)
            self.assertEqual(list(body["Data"].keys()), DATA_KEYS)
            self.assertFalse(any(n.endswith(".dcm") for n in os.listdir(folder)))

    def test_refused_values(self):
        message = ("Invalid value for dicom_outputs, should be a boolean (true needs "
                   "save_to_disk true): ")
        for value, shown in [("yes", "yes"), (1, "1"), ([True], "[true]")]:
            self.assert_failure(self.server.single({
                "input_image_path": self.path("pat001.dcm"), "save_to_disk": True,
                "output_folder_path": self.server.output_root, "dicom_outputs": value}),
                400, message + shown)
        before = self.server.tree()
        self.assert_failure(self.server.single({
            "input_image_path": self.path("pat001.dcm"), "save_to_disk": False,
            "dicom_outputs": True}), 400, message + "true")
        self.assertEqual(self.server.tree(), before)


class Replacement(unittest.TestCase):
    """A Normal result has heatmap "" and no heatmap file; a repeat replaces the files whole."""

    def test_tb_then_normal_then_abnormal(self):
        base = tempfile.mkdtemp(prefix="cxr-api-test-")
        try:
            folder = os.path.join(base, "out", "PAT001")
            body = {"save_to_disk": True}
            results = {}
            for model, result in [("model-tb.onnx", "TB Presumptive"),
                                  ("model-normal.onnx", "Normal"),
                                  ("model-abnormal.onnx", "Abnormal")]:
                server = Server(model, base=base)
                try:
                    body["input_image_path"] = os.path.join(server.input_root, "pat001.dcm")
                    body["output_folder_path"] = server.output_root
                    code, response = server.single(body)
                    self.assertEqual(code, 200, response)
                    results[result] = response["Data"]
                    self.assertEqual(response["Data"]["result"], result)
                    with open(os.path.join(folder, "PAT001_predictions.json")) as saved:
                        self.assertEqual(json.load(saved), response["Data"])
                    names = sorted(os.listdir(folder))
                    if result == "Normal":
                        self.assertEqual(response["Data"]["heatmap"], "")
                        self.assertNotIn("PAT001_heatmap.png", names)
                        inline = server.single(dict(body, save_to_disk=False))[1]["Data"]
                        self.assertEqual(inline["heatmap"], "")
                        text = subprocess.run(["pdftotext", os.path.join(
                            folder, "PAT001_report.pdf"), "-"], capture_output=True,
                            text=True, check=True).stdout
                        self.assertIn("Normal", text)
                    else:
                        self.assertIn("PAT001_heatmap.png", names)
                    self.assertEqual(len([n for n in names if not n.startswith(".")]),
                                     3 if result == "Normal" else 4)
                    self.assertFalse([n for n in names if n.startswith(".")])  # no temp files
                finally:
                    self.assertEqual(server.stop(), 0, "".join(server.log))
            self.assertEqual(results["Normal"]["metadata"]["model_version"], "test-normal")
            self.assertTrue(results["Abnormal"]["findings"][1]["presence"])
            self.assertFalse(results["Abnormal"]["findings"][0]["presence"])
        finally:
            shutil.rmtree(base, ignore_errors=True)


class Paths(ServerTest):
    """Path attacks: refused with Invalid path, nothing written anywhere."""

    def setUp(self):
        self.before_out = self.server.tree()
        self.before_outside = self.server.tree(self.server.outside)

    def tearDown(self):
        self.assertEqual(self.server.tree(), self.before_out)
        self.assertEqual(self.server.tree(self.server.outside), self.before_outside)

    def request(self, input_path, output_path=None):
        return self.server.single({"input_image_path": input_path, "save_to_disk": True,
                                   "output_folder_path": output_path or self.server.output_root})

    def test_dotdot(self):
        shutil.copyfile(self.path("pat001.dcm"), os.path.join(self.server.outside, "x.dcm"))
        self.before_outside = self.server.tree(self.server.outside)
        self.assert_failure(self.request(self.server.input_root + "/../outside/x.dcm"), 400,
                            "Invalid path input_image_path: ", prefix=True)
        self.assert_failure(self.request(self.path("pat001.dcm"),
                                         self.server.output_root + "/../outside"), 400,
                            "Invalid path output_folder_path: ", prefix=True)

    def test_symlink_out_of_input_root(self):
        secret = os.path.join(self.server.outside, "secret.dcm")
        shutil.copyfile(self.path("pat001.dcm"), secret)
        self.before_outside = self.server.tree(self.server.outside)
        link = self.path("link.dcm")
        if not os.path.lexists(link):
            os.symlink(secret, link)
        message = self.assert_failure(self.request(link), 400, "Invalid path input_image_path: ",
                                      prefix=True)
        self.assertIn("outside", message)
        folder_link = self.path("linked-folder")
        if not os.path.lexists(folder_link):
            os.symlink(self.server.outside, folder_link)
        self.assert_failure(self.request(folder_link + "/secret.dcm"), 400,
                            "Invalid path input_image_path: ", prefix=True)

    def test_output_root_escape(self):
        self.assert_failure(self.request(self.path("pat001.dcm"), self.server.outside), 400,
                            "Invalid path output_folder_path: ", prefix=True)
        escape = os.path.join(self.server.output_root, "escape")
        if not os.path.lexists(escape):
            os.symlink(self.server.outside, escape)
        self.before_out = self.server.tree()
        self.assert_failure(self.request(self.path("pat001.dcm"), escape + "/deeper"), 400,
                            "Invalid path output_folder_path: ", prefix=True)
        # A patient folder planted as a symlink out of the root.
        planted = os.path.join(self.server.output_root, "planted")
        os.makedirs(planted, exist_ok=True)
        if not os.path.lexists(os.path.join(planted, "PAT001")):
            os.symlink(self.server.outside, os.path.join(planted, "PAT001"))
        self.before_out = self.server.tree()
        self.assert_failure(self.request(self.path("pat001.dcm"), planted), 400,
                            "Invalid path output_folder_path: ", prefix=True)

    def test_outside_and_relative(self):
        self.assert_failure(self.request("/etc/hostname.dcm"), 400,
                            "Invalid path input_image_path: ", prefix=True)
        self.assert_failure(self.request(self.path("pat001.dcm"), "out/relative"), 400,
                            "Invalid path output_folder_path: out/relative (not an absolute path)")
        self.assert_failure(self.request(self.path("pat001.dcm"),
                                         self.server.output_root + "/a\u0000b"), 400,
                            "Invalid path output_folder_path: ", prefix=True)


class Bulk(ServerTest):
    def bulk(self, body, **kwargs):
        return self.server.request("POST", "/bulk_inference", body, **kwargs)

    def make_folder(self, name, files):
        folder = os.path.join(self.server.input_root, name)
        for entry in files:  # "target@source" copies source to target, else same name
            relative, _, source = entry.partition("@")
            target = os.path.join(folder, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(self.path(source or os.path.basename(relative)), target)
        return folder

    def test_validation_rows(self):
        out = self.server.output_root
        self.assert_failure(self.bulk({"output_folder_path": out}), 400,
                            "input_folder_path is required in the request")
        self.assert_failure(self.bulk({"input_folder_path": self.server.input_root}), 400,
                            "output_folder_path is required in the request")
        self.assert_failure(self.bulk({"input_folder_path": "relative", "output_folder_path": out}),
                            400, "Invalid path input_folder_path: ", prefix=True)
        self.assert_failure(self.bulk({"input_folder_path": self.server.outside,
                                       "output_folder_path": out}),
                            400, "Invalid path input_folder_path: ", prefix=True)
        missing = os.path.join(self.server.input_root, "missing")
        self.assert_failure(self.bulk({"input_folder_path": missing, "output_folder_path": out}),
                            400, "Input folder path does not exist: " + missing)
        self.assert_failure(self.bulk({"input_folder_path": self.server.input_root,
                                       "output_folder_path": self.server.outside}),
                            400, "Invalid path output_folder_path: ", prefix=True)
        empty = os.path.join(self.server.input_root, "empty", "sub")
        os.makedirs(empty, exist_ok=True)
        self.assert_failure(self.bulk({"input_folder_path": os.path.dirname(empty),
                                       "output_folder_path": out}),
                            400, "No Dicom images found in the provided path")

    def test_success_recursive(self):
        folder = self.make_folder("bulk-ok", ["pat001.dcm", "a/conc0.dcm", "a/b/c/conc1.dcm",
                                              "a/notes.txt@pat001.dcm"])
        out = os.path.join(self.server.output_root, "bulk-ok")
        code, body = self.bulk({"input_folder_path": folder, "output_folder_path": out})
        self.assertEqual(code, 200, body)
        self.assertEqual(body, {"Result": "Success", "Data": None,
                                "Message": "Bulk inference completed successfully."})
        self.assertEqual(without_summary(os.listdir(out)), ["PAT001", "PATC0", "PATC1"])
        for patient in ["PAT001", "PATC0", "PATC1"]:
            with open(os.path.join(out, patient, patient + "_predictions.json")) as saved:
                data = json.load(saved)
            self.assert_data_structure(data, "TB Presumptive", patient)
            self.assertEqual(data["source_image"],
                             os.path.join(out, patient, patient + "_source_image.png"))
            self.assertEqual(len(os.listdir(os.path.join(out, patient))), 4)

    def test_warning_counts_skipped(self):
        folder = self.make_folder("bulk-warn", ["pat001.dcm", "x/junk.dcm", "noid.dcm",
                                                "conc2.dcm", "badid.dcm"])
        out = os.path.join(self.server.output_root, "bulk-warn")
        code, body = self.bulk({"input_folder_path": folder, "output_folder_path": out})
        self.assertEqual(code, 200, body)
        self.assertEqual(body["Result"], "Warning")
        self.assertIsNone(body["Data"])
        self.assertIn("3 of 5 DICOM files skipped", body["Message"])
        for name in ["x/junk.dcm", "noid.dcm", "badid.dcm"]:
            self.assertIn(name, body["Message"])
        self.assertEqual(without_summary(os.listdir(out)), ["PAT001", "PATC2"])
        time.sleep(0.2)
        for name in ["junk.dcm", "noid.dcm", "badid.dcm"]:
            self.assertTrue(any("skipped" in line and name in line for line in self.server.log))


    def test_long_skip_reasons_keep_the_shared_id_notice(self):
        # Ten skipped files with long paths filled the 8 KiB Message: it was cut inside the
        # list and the notice that a patient folder was written twice (a result replaced)
        # never reached the client.
        import pydicom
        folder = os.path.join(self.server.input_root, "bulk-long")
        os.makedirs(folder)
        source = pydicom.dcmread(self.path("pat001.dcm"))
        for i in (1, 2):
            source.PatientID = "LONGSKIP"
            source.SOPInstanceUID = "1.2.826.0.1.3680043.10.1009.%d" % i
            source.save_as(os.path.join(folder, "t%d.dcm" % i))
        deep = os.path.join(folder, *(["s" * 200] * 3))
        os.makedirs(deep)
        for i in range(10):
            with open(os.path.join(deep, "j" * 200 + "%d.dcm" % i), "wb") as junk:
                junk.write(b"junk")
        out = os.path.join(self.server.output_root, "bulk-long")
        code, body = self.bulk({"input_folder_path": folder, "output_folder_path": out})
        self.assertEqual(code, 200, body)
        self.assertTrue(body["Message"].startswith(
            "Bulk inference completed with 10 of 12 DICOM files skipped"), body["Message"][:80])
        self.assertIn("j" * 200 + "9.dcm: Invalid DICOM image", body["Message"])
        self.assertIn("; and 1 patient IDs written by more than one file", body["Message"])
        self.assertIn("LONGSKIP: t1.dcm, t2.dcm (the folder holds ", body["Message"])

    def test_fifo_named_dcm_counted(self):
        # A FIFO (or socket, or device) named .dcm is one of "every .dcm file": it is skipped
        # and counted like single inference refuses it, never read (a FIFO would block) and
        # never dropped unseen behind a Success, as it was.
        folder = self.make_folder("bulk-fifo", ["pat001.dcm"])
        os.mkfifo(os.path.join(folder, "pipe.dcm"))
        out = os.path.join(self.server.output_root, "bulk-fifo")
        code, body = self.bulk({"input_folder_path": folder, "output_folder_path": out})
        self.assertEqual(code, 200, body)
        self.assertEqual(body["Result"], "Warning", body)
        self.assertIn("1 of 2 DICOM files skipped", body["Message"])
        self.assertIn("pipe.dcm: Invalid DICOM image, unable to fetch patient ID: %s "
                      "(DICOM: %s: not a regular file)" % ((os.path.join(folder, "pipe.dcm"),) * 2),
                      body["Message"])
        self.assertEqual(without_summary(os.listdir(out)), ["PAT001"])
        # Alone, it is still a run that completed with the file skipped, not "no images".
        os.remove(os.path.join(folder, "pat001.dcm"))
        code, body = self.bulk({"input_folder_path": folder, "output_folder_path": out})
        self.assertEqual(code, 200, body)
        self.assertIn("1 of 1 DICOM files skipped", body["Message"])

    def test_symlinked_files_analysed_or_counted(self):
        # A symlinked .dcm inside the input root is analysed like single inference would; one
        # that leads out of the root is skipped and counted, never read nor shown where it
        # points; a symlinked folder is not entered.
        folder = self.make_folder("bulk-links", ["pat001.dcm"])
        secret = os.path.join(self.server.outside, "secret.dcm")
        shutil.copyfile(self.path("conc3.dcm"), secret)
        os.symlink(self.path("conc4.dcm"), os.path.join(folder, "linked.dcm"))
        os.symlink(secret, os.path.join(folder, "escape.dcm"))
        os.symlink(self.server.outside, os.path.join(folder, "away"))
        out = os.path.join(self.server.output_root, "bulk-links")
        code, body = self.bulk({"input_folder_path": folder, "output_folder_path": out})
        self.assertEqual(code, 200, body)
        self.assertEqual(body["Result"], "Warning")
        self.assertIn("1 of 3 DICOM files skipped", body["Message"])
        self.assertIn("escape.dcm", body["Message"])
        self.assertIn("outside the allowed root", body["Message"])
        self.assertNotIn(self.server.outside, body["Message"])
        self.assertEqual(without_summary(os.listdir(out)), ["PAT001", "PATC4"])

    def test_shared_patient_id_reported_and_kept(self):
        folder = self.make_folder("bulk-twins", ["twin1.dcm", "sub/twin2.dcm", "pat001.dcm"])
        out = os.path.join(self.server.output_root, "bulk-twins")
        code, body = self.bulk({"input_folder_path": folder, "output_folder_path": out})
        self.assertEqual(code, 200, body)
        self.assertEqual(body["Result"], "Warning")
        self.assertIn("Bulk inference completed with 1 patient IDs written by more than one "
                      "file", body["Message"])
        self.assertIn("TWIN1: sub/twin2.dcm, twin1.dcm (the folder holds ", body["Message"])
        with open(os.path.join(out, "TWIN1", "TWIN1_predictions.json")) as saved:
            held = json.load(saved)["metadata"]["sop_instance_uid"]
        holder = {"1.2.826.0.1.3680043.10.1003.1": "twin1.dcm",
                  "1.2.826.0.1.3680043.10.1003.2": "sub/twin2.dcm"}[held]
        self.assertIn("(the folder holds %s)" % holder, body["Message"])
        # Both results stay retrievable from the audit log by SOP Instance UID.
        for uid, name in [("1.2.826.0.1.3680043.10.1003.1", "twin1.dcm"),
                          ("1.2.826.0.1.3680043.10.1003.2", "twin2.dcm")]:
            run = subprocess.run([CXRD, "results", "--sop", uid, "--config", self.server.config],
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)
            rows = json.loads(run.stdout)
            self.assertEqual(len(rows), 1)
            self.assertEqual(rows[0]["route"], "bulk_inference/file")
            self.assertTrue(rows[0]["input_path"].endswith(name))
            self.assertEqual(rows[0]["predictions"]["metadata"]["sop_instance_uid"], uid)
            self.assertEqual(rows[0]["predictions"]["result"], "TB Presumptive")
            self.assertEqual(len(rows[0]["predictions"]["findings"]), 11)
        run = subprocess.run([CXRD, "results", "--sop", "1.2.3.4.5", "--config",
                              self.server.config], capture_output=True, text=True)
        self.assertEqual(run.returncode, 1)
        self.assertIn("no result stored", run.stderr)


class Concurrency(ServerTest):
    """8 clients x 25 requests in parallel, each its own patient: all answered correctly and no
    output file mixed between patients."""

    def test_8_clients_25_requests(self):
        errors = []
        out = os.path.join(self.server.output_root, "concurrent")
        inline_sources = {}

        def client(index):
            try:
                for n in range(25):
                    save = n % 2 == 0
                    body = {"input_image_path": self.path("conc%d.dcm" % index),
                            "save_to_disk": save}
                    if save:
                        body["output_folder_path"] = out
                    code, response = self.server.single(body)
                    if code != 200:
                        errors.append((index, n, code, response))
                        continue
                    meta = response["Data"]["metadata"]
                    if (meta["patient_id"] != "PATC%d" % index or
                            meta["sop_instance_uid"] != "1.2.826.0.1.3680043.10.1002.%d" % index or
                            meta["patient_name"] != "Number%d Client" % index):
                        errors.append((index, n, "mixed", meta))
                    if not save:
                        inline_sources[index] = response["Data"]["source_image"]
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append((index, "exception", repr(error)))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        self.assertEqual(sorted(os.listdir(out)), ["PATC%d" % i for i in range(8)])
        for index in range(8):
            patient = "PATC%d" % index
            folder = os.path.join(out, patient)
            self.assertEqual(sorted(os.listdir(folder)),
                             sorted(patient + s for s in ["_heatmap.png", "_predictions.json",
                                                          "_report.pdf", "_source_image.png"]))
            with open(os.path.join(folder, patient + "_predictions.json")) as saved:
                data = json.load(saved)
            self.assertEqual(data["metadata"]["patient_id"], patient)
            self.assertEqual(data["metadata"]["sop_instance_uid"],
                             "1.2.826.0.1.3680043.10.1002.%d" % index)
            with open(os.path.join(folder, patient + "_source_image.png"), "rb") as png:
                self.assertEqual(base64.b64decode(inline_sources[index]), png.read())
            text = subprocess.run(["pdftotext", os.path.join(folder, patient + "_report.pdf"),
                                   "-"], capture_output=True, text=True, check=True).stdout
            self.assertIn("Client Number%d" % index, text)  # family name first, as stored
        # One audit row per request.
        db = sqlite3.connect(self.server.audit)
        rows = db.execute("SELECT count(*) FROM audit WHERE patient_id LIKE 'PATC%' AND "
                          "status = 200").fetchone()[0]
        db.close()
        self.assertEqual(rows, 200)


class Lifecycle(unittest.TestCase):
    """503 when the queue is full or a request waited past the request timeout, the audit log
    across a restart, graceful SIGTERM, refusal to start without a model."""

    def test_refuses_to_start_without_model(self):
        base = tempfile.mkdtemp(prefix="cxr-api-test-")
        try:
            with self.assertRaises(RuntimeError) as failure:
                Server("no-such-model.onnx", base=base)
            self.assertIn("not starting", str(failure.exception))
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def test_start_logs_no_libmicrohttpd_warning(self):
        # Every start used to log "MHD_OPTION_EXTERNAL_LOGGER is not the first option".
        base = tempfile.mkdtemp(prefix="cxr-api-test-")
        try:
            server = Server(base=base)
            self.assertEqual(server.request("GET", "/ping", token=None)[0], 200)
            self.assertEqual(server.stop(), 0)
            log = "".join(server.log)
            self.assertNotIn("EXTERNAL_LOGGER", log)
            self.assertNotIn("libmicrohttpd", log)
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def test_queue_full_audit_restart_graceful_stop(self):
        base = tempfile.mkdtemp(prefix="cxr-api-test-")
        try:
            server = Server(base=base, workers=1, queue_size=0)
            folder = os.path.join(server.input_root, "many")
            os.makedirs(folder)
            for i in range(16):
                shutil.copyfile(os.path.join(server.input_root, "conc%d.dcm" % (i % 8)),
                                os.path.join(folder, "f%02d.dcm" % i))
            bulk_result = {}

            def run_bulk():
                bulk_result["response"] = server.request(
                    "POST", "/bulk_inference",
                    {"input_folder_path": folder,
                     "output_folder_path": os.path.join(server.output_root, "many")})

            bulk = threading.Thread(target=run_bulk)
            bulk.start()
            deadline = time.time() + 30
            busy = None
            while time.time() < deadline and "response" not in bulk_result:
                code, body = server.single({"input_image_path": os.path.join(
                    server.input_root, "pat001.dcm"), "save_to_disk": False})
                if code == 503:
                    busy = body
                    break
                time.sleep(0.01)
            self.assertIsNotNone(busy, "no 503 while the only worker was busy")
            self.assertEqual(busy["Result"], "Failure")
            self.assertIsNone(busy["Data"])
            self.assertTrue(busy["Message"].startswith("Server busy: the inference queue is full"),
                            busy["Message"])

            # SIGTERM while the bulk run is in flight: it still completes and is answered.
            server.process.send_signal(signal.SIGTERM)
            bulk.join(timeout=300)
            self.assertEqual(bulk_result["response"][0], 200, bulk_result)
            # 16 files of 8 patients: each patient's two studies are reported, none skipped.
            self.assertEqual(bulk_result["response"][1]["Result"], "Warning")
            self.assertTrue(bulk_result["response"][1]["Message"].startswith(
                "Bulk inference completed with 8 patient IDs written by more than one file"))
            self.assertEqual(server.stop(), 0, "".join(server.log))
            self.assertTrue(any("SIGTERM" in line for line in server.log))
            with self.assertRaises(OSError):
                server.request("GET", "/ping", token=None, timeout=5)

            db = sqlite3.connect(server.audit)
            before = db.execute("SELECT count(*) FROM audit").fetchone()[0]
            db.close()
            self.assertGreaterEqual(before, 18)  # 16 files + the bulk request + the 503

            restarted = Server(base=base)
            try:
                code, _ = restarted.single({"input_image_path": os.path.join(
                    restarted.input_root, "pat001.dcm"), "save_to_disk": False})
                self.assertEqual(code, 200)
            finally:
                self.assertEqual(restarted.stop(), 0)
            db = sqlite3.connect(server.audit)
            rows = db.execute("SELECT subject, route, input_path, sop_instance_uid, patient_id,"
                              " result, status FROM audit ORDER BY id").fetchall()
            db.close()
            self.assertEqual(len(rows), before + 1)
            self.assertEqual(rows[-1], ("integration-tests", "single_inference",
                                        os.path.join(restarted.input_root, "pat001.dcm"),
                                        "1.2.826.0.1.3680043.10.1001.1", "PAT001",
                                        "TB Presumptive", 200))
            self.assertIn(503, [row[6] for row in rows])
        finally:
            shutil.rmtree(base, ignore_errors=True)


    def test_request_timeout(self):
        """One worker and a 1 s request timeout; six large images sent at once: the first is
        served, and a request still queued after 1 s is answered 503 without being run."""
        base = tempfile.mkdtemp(prefix="cxr-api-test-")
        try:
            server = Server(base=base, workers=1, queue_size=8,
                            config_extra={"server": {"request_timeout": "1s"}})
            big = os.path.join(server.input_root, "big.dcm")
            shutil.copyfile(os.path.join(FIXTURES, "large", "big.dcm"), big)
            answers = []

            def client():
                answers.append(server.single({"input_image_path": big, "save_to_disk": False}))

            threads = [threading.Thread(target=client) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            codes = sorted(code for code, _ in answers)
            self.assertEqual(len(codes), 6)
            self.assertEqual(codes[0], 200, codes)
            self.assertEqual(codes[-1], 503, codes)
            for code, body in answers:
                if code == 503:
                    self.assertEqual(body["Result"], "Failure")
                    self.assertIsNone(body["Data"])
                    self.assertEqual(body["Message"], "Server busy: the request waited longer "
                                     "than the request timeout for an inference worker; retry later")
                else:
                    self.assertEqual(code, 200, body)
                    self.assertEqual(body["Data"]["metadata"]["patient_id"], "PATBIG")
            self.assertEqual(server.stop(), 0, "".join(server.log))
        finally:
            shutil.rmtree(base, ignore_errors=True)


class GateWarn(unittest.TestCase):
    """[gate] mode = warn: the result comes back with Result Warning and the gate's message."""

    def test_warn_mode_returns_result_with_warning(self):
        server = Server(config_extra={"gate": {"mode": "warn"}})
        try:
            out = os.path.join(server.output_root, "warn")
            code, body = server.single({"input_image_path": os.path.join(server.input_root,
                                                                         "ct.dcm"),
                                        "save_to_disk": True, "output_folder_path": out,
                                        "dicom_outputs": True})
            self.assertEqual(code, 200, body)
            self.assertEqual(body["Result"], "Warning")
            # The heatmap's Secondary Capture, seen in the PACS without the PDF, says so.
            import pydicom
            heatmap = pydicom.dcmread(os.path.join(out, "PATCT", "PATCT_heatmap.dcm"))
            self.assertEqual(heatmap.SeriesDescription,
                             "AI heatmap (cxrd): TB Presumptive; input check warning")
            self.assertEqual(body["Message"], "Image is not a frontal chest radiograph: Modality "
                                              "CT is not a radiograph (CR or DX)")
            self.assertEqual(body["Data"]["result"], "TB Presumptive")
            self.assertTrue(os.path.exists(os.path.join(out, "PATCT", "PATCT_report.pdf")))
            warned_heatmap = Image.open(os.path.join(out, "PATCT", "PATCT_heatmap.png"))
            warned_heatmap.load()
        finally:
            server.stop()
            server.remove()
        server = Server(config_extra={"gate": {"mode": "off"}})
        try:
            out = os.path.join(server.output_root, "off")
            code, body = server.single({"input_image_path": os.path.join(server.input_root,
                                                                         "ct.dcm"),
                                        "save_to_disk": True, "output_folder_path": out})
            self.assertEqual((code, body["Result"]), (200, "Success"))
            plain_heatmap = Image.open(os.path.join(out, "PATCT", "PATCT_heatmap.png"))
            plain_heatmap.load()
        finally:
            server.stop()
            server.remove()
        # The heatmap PNG, viewed alone, carries the warning too: the same image and legend,
        # then an amber band under them.
        width, height = plain_heatmap.size
        self.assertEqual(warned_heatmap.size[0], width)
        self.assertGreater(warned_heatmap.size[1], height)
        self.assertEqual(warned_heatmap.crop((0, 0, width, height)).tobytes(),
                         plain_heatmap.convert(warned_heatmap.mode).tobytes())
        band = warned_heatmap.convert("RGB").crop((0, height, width, warned_heatmap.size[1]))
        amber = sum(1 for pixel in band.getdata()
                    if max(abs(a - b) for a, b in zip(pixel, (255, 242, 153))) <= 2)
        self.assertGreater(amber, band.size[0] * band.size[1] // 2)


class Infer(unittest.TestCase):
    """`cxrd infer`: the same outputs without HTTP, summary, exit status, --explain."""

    def test_infer_files_summary_and_explain(self):
        import numpy
        base = tempfile.mkdtemp(prefix="cxr-api-test-")
        try:
            dicom = os.path.join(FIXTURES, "dicom")
            out = os.path.join(base, "out")
            audit = os.path.join(base, "audit.sqlite")
            config = os.path.join(base, "infer.ini")
            with open(config, "w") as text:
                text.write("[model]\npath = %s\n[audit]\ndatabase = %s\n"
                           % (os.path.join(FIXTURES, "model-tb.onnx"), audit))
            run = subprocess.run([CXRD, "infer", os.path.join(dicom, "pat001.dcm"),
                                  os.path.join(dicom, "greek.dcm"), "--output", out,
                                  "--config", config], capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertIn("2 files", run.stderr)
            self.assertIn("2 analysed (TB Presumptive 2, Abnormal 0, Normal 0), 0 failed",
                          run.stderr)
            for patient in ["PAT001", "PATGR1"]:
                self.assertEqual(sorted(os.listdir(os.path.join(out, patient))),
                                 sorted(patient + s for s in ["_heatmap.png", "_predictions.json",
                                                              "_report.pdf",
                                                              "_source_image.png"]))
                with open(os.path.join(out, patient, patient + "_predictions.json")) as saved:
                    data = json.load(saved)
                self.assertEqual(list(data.keys()), DATA_KEYS)
                self.assertEqual(data["metadata"]["patient_id"], patient)
            db = sqlite3.connect(audit)
            self.assertEqual(db.execute("SELECT count(*) FROM audit WHERE route = 'infer'")
                             .fetchone()[0], 2)
            db.close()

            # --patient-id and --explain; a failing file makes the exit status 1.
            run = subprocess.run([CXRD, "infer", os.path.join(dicom, "noid.dcm"), "--output", out,
                                  "--patient-id", "EXPLAIN1", "--explain", "--model",
                                  os.path.join(FIXTURES, "model-tb.onnx")],
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)
            cams = numpy.load(os.path.join(out, "EXPLAIN1", "EXPLAIN1_cams.npy"))
            self.assertEqual(cams.dtype, numpy.float32)
            self.assertEqual(cams.ndim, 3)
            self.assertEqual(cams.shape[0], 11)
            run = subprocess.run([CXRD, "infer", os.path.join(dicom, "junk.dcm"),
                                  os.path.join(dicom, "noid.dcm"), "--output", out, "--model",
                                  os.path.join(FIXTURES, "model-tb.onnx")],
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 1)
            self.assertIn("0 analysed", run.stderr)
            self.assertIn("2 failed", run.stderr)
            self.assertIn("Invalid DICOM image, unable to fetch patient ID", run.stderr)
            self.assertIn("Patient ID is empty or None", run.stderr)
            # Two studies of one patient in one run: said, and both kept in the results
            # database that infer keeps in the output folder when no audit log is configured.
            twins = os.path.join(base, "twins")
            run = subprocess.run([CXRD, "infer", os.path.join(dicom, "twin1.dcm"),
                                  os.path.join(dicom, "twin2.dcm"), "--output", twins, "--model",
                                  os.path.join(FIXTURES, "model-tb.onnx")],
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertIn("infer: warning: 1 patient IDs written by more than one file", run.stderr)
            self.assertIn("TWIN1: %s, %s (the folder holds %s)" % (
                os.path.join(dicom, "twin1.dcm"), os.path.join(dicom, "twin2.dcm"),
                os.path.join(dicom, "twin2.dcm")), run.stderr)
            for uid in ["1.2.826.0.1.3680043.10.1003.1", "1.2.826.0.1.3680043.10.1003.2"]:
                run = subprocess.run([CXRD, "results", "--sop", uid, "--database",
                                      os.path.join(twins, "cxrd_results.sqlite")],
                                     capture_output=True, text=True)
                self.assertEqual(run.returncode, 0, run.stderr)
                self.assertEqual(json.loads(run.stdout)[0]["predictions"]["metadata"]
                                 ["sop_instance_uid"], uid)
            # A folder is taken as its .dcm files, recursively.
            folder = os.path.join(base, "in", "sub")
            os.makedirs(folder)
            shutil.copyfile(os.path.join(dicom, "conc3.dcm"), os.path.join(folder, "a.DCM"))
            shutil.copyfile(os.path.join(dicom, "conc4.dcm"), os.path.join(base, "in", "b.dcm"))
            with open(os.path.join(folder, "notes.txt"), "w") as notes:
                notes.write("not DICOM")
            run = subprocess.run([CXRD, "infer", os.path.join(base, "in"), "--output",
                                  os.path.join(base, "from-folder"), "--model",
                                  os.path.join(FIXTURES, "model-tb.onnx")],
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertIn("2 analysed", run.stderr)
            self.assertEqual(without_summary(os.listdir(os.path.join(base, "from-folder"))),
                             ["PATC3", "PATC4", "cxrd_results.sqlite"])
            # A file without --output says what is missing.
            run = subprocess.run([CXRD, "infer", os.path.join(dicom, "pat001.dcm")],
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 2)
            self.assertIn("--output OUT is required", run.stderr)
            # Usage errors are exit status 2.
            self.assertEqual(subprocess.run([CXRD, "infer", "--output", out],
                                            capture_output=True).returncode, 2)
            self.assertEqual(subprocess.run([CXRD, "infer", "a.dcm", "b.dcm", "--output", out,
                                             "--patient-id", "X"],
                                            capture_output=True).returncode, 2)
        finally:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
