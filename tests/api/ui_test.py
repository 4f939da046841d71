#!/usr/bin/python3
"""The worklist page (GET /ui) in headless Chromium (Debian `chromium`, driven through its
DevTools protocol over --remote-debugging-pipe, Python standard library only): the page loads
under its strict Content-Security-Policy (its script runs, no inline code), a request without a
token gets no data, the reader signs in (the token stays in sessionStorage only), the results of
a run are listed TB Presumptive first, the TB Presumptive filter leaves exactly the TB rows of
the database, a row opens with the heatmap whose bytes are the heatmap file on disk, and the
toggle shows the source image. Screenshots of each step go to the folder of argument 1.

Environment as server_test.py. Argument 1: the screenshot folder (in the build tree).
"""
import base64
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jobs_test import make_files, wait_for  # noqa: E402
from server_test import Server  # noqa: E402

SHOTS = sys.argv.pop(1) if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="cxr-ui-shots-")
CHROMIUM = shutil.which("chromium") or "chromium"


class Browser:
    """One headless Chromium with one page, commands over the DevTools pipe (fd 3 in, fd 4
    out, messages ended by NUL)."""

    def __init__(self):
        if shutil.which(CHROMIUM) is None:
            raise RuntimeError("chromium is not installed (scripts/install-deps installs it)")
        self.profile = tempfile.mkdtemp(prefix="cxr-ui-chromium-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def child_fds():
            # Through fds above 4 first: a pipe end may itself be fd 3 or 4.
            read_end = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        args = [CHROMIUM, "--headless=new", "--remote-debugging-pipe", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--user-data-dir=" + self.profile, "--window-size=1400,1100"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self.process = subprocess.Popen(args + ["about:blank"], preexec_fn=child_fds,
                                        close_fds=False, stdout=subprocess.DEVNULL,
                                        stderr=open(os.path.join(SHOTS, "chromium.log"), "w"))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.next_id = 0
        self.buffer = b""
        self.events = []
        target = self.command("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.command("Target.attachToTarget",
                                    {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.command(domain, session=True)

    def _read_message(self):
        while b"\0" not in self.buffer:
            chunk = os.read(self.from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def command(self, method, params=None, session=False):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply["result"]
            self.events.append(reply)

    def evaluate(self, expression):
        """The value of a JavaScript expression (promises awaited)."""
        result = self.command("Runtime.evaluate", {"expression": expression,
                                                   "awaitPromise": True,
                                                   "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError("%s: %s" % (expression, result["exceptionDetails"]))
        return result["result"].get("value")

    def wait(self, expression, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.evaluate(expression):
                return
            time.sleep(0.1)
        raise AssertionError("timed out waiting for: " + expression)

    def screenshot(self, name):
        data = self.command("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        path = os.path.join(SHOTS, name)
        with open(path, "wb") as out:
            out.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.command("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)
        shutil.rmtree(self.profile, ignore_errors=True)


def sha256_file(path):
    with open(path, "rb") as source:
        return hashlib.sha256(source.read()).hexdigest()


class Worklist(unittest.TestCase):
    def test_sign_in_list_filter_open_heatmap(self):
        os.makedirs(SHOTS, exist_ok=True)
        # Three runs into one database: TB Presumptive (an async job), Abnormal and Normal
        # (sync bulk runs), each by a server with a model pinned to that result.
        server = Server(model="model-tb.onnx")
        base = server.base
        try:
            folder = make_files(server, "ui-tb", 3)
            code, body = server.request("POST", "/bulk_inference", {
                "input_folder_path": folder, "async": True,
                "output_folder_path": os.path.join(server.output_root, "ui-tb")})
            self.assertEqual(code, 202, body)
            job_id = body["Data"]["id"]
            wait_for(server, job_id, lambda d: d["state"] == "done")
            server.stop()
            for model, name in (("model-abnormal.onnx", "ui-ab"), ("model-normal.onnx", "ui-no")):
                server = Server(model=model, base=base)
                folder = make_files(server, name, 2)
                code, body = server.request("POST", "/bulk_inference", {
                    "input_folder_path": folder,
                    "output_folder_path": os.path.join(server.output_root, name)})
                self.assertEqual(code, 200, body)
                server.stop()
            server = Server(model="model-tb.onnx", base=base)
            db = sqlite3.connect(server.audit)
            stored = db.execute("SELECT id, result, patient_id FROM audit WHERE predictions != ''"
                                " ORDER BY id").fetchall()
            db.close()
            self.assertEqual(sorted(r for _, r, _ in stored),
                             ["Abnormal"] * 2 + ["Normal"] * 2 + ["TB Presumptive"] * 3)
            url = "http://127.0.0.1:%d" % server.port

            # The page's headers, and no data without a token.
            with urllib.request.urlopen(url + "/ui") as page:
                policy = page.headers["Content-Security-Policy"]
                self.assertIn("script-src 'self'", policy)
                self.assertNotIn("unsafe-inline", policy)
                self.assertIn("default-src 'none'", policy)
                self.assertEqual(page.headers["X-Content-Type-Options"], "nosniff")
                html = page.read().decode()
            self.assertNotIn("<script>", html)  # no inline script: only <script src=...>

            browser = Browser()
            try:
                browser.command("Page.navigate", {"url": url + "/ui"}, session=True)
                browser.wait("document.readyState === 'complete' && "
                             "document.querySelectorAll('#filter-finding option').length === 12")
                self.assertFalse(browser.evaluate("document.getElementById('signin').hidden"))
                browser.screenshot("1-sign-in.png")
                no_token = browser.evaluate(
                    "Promise.all(['/results', '/results/%d/source_image.png', '/jobs'].map("
                    "p => fetch(p).then(r => r.json().then(b => [r.status, b.Data, b.Message]))))"
                    % stored[0][0])
                self.assertEqual(no_token, [[401, None, "Token missing"]] * 3)

                browser.evaluate("document.getElementById('token').value = %s;"
                                 "document.getElementById('signin-button').click(); true"
                                 % json.dumps(server.token))
                browser.wait("!document.getElementById('worklist').hidden && "
                             "document.querySelectorAll('#results tbody tr').length > 0")
                self.assertEqual(browser.evaluate("sessionStorage.getItem('cxrd-token')"),
                                 server.token)
                self.assertEqual(browser.evaluate("localStorage.length + document.cookie.length"),
                                 0)
                listed = browser.evaluate(
                    "[...document.querySelectorAll('#results tbody tr')].map(tr => "
                    "[Number(tr.dataset.id), tr.cells[1].textContent, tr.cells[3].textContent])")
                self.assertEqual(sorted(listed), sorted([[i, p, r] for i, r, p in stored]))
                self.assertEqual([row[2] for row in listed][:3], ["TB Presumptive"] * 3)
                browser.screenshot("2-results.png")
                self.assertTrue(browser.evaluate("document.getElementById('more').hidden"))

                # Paging: with 3 results a page, "More results" reaches all 7, in the order of
                # the full list, and goes away on the last page.
                browser.evaluate("state.pageSize = 3; document.getElementById('apply').click();"
                                 " true")
                browser.wait("document.querySelectorAll('#results tbody tr').length === 3 &&"
                             " !document.getElementById('more').hidden")
                for count in (6, 7):
                    browser.evaluate("document.getElementById('more').click(); true")
                    browser.wait("document.querySelectorAll('#results tbody tr').length === %d"
                                 % count)
                browser.wait("document.getElementById('more').hidden")
                paged = browser.evaluate(
                    "[...document.querySelectorAll('#results tbody tr')].map(tr => "
                    "[Number(tr.dataset.id), tr.cells[1].textContent, tr.cells[3].textContent])")
                self.assertEqual(paged, listed)
                browser.evaluate("state.pageSize = 200; true")

                # The results of one run: the job's ID as the run filter.
                browser.evaluate("document.getElementById('filter-job').value = '%s';"
                                 "document.getElementById('apply').click(); true" % job_id)
                browser.wait("document.querySelectorAll('#results tbody tr').length === 3")
                browser.evaluate("document.getElementById('filter-job').value = ''; true")

                # The date filter and the times are the reader's: in a zone whose date differs
                # from the UTC one now (UTC+14 or UTC-12), the results are found under the
                # local date, shown in local time, and not under the UTC date.
                db = sqlite3.connect(server.audit)
                times = dict(db.execute("SELECT id, time FROM audit WHERE predictions != ''"))
                db.close()
                utc = {i: datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
                       for i, t in times.items()}
                first_utc = utc[stored[0][0]]
                zone, hours = (("Pacific/Kiritimati", 14) if first_utc.hour >= 10
                               else ("Etc/GMT+12", -12))
                local = {i: t + datetime.timedelta(hours=hours) for i, t in utc.items()}
                browser.command("Emulation.setTimezoneOverride", {"timezoneId": zone},
                                session=True)
                for day in (local[stored[0][0]].date(), first_utc.date()):
                    expected = sorted(i for i, t in local.items() if t.date() == day)
                    browser.evaluate("document.getElementById('filter-date').value = '%s';"
                                     "document.getElementById('status').textContent = '';"
                                     "document.getElementById('apply').click(); true" % day)
                    browser.wait("/^[0-9]+ results/.test("
                                 "document.getElementById('status').textContent)")
                    shown = browser.evaluate(
                        "[...document.querySelectorAll('#results tbody tr')].map(tr => "
                        "[Number(tr.dataset.id), tr.cells[0].textContent])")
                    self.assertEqual(sorted(i for i, _ in shown), expected, (zone, day))
                    for i, text in shown:
                        self.assertEqual(text, local[i].strftime("%Y-%m-%d %H:%M:%S"))
                self.assertNotEqual(local[stored[0][0]].date(), first_utc.date())
                browser.command("Emulation.setTimezoneOverride", {"timezoneId": ""},
                                session=True)
                browser.evaluate("document.getElementById('filter-date').value = ''; true")

                browser.evaluate("document.getElementById('filter-result').value = "
                                 "'TB Presumptive'; document.getElementById('apply').click();"
                                 " true")
                browser.wait("[...document.querySelectorAll('#results tbody tr')].every("
                             "tr => tr.cells[3].textContent === 'TB Presumptive') && "
                             "document.querySelectorAll('#results tbody tr').length === 3")
                shown = browser.evaluate(
                    "[...document.querySelectorAll('#results tbody tr')].map(tr => "
                    "Number(tr.dataset.id))")
                self.assertEqual(sorted(shown),
                                 sorted(i for i, r, _ in stored if r == "TB Presumptive"))
                browser.screenshot("3-filtered-tb.png")

                browser.evaluate("document.querySelector('#results tbody tr').click(); true")
                browser.wait("document.getElementById('detail-image').dataset.showing === "
                             "'heatmap' && document.getElementById('detail-image').complete && "
                             "document.getElementById('detail-image').naturalWidth > 0")
                first = shown[0]
                patient = [p for i, _, p in stored if i == first][0]
                folder = os.path.join(server.output_root, "ui-tb", patient)
                # The page may not fetch its own blob: URLs (connect-src 'self'): the bytes are
                # read from the Blob the shown URL was made from.
                image = browser.evaluate(
                    "(async () => { const img = document.getElementById('detail-image');"
                    " const bytes = await state.blobs['heatmap.png'].arrayBuffer();"
                    " const digest = await crypto.subtle.digest('SHA-256', bytes);"
                    " return [img.src.slice(0, 5) + String(img.src === state.urls.heatmap),"
                    " [...new Uint8Array(digest)].map("
                    "b => b.toString(16).padStart(2, '0')).join(''), img.naturalWidth,"
                    " img.naturalHeight]; })()")
                self.assertEqual(image[0], "blob:true")
                self.assertEqual(image[1], sha256_file(os.path.join(folder,
                                                                    patient + "_heatmap.png")))
                findings = browser.evaluate("document.querySelectorAll('#findings tbody tr')"
                                            ".length")
                self.assertEqual(findings, 11)
                browser.screenshot("4-heatmap-on.png")

                browser.evaluate("document.getElementById('toggle-heatmap').click(); true")
                browser.wait("document.getElementById('detail-image').dataset.showing === "
                             "'source' && document.getElementById('detail-image').complete")
                source = browser.evaluate(
                    "(async () => { const img = document.getElementById('detail-image');"
                    " const bytes = await state.blobs['source_image.png'].arrayBuffer();"
                    " const digest = await crypto.subtle.digest('SHA-256', bytes);"
                    " return [img.src === state.urls.source, [...new Uint8Array(digest)].map("
                    "b => b.toString(16).padStart(2, '0')).join('')]; })()")
                self.assertEqual(source, [True, sha256_file(os.path.join(
                    folder, patient + "_source_image.png"))])
                # The heatmap is the source plus the legend strip below it.
                self.assertGreater(image[3], browser.evaluate(
                    "document.getElementById('detail-image').naturalHeight"))
                browser.screenshot("5-heatmap-off.png")

                blocked = [e for e in browser.events if e.get("method") == "Log.entryAdded" and
                           "Content Security Policy" in e["params"]["entry"].get("text", "")]
                self.assertEqual(blocked, [])
                # The PDF link fetches the report with the token too.
                browser.evaluate("document.getElementById('pdf-link').click(); true")
                browser.wait("state.blobs['report.pdf'] !== undefined")
                pdf = browser.evaluate(
                    "(async () => { const bytes = await state.blobs['report.pdf'].arrayBuffer();"
                    " const digest = await crypto.subtle.digest('SHA-256', bytes);"
                    " return [...new Uint8Array(digest)].map("
                    "b => b.toString(16).padStart(2, '0')).join(''); })()")
                self.assertEqual(pdf, sha256_file(os.path.join(folder, patient + "_report.pdf")))
                self.check_late_answers_never_show_another_patient(browser, shown, stored,
                                                                   server)
                browser.evaluate("document.getElementById('signout').click(); true")
                self.assertIsNone(browser.evaluate("sessionStorage.getItem('cxrd-token')"))
            finally:
                browser.close()
            print("screenshots in %s" % SHOTS, file=sys.stderr)
        finally:
            server.stop()
            server.remove()

    def check_late_answers_never_show_another_patient(self, browser, shown, stored, server):
        """A reader opens row A and clicks on to row B before A's files arrive (a slow link):
        A's late answers must not replace B's image, heatmap or PDF. A's files are held back
        1.5 s and answered with bytes of their own ("late-A"), so any of them kept shows."""
        late, other = shown[1], shown[2]
        patient = [p for i, _, p in stored if i == other][0]
        folder = os.path.join(server.output_root, "ui-tb", patient)
        browser.evaluate(
            "window.realFetch = window.realFetch || window.fetch;"
            " window.fetch = async (path, options) => {"
            " if (String(path).startsWith('/results/%d/')) {"
            " await new Promise(r => setTimeout(r, 1500));"
            " return new Response(new Blob(['late-A']), {status: 200}); }"
            " return window.realFetch(path, options); }; true" % late)
        rows = "[...document.querySelectorAll('#results tbody tr')]"
        browser.evaluate("%s.find(tr => tr.dataset.id === '%d').click();"
                         " %s.find(tr => tr.dataset.id === '%d').click(); true"
                         % (rows, late, rows, other))
        time.sleep(3.5)  # A's source and heatmap answers have both arrived
        seen = browser.evaluate(
            "[state.selected, state.blobs['source_image.png'].size,"
            " state.blobs['heatmap.png'].size, document.getElementById('detail-title').textContent]")
        self.assertEqual(seen[0], other)
        self.assertEqual(seen[1:3], [os.path.getsize(os.path.join(folder, patient + name))
                                     for name in ("_source_image.png", "_heatmap.png")])
        self.assertTrue(seen[3].startswith(patient), seen[3])
        browser.evaluate("document.getElementById('toggle-heatmap').click(); true")
        browser.wait("document.getElementById('detail-image').dataset.showing === 'source'"
                     " && document.getElementById('detail-image').complete")
        self.assertGreater(browser.evaluate(
            "document.getElementById('detail-image').naturalWidth"), 0)

        # The PDF: asked for on A, then the reader opens B; B's PDF link gives B's report.
        browser.evaluate("%s.find(tr => tr.dataset.id === '%d').click(); true" % (rows, late))
        browser.wait("state.selected === %d" % late)
        time.sleep(3.5)
        browser.evaluate("document.getElementById('pdf-link').click();"
                         " %s.find(tr => tr.dataset.id === '%d').click(); true" % (rows, other))
        browser.wait("state.urls.heatmap !== undefined && state.selected === %d" % other)
        time.sleep(2.0)  # A's report has arrived
        browser.evaluate("document.getElementById('pdf-link').click(); true")
        browser.wait("state.blobs['report.pdf'] !== undefined")
        self.assertEqual(browser.evaluate("state.blobs['report.pdf'].size"),
                         os.path.getsize(os.path.join(folder, patient + "_report.pdf")))
        browser.evaluate("window.fetch = window.realFetch; true")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
