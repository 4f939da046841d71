"""A stand-in for a Kubernetes API server that answers only what `kubectl apply --dry-run=client`
asks: the version, resource discovery for the kinds deploy/k8s uses (with the group versions a
current cluster serves), and 404 for every object, so kubectl takes the create path. Every request
is recorded, so a test can prove that nothing was sent to be stored."""
import http.server
import json
import threading

VERSION = {"major": "1", "minor": "28", "gitVersion": "v1.28.0", "platform": "linux/amd64"}

# group version -> [(plural resource, Kind, short names)]
RESOURCES = {
    "v1": [("configmaps", "ConfigMap", ["cm"]), ("secrets", "Secret", []),
           ("services", "Service", ["svc"]),
           ("persistentvolumeclaims", "PersistentVolumeClaim", ["pvc"])],
    "apps/v1": [("deployments", "Deployment", ["deploy"])],
    "batch/v1": [("jobs", "Job", [])],
    "autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", ["hpa"])],
}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def resource_list(group_version):
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": [{"name": name, "singularName": kind.lower(), "namespaced": True,
                           "kind": kind, "verbs": VERBS, "shortNames": short}
                          for name, kind, short in RESOURCES[group_version]]}


def group_list():
    groups = []
    for group_version in RESOURCES:
        if "/" not in group_version:
            continue
        name, version = group_version.split("/")
        entry = {"groupVersion": group_version, "version": version}
        groups.append({"name": name, "versions": [entry], "preferredVersion": entry})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def not_found(path):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "%s not found" % path, "reason": "NotFound", "code": 404}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        text = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def do_GET(self):
        self.server.requests.append(("GET", self.path))
        path = self.path.split("?")[0]
        if path == "/version":
            self.answer(200, VERSION)
        elif path == "/api":
            self.answer(200, {"kind": "APIVersions", "versions": ["v1"],
                              "serverAddressByClientCIDRs": []})
        elif path == "/apis":
            self.answer(200, group_list())
        elif path == "/api/v1":
            self.answer(200, resource_list("v1"))
        elif path.startswith("/apis/") and path[len("/apis/"):] in RESOURCES:
            self.answer(200, resource_list(path[len("/apis/"):]))
        else:
            self.answer(404, not_found(path))

    def refuse(self):
        self.server.requests.append((self.command, self.path))
        self.answer(405, not_found(self.path))

    do_POST = do_PUT = do_PATCH = do_DELETE = refuse


class DiscoveryServer:
    """Runs on a loopback port in a thread; `url` is the address to give kubectl --server."""

    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.requests = []
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def requests(self):
        return list(self.httpd.requests)
