#!/usr/bin/python3
"""The OpenAPI document against the real server: GET /openapi.json (no token) is docs/openapi.yaml,
and every response that the contract tests of server_test.py receive (every route and status
they exercise) validates against the schema the document gives for its path, method and status
(python3-jsonschema, draft 2020-12 as OpenAPI 3.1 uses).

Environment as server_test.py; argument 1: docs/openapi.yaml.
"""
import json
import os
import re
import sys
import unittest

import jsonschema
import yaml

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jobs_test  # noqa: E402
import server_test  # noqa: E402

DOCUMENT_PATH = sys.argv.pop(1) if len(sys.argv) > 1 else "docs/openapi.yaml"
GROUPS = ["Validation", "Limits", "Auth", "SaveModes", "Bulk", "DicomOutputs"]
JOB_GROUPS = ["Jobs", "JobsCancel", "JobsAuth"]  # jobs_test.py: jobs, summaries, errors
recorded = []

original_request = server_test.Server.request


def recording_request(self, method, path, *args, **kwargs):
    status, body = original_request(self, method, path, *args, **kwargs)
    recorded.append((method, path, status, body, self.last_text))
    return status, body


class OpenApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DOCUMENT_PATH) as source:
            cls.document = yaml.safe_load(source)
        jsonschema.Draft202012Validator.check_schema(
            {"$defs": cls.document["components"]["schemas"]})

    def template_of(self, path):
        """The document's path for a request path: itself, or a template such as
        /jobs/{id} whose parameters match one path segment each."""
        path = path.split("?", 1)[0]
        if path in self.document["paths"]:
            return path
        for template in self.document["paths"]:
            pattern = "/".join("[^/]+" if part.startswith("{") else re.escape(part)
                               for part in template.split("/"))
            if re.fullmatch(pattern, path):
                return template
        return None

    def schema_for(self, method, path, status):
        operation = self.document["paths"].get(path, {}).get(method.lower())
        self.assertIsNotNone(operation, "%s %s is not in the document" % (method, path))
        response = operation["responses"].get(str(status))
        self.assertIsNotNone(response, "%s %s: status %d is not documented" %
                             (method, path, status))
        if "$ref" in response:
            name = response["$ref"].rsplit("/", 1)[1]
            response = self.document["components"]["responses"][name]
        return response["content"]

    def validate(self, method, path, status, body, text):
        content = self.schema_for(method, path, status)
        for kind in ("text/plain", "text/csv", "text/html"):
            if kind in content:
                self.assertIsInstance(text, str)
                return
        schema = content["application/json"]["schema"]
        resolver = jsonschema.RefResolver.from_schema(self.document)
        jsonschema.Draft202012Validator(schema, resolver=resolver).validate(body)

    def test_served_document_and_contract_responses(self):
        server = server_test.Server()
        try:
            code, served = server.request("GET", "/openapi.json", token=None)
            self.assertEqual(code, 200)
            self.assertEqual(served, self.document)
            self.assertEqual(served["openapi"], "3.1.0")
        finally:
            server.stop()
            server.remove()

        server_test.Server.request = recording_request
        try:
            suite = unittest.TestSuite()
            for group in GROUPS:
                suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(
                    getattr(server_test, group)))
            for group in JOB_GROUPS:
                suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(
                    getattr(jobs_test, group)))
            outcome = unittest.TextTestRunner(stream=open(os.devnull, "w")).run(suite)
            self.assertTrue(outcome.wasSuccessful(),
                            [str(failure) for failure in outcome.failures + outcome.errors])
        finally:
            server_test.Server.request = original_request
        seen = set()
        for method, path, status, body, text in recorded:
            path = self.template_of(path) or path
            if path not in self.document["paths"]:
                self.assertEqual(status, 404)  # the contract's unknown-route probe
                jsonschema.Draft202012Validator(
                    self.document["components"]["schemas"]["Failure"]).validate(body)
                continue
            if method.lower() not in self.document["paths"][path]:
                # Undocumented methods of a documented path: 405 with the Failure envelope, as
                # the document's description says.
                self.assertEqual(status, 405)
                jsonschema.Draft202012Validator(
                    self.document["components"]["schemas"]["Failure"]).validate(body)
                seen.add((method, path, status))
                continue
            with self.subTest(method=method, path=path, status=status):
                self.validate(method, path, status, body, text)
                seen.add((method, path, status))
        print("validated %d responses, %d (method, path, status) combinations: %s" %
              (len(recorded), len(seen), sorted(seen)), file=sys.stderr)
        for wanted in [("POST", "/single_inference", 200), ("POST", "/single_inference", 400),
                       ("POST", "/single_inference", 401), ("POST", "/bulk_inference", 200),
                       ("POST", "/bulk_inference", 400), ("GET", "/ping", 200),
                       ("GET", "/metrics", 200), ("POST", "/bulk_inference", 202),
                       ("GET", "/jobs", 200), ("GET", "/jobs/{id}", 200),
                       ("DELETE", "/jobs/{id}", 200), ("DELETE", "/jobs/{id}", 409),
                       ("GET", "/jobs/{id}", 404), ("GET", "/jobs/{id}/summary.csv", 200),
                       ("GET", "/results", 401)]:
            self.assertIn(wanted, seen)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
