#!/usr/bin/python3
"""The Debian package end to end without installing it on this machine: cpack -G DEB into a temp
folder, dpkg-deb -x into a fresh root, then the files, the conffile, modes, maintainer scripts,
dependencies, the systemd unit (systemd-analyze verify; security score printed) and the unpacked
/usr/bin/cxrd serving with /usr/share/cxrd's model and /etc/cxrd/cxrd.ini's settings. Then the
real installation: dpkg --root into a throwaway root with the real maintainer scripts
(install_root.sh).

Arguments: BUILD_DIR SOURCE_DIR."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

BUILD, SOURCE = sys.argv.pop(1), sys.argv.pop(1)


def run(*command, **kwargs):
    return subprocess.run(list(command), check=True, capture_output=True, text=True, **kwargs)


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="cxr-deb-")
        run("cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B",
            cls.work)
        debs = [name for name in os.listdir(cls.work) if name.endswith(".deb")]
        assert len(debs) == 1, debs
        cls.deb = os.path.join(cls.work, debs[0])
        cls.root = os.path.join(cls.work, "root")
        cls.control = os.path.join(cls.work, "control")
        run("dpkg-deb", "-x", cls.deb, cls.root)
        run("dpkg-deb", "-e", cls.deb, cls.control)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_name_files_and_modes(self):
        self.assertRegex(os.path.basename(self.deb), r"^cxrd_\d+\.\d+\.\d+_amd64\.deb$")
        listing = run("dpkg-deb", "-c", self.deb).stdout
        modes = {}
        for line in listing.splitlines():
            fields = line.split()
            modes[fields[-1].lstrip(".")] = (fields[0], fields[1])
        for path in ["/usr/bin/cxrd", "/usr/share/cxrd/cxr-default.onnx",
                     "/usr/share/cxrd/MODEL_CARD.md", "/etc/cxrd/cxrd.ini",
                     "/lib/systemd/system/cxrd.service", "/usr/share/doc/cxrd/README.md"]:
            self.assertIn(path, modes)
        self.assertEqual(modes["/etc/cxrd/cxrd.ini"], ("-rw-r-----", "root/root"))
        self.assertEqual(modes["/usr/bin/cxrd"][0], "-rwxr-xr-x")

    def test_control_conffiles_and_scripts(self):
        with open(os.path.join(self.control, "conffiles")) as conffiles:
            self.assertEqual(conffiles.read().split(), ["/etc/cxrd/cxrd.ini"])
        with open(os.path.join(self.control, "control")) as control:
            text = control.read()
        depends = re.search(r"^Depends: (.*)$", text, re.M).group(1)
        for library in ["libmicrohttpd12", "libjwt0", "libxnnpack0", "libsystemd0",
                        "libgnutls30", "adduser"]:
            self.assertIn(library, depends)  # dpkg-shlibdeps found the libraries
        # the report's fonts: without WenQuanYi a CJK or Korean patient name prints as boxes
        for font in ["fonts-dejavu-core", "fonts-wqy-microhei"]:
            self.assertIn(font, depends)
        with open(os.path.join(self.control, "postinst")) as postinst:
            script = postinst.read()
        self.assertIn("adduser --system", script)
        self.assertIn("chown root:cxrd /etc/cxrd /etc/cxrd/cxrd.ini", script)
        self.assertIn("chmod 0640 /etc/cxrd/cxrd.ini", script)
        for name in ["postinst", "prerm", "postrm"]:
            path = os.path.join(self.control, name)
            self.assertTrue(os.access(path, os.X_OK), name)
            run("sh", "-n", path)

    def test_no_build_tree_path_in_binary(self):
        if os.environ.get("CXR_SANITIZED") == "1":
            self.skipTest("a sanitizer build names its source files for its diagnostics")
        with open(os.path.join(self.root, "usr/bin/cxrd"), "rb") as binary:
            data = binary.read()
        for tree in {os.path.realpath(SOURCE), os.path.realpath(BUILD)}:
            self.assertNotIn(tree.encode(), data)

    def test_systemd_unit(self):
        with open(os.path.join(self.root, "lib/systemd/system/cxrd.service")) as unit:
            text = unit.read()
        for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "ProtectSystem=strict",
                     "ReadWritePaths=/srv/cxrd/out /var/lib/cxrd", "NoNewPrivileges=yes",
                     "PrivateTmp=yes", "CapabilityBoundingSet=\n",
                     "SystemCallFilter=@system-service",
                     "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "User=cxrd",
                     "ExecStart=/usr/bin/cxrd serve --config /etc/cxrd/cxrd.ini"]:
            self.assertIn(line, text)
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed")
        # verify checks that ExecStart exists: point it at the unpacked binary.
        unit_dir = os.path.join(self.work, "unit")
        os.makedirs(unit_dir, exist_ok=True)
        path = os.path.join(unit_dir, "cxrd.service")
        with open(path, "w") as out:
            out.write(text.replace("/usr/bin/cxrd", os.path.join(self.root, "usr/bin/cxrd")))
        verify = subprocess.run(["systemd-analyze", "verify", path], capture_output=True,
                                text=True)
        self.assertEqual(verify.returncode, 0, verify.stderr)
        self.assertEqual(verify.stderr.strip(), "")
        security = subprocess.run(["systemd-analyze", "security", "--offline=true",
                                   "--no-pager", path], capture_output=True, text=True)
        match = re.search(r"Overall exposure level for cxrd.service: ([0-9.]+) (\w+)",
                          security.stdout)
        self.assertIsNotNone(match, security.stdout + security.stderr)
        print("systemd-analyze security: %s %s" % match.groups(), file=sys.stderr)
        self.assertLessEqual(float(match.group(1)), 2.0)

    def test_unpacked_binary_serves_with_packaged_model_and_config(self):
        # The packaged config with this test's folders for the roots, state and secret; the
        # model is the default, found beside the unpacked binary (../share/cxrd).
        with open(os.path.join(self.root, "etc/cxrd/cxrd.ini")) as packaged:
            text = packaged.read()
        state = os.path.join(self.work, "state")
        for folder in ["in", "out", "lib"]:
            os.makedirs(os.path.join(state, folder), exist_ok=True)
        secret = os.path.join(state, "jwt-secret")
        with open(secret, "w") as out:
            out.write("packaging-test-secret-0123456789abcdef\n")
        text = (text.replace("/srv/cxrd/in", os.path.join(state, "in"))
                    .replace("/srv/cxrd/out", os.path.join(state, "out"))
                    .replace("/var/lib/cxrd", os.path.join(state, "lib"))
                    .replace("/etc/cxrd/jwt-secret", secret)
                    .replace("port = 8500", "port = 0"))
        self.assertNotIn("\npath =", text)  # the model is the default
        config = os.path.join(state, "cxrd.ini")
        with open(config, "w") as out:
            out.write(text)
        binary = os.path.join(self.root, "usr/bin/cxrd")
        # systemd's side of Type=notify: a datagram socket in NOTIFY_SOCKET.
        notify_path = os.path.join(self.work, "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(60)
        env = {"PATH": "/usr/bin:/bin"}
        process = subprocess.Popen([binary, "serve", "--config", config], cwd=self.work,
                                   stderr=subprocess.PIPE, text=True,
                                   env=dict(env, NOTIFY_SOCKET=notify_path))
        try:
            port, log = None, []
            deadline = time.time() + 120
            while time.time() < deadline:
                line = process.stderr.readline()
                if not line:
                    break
                log.append(line)
                if "listening on" in line:
                    port = int(line.split(" port ")[1].split(";")[0])
                    break
            self.assertIsNotNone(port, "".join(log))
            model = os.path.join(self.root, "usr/share/cxrd/cxr-default.onnx")
            self.assertIn("model %s " % model, log[-1])
            with urllib.request.urlopen("http://127.0.0.1:%d/ping" % port, timeout=30) as answer:
                self.assertEqual(answer.status, 200)
            token = run(binary, "token", "--config", config, "--subject", "deb", env=env).stdout
            self.assertRegex(token.strip(), r"^eyJ")
            ready = notify.recv(4096).decode()
            self.assertTrue(ready.startswith("READY=1\nSTATUS=serving on port %d" % port), ready)
            process.send_signal(signal.SIGHUP)  # systemctl reload
            self.assertEqual(notify.recv(4096).decode(), "RELOADING=1")
            self.assertEqual(notify.recv(4096).decode(), "READY=1")
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
        self.assertEqual(process.returncode, 0)
        self.assertTrue(notify.recv(4096).decode().startswith("STOPPING=1"))
        notify.close()
        self.assertTrue(os.path.exists(os.path.join(state, "lib", "audit.sqlite")))


    def test_dpkg_installs_into_fresh_root_with_real_maintainer_scripts(self):
        if os.geteuid() != 0 or shutil.which("unshare") is None or not os.path.islink("/bin"):
            self.skipTest("needs root, unshare and a merged-/usr Debian for the throwaway root")
        dicom = os.path.join(os.environ["CXR_API_FIXTURES"], "dicom", "pat001.dcm")
        work = os.path.join(self.work, "install")
        answer = subprocess.run(["unshare", "--mount", "--propagation", "private", "--fork",
                                 os.path.join(SOURCE, "tests/packaging/install_root.sh"),
                                 self.deb, work, dicom], capture_output=True, text=True,
                                timeout=300)
        self.assertEqual(answer.returncode, 0, answer.stdout + answer.stderr)
        facts = dict(line.split(": ", 1) for line in answer.stdout.splitlines() if ": " in line)
        print(answer.stdout, file=sys.stderr)
        self.assertEqual(facts["user-before"], "none")
        self.assertEqual(facts["status"], "install ok installed")
        self.assertEqual(facts["conffiles"], "/etc/cxrd/cxrd.ini")
        user = facts["user"].split(":")
        self.assertEqual((user[0], user[5], user[6]), ("cxrd", "/var/lib/cxrd", "/usr/sbin/nologin"))
        self.assertLess(int(user[2]), 1000)  # a system user
        self.assertEqual(facts["user-again"], facts["user"])
        self.assertEqual(facts["mode /etc/cxrd/cxrd.ini"], "640 root:cxrd")
        self.assertEqual(facts["mode /etc/cxrd/jwt-secret"], "640 root:cxrd")
        self.assertEqual(facts["mode /etc/cxrd"], "750 root:cxrd")
        self.assertEqual(facts["mode /srv/cxrd/out"], "750 cxrd:cxrd")
        self.assertEqual(facts["mode /var/lib/cxrd"], "750 cxrd:cxrd")
        self.assertGreaterEqual(int(facts["secret-bytes"]), 32)
        self.assertEqual((facts["conffile-kept"], facts["secret-kept"]), ("1", "yes"))
        self.assertEqual(facts["infer"], "ok")
        self.assertRegex(facts["infer-model"], r"^cxr-default-\d")
        self.assertTrue(facts["infer-owner"].endswith("cxrd:cxrd"))
        self.assertEqual(facts["token"], "eyJ")
        self.assertEqual((facts["purged-binary"], facts["purged-secret"], facts["results-kept"]),
                         ("gone", "gone", "yes"))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
