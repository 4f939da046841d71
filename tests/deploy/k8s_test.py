#!/usr/bin/python3
"""deploy/k8s manifests: parsed with python3-yaml and checked against each other; the ConfigMap's
cxrd.ini loaded by the real cxrd; kubectl's client-side dry run against a discovery stand-in
(kubectl needs an API server's resource discovery even for a client-side dry run).

Arguments: MANIFEST_DIR CXRD."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

from discovery_server import DiscoveryServer

MANIFESTS, CXRD = sys.argv.pop(1), sys.argv.pop(1)


def load():
    objects = {}
    for path in sorted(glob.glob(os.path.join(MANIFESTS, "*.yaml"))):
        with open(path) as source:
            for document in yaml.safe_load_all(source):
                objects[document["kind"]] = document
    return objects


class Manifests(unittest.TestCase):
    def setUp(self):
        self.objects = load()

    def test_kinds(self):
        self.assertEqual(sorted(self.objects), ["ConfigMap", "Deployment",
                                                "HorizontalPodAutoscaler", "Job",
                                                "PersistentVolumeClaim", "Secret", "Service"])

    def test_deployment_probes_resources_and_volumes(self):
        deployment = self.objects["Deployment"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        self.assertEqual(deployment["spec"]["selector"]["matchLabels"], labels)
        self.assertEqual(self.objects["Service"]["spec"]["selector"], labels)
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertEqual(container[probe]["httpGet"]["path"], "/ping")
        self.assertEqual(container["resources"]["requests"]["cpu"], "2")
        self.assertIn("memory", container["resources"]["limits"])
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for mount in container["volumeMounts"]:
            self.assertIn(mount["name"], volumes)
        self.assertEqual(volumes["data"]["persistentVolumeClaim"]["claimName"],
                         self.objects["PersistentVolumeClaim"]["metadata"]["name"])
        self.assertEqual(volumes["config"]["configMap"]["name"],
                         self.objects["ConfigMap"]["metadata"]["name"])
        self.assertIn("ReadWriteMany", self.objects["PersistentVolumeClaim"]["spec"]["accessModes"])

    def test_hpa_and_indexed_job(self):
        hpa = self.objects["HorizontalPodAutoscaler"]
        self.assertEqual(hpa["spec"]["scaleTargetRef"]["name"],
                         self.objects["Deployment"]["metadata"]["name"])
        self.assertEqual(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu")
        job = self.objects["Job"]["spec"]
        self.assertEqual(job["completionMode"], "Indexed")
        script = job["template"]["spec"]["containers"][0]["args"][0]
        self.assertIn("N=%d" % job["completions"], script)
        self.assertIn("JOB_COMPLETION_INDEX", script)

    def test_configmap_accepted_by_cxrd(self):
        with tempfile.NamedTemporaryFile("w", suffix=".ini") as config:
            config.write(self.objects["ConfigMap"]["data"]["cxrd.ini"])
            config.flush()
            run = subprocess.run([CXRD, "token", "--config", config.name, "--subject", "k8s"],
                                 capture_output=True, text=True,
                                 env=dict(os.environ,
                                          CXRD_JWT_SECRET="k8s-test-secret-0123456789abcdef"))
        self.assertEqual(run.returncode, 0, run.stderr)

    def test_kubectl_dry_run(self):
        """kubectl's client-side dry run against the discovery stand-in: every object is accepted
        as '(dry run)' and nothing but GETs reaches the server."""
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            self.skipTest("kubectl is not installed (Debian: kubernetes-client)")
        with tempfile.TemporaryDirectory() as home, DiscoveryServer() as server:
            kubeconfig = os.path.join(home, "config")
            open(kubeconfig, "w").close()
            run = subprocess.run([kubectl, "apply", "--dry-run=client", "--validate=false",
                                  "--server", server.url, "--cache-dir", home, "-f", MANIFESTS],
                                 capture_output=True, text=True, timeout=60,
                                 env=dict(os.environ, HOME=home, KUBECONFIG=kubeconfig))
            requests = server.requests
        self.assertEqual(run.returncode, 0, run.stderr)
        expected = set()
        for kind, document in self.objects.items():
            group = document["apiVersion"].rpartition("/")[0]
            expected.add("%s%s/%s created (dry run)" % (kind.lower(), "." + group if group else "",
                                                        document["metadata"]["name"]))
        self.assertEqual(set(run.stdout.splitlines()), expected, run.stdout)
        self.assertTrue(requests)
        self.assertEqual({method for method, _ in requests}, {"GET"}, requests)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
