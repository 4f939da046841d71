#!/usr/bin/python3
"""The cxrd commands as a script drives them: exit statuses, stdout (only the promised output,
valid JSON) against stderr, file names that are not UTF-8 or begin with '-', repeated options,
token subjects, and infer stopped by SIGINT.

Environment: CXRD (the binary), CXR_API_FIXTURES (tests/api/make_fixtures.py output: a test
model and DICOM files). Arguments: unittest names (e.g. Dump), so ctest runs the groups apart.
"""
import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True

CXRD = os.environ.get("CXRD", "cxrd")
FIXTURES = os.environ.get("CXR_API_FIXTURES", "")
MODEL = os.path.join(FIXTURES, "model-tb.onnx")
PAT001 = os.path.join(FIXTURES, "dicom", "pat001.dcm")
SECRET = "cli-test-secret-0123456789abcdef0123456789"


def run(*args, env=None):
    """Runs cxrd with args (str or bytes), returning (status, stdout bytes, stderr text)."""
    done = subprocess.run([CXRD] + list(args), capture_output=True, env=env)
    return done.returncode, done.stdout, done.stderr.decode(errors="replace")


class CliTest(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="cxr-cli-test-")

    def tearDown(self):
        shutil.rmtree(self.base, ignore_errors=True)

    def path(self, name):
        """A path in the scratch folder; name may be bytes (not UTF-8)."""
        if isinstance(name, bytes):
            return os.path.join(os.fsencode(self.base), name)
        return os.path.join(self.base, name)


class Dump(CliTest):
    def test_file_names_that_are_not_utf8_keep_their_lines(self):
        readable = self.path(b"caf\xe9.dcm")  # Latin-1 name, as from an old share
        unreadable = self.path(b"junk\xff.dcm")
        shutil.copyfile(PAT001, readable)
        with open(unreadable, "wb") as junk:
            junk.write(b"not DICOM")
        status, out, err = run("dump", readable, unreadable, PAT001)
        self.assertEqual(status, 1, err)
        lines = [json.loads(line) for line in out.decode().splitlines()]
        # One line per file, in order, each naming its file.
        self.assertEqual(len(lines), 3, out)
        self.assertTrue(lines[0]["file"].endswith("caf?.dcm"), lines[0]["file"])
        self.assertEqual(lines[0]["meta"]["patient_id"], "PAT001")
        self.assertTrue(lines[1]["file"].endswith("junk?.dcm"), lines[1]["file"])
        self.assertEqual(lines[1]["error"]["status"], "CXR_ERR_MALFORMED")
        self.assertEqual(lines[2]["file"], PAT001)
        self.assertIn("junk", err)

    def test_double_dash_names_a_file_beginning_with_dash(self):
        shutil.copyfile(PAT001, self.path("-scan.dcm"))
        done = subprocess.run([CXRD, "dump", "--", "-scan.dcm"], capture_output=True,
                              cwd=self.base)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout)["file"], "-scan.dcm")
        # Without "--" it is still a usage error, not a file.
        done = subprocess.run([CXRD, "dump", "-scan.dcm"], capture_output=True, cwd=self.base)
        self.assertEqual(done.returncode, 2)
        self.assertEqual(done.stdout, b"")


class Render(CliTest):
    def test_double_dash_names_files_beginning_with_dash(self):
        shutil.copyfile(PAT001, self.path("-scan.dcm"))
        done = subprocess.run([CXRD, "render", "--", "-scan.dcm", "-scan.png"],
                              capture_output=True, cwd=self.base)
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(self.path("-scan.png"), "rb") as png:
            self.assertEqual(png.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertEqual(done.stdout, b"")


class Token(CliTest):
    def test_subjects_the_server_cannot_record_whole_are_refused(self):
        env = dict(os.environ, CXRD_JWT_SECRET=SECRET)
        for subject, why in [(b"pacs\ngateway", "control character"),
                             (b"pacs\x1b[31m", "control character"),
                             (b"caf\xe9", "not UTF-8"),
                             (b"a" * 128, "1 to 127 bytes"),
                             (b"", "1 to 127 bytes")]:
            status, out, err = run("token", "--subject", subject, env=env)
            self.assertEqual(status, 2, subject)
            self.assertEqual(out, b"", subject)
            self.assertIn(why, err, subject)
        for subject in ["a" * 127, "Klinik Müller", "pacs-gateway"]:
            status, out, err = run("token", "--subject", subject, env=env)
            self.assertEqual(status, 0, err)
            self.assertRegex(out.decode(), r"^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$")
            self.assertEqual(err, "")


class Results(CliTest):
    def test_input_path_that_is_not_utf8_is_printed_not_dropped(self):
        source = self.path(b"M\xfcller.dcm")
        shutil.copyfile(PAT001, source)
        out_folder = self.path("out")
        status, _, err = run("infer", source, "--output", out_folder, "--model", MODEL)
        self.assertEqual(status, 0, err)
        status, out, _ = run("dump", PAT001)
        uid = json.loads(out)["meta"]["sop_instance_uid"]
        database = os.path.join(out_folder, "cxrd_results.sqlite")
        status, out, err = run("results", "--sop", uid, "--database", database)
        self.assertEqual(status, 0, err)
        rows = json.loads(out)
        self.assertEqual(len(rows), 1, out)
        self.assertTrue(rows[0]["input_path"].endswith("M?ller.dcm"), rows[0]["input_path"])
        self.assertEqual(rows[0]["predictions"]["metadata"]["sop_instance_uid"], uid)

    def test_another_sqlite_file_is_read_not_changed(self):
        """A lookup must not write: pointed at a database that is not an audit log it used to
        create the audit and job tables there."""
        import sqlite3
        other = self.path("other.sqlite")
        with sqlite3.connect(other) as connection:
            connection.execute("CREATE TABLE patients (id TEXT)")
        connection.close()
        before = open(other, "rb").read()
        status, out, err = run("results", "--sop", "1.2.3", "--database", other)
        self.assertEqual((status, out), (1, b""), err)
        self.assertIn("is not a cxrd audit database", err)
        self.assertEqual(open(other, "rb").read(), before)
        self.assertEqual(sorted(os.listdir(self.base)), ["other.sqlite"])

    def test_a_first_release_database_is_named_as_such(self):
        """The first release's audit table kept no results: said so, not "not a cxrd audit
        database", and the file is left as it was."""
        import sqlite3
        old = self.path("first.sqlite")
        with sqlite3.connect(old) as connection:
            connection.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, time TEXT NOT NULL,"
                               " subject TEXT NOT NULL, route TEXT NOT NULL, input_path TEXT NOT"
                               " NULL, sop_instance_uid TEXT NOT NULL, patient_id TEXT NOT NULL,"
                               " result TEXT NOT NULL, status INTEGER NOT NULL, duration_ms REAL"
                               " NOT NULL, message TEXT NOT NULL)")
        connection.close()
        before = open(old, "rb").read()
        status, out, err = run("results", "--sop", "1.2.3", "--database", old)
        self.assertEqual((status, out), (1, b""), err)
        self.assertIn("was written by cxrd's first release, which kept no results", err)
        self.assertEqual(open(old, "rb").read(), before)

    def test_sop_given_twice_is_a_usage_error(self):
        status, out, err = run("results", "--sop", "1.2.3", "--sop", "1.2.4", "--database",
                               self.path("none.sqlite"))
        self.assertEqual(status, 2)
        self.assertEqual(out, b"")
        self.assertIn("--sop given twice", err)


class Infer(CliTest):
    def test_repeated_output_or_patient_id_is_a_usage_error(self):
        for option in ["--output", "--patient-id"]:
            args = [PAT001, "--output", self.path("a"), "--model", MODEL]
            args += [option, self.path("b") if option == "--output" else "P1"]
            if option == "--patient-id":
                args += ["--patient-id", "P2"]
            status, out, err = run("infer", *args)
            self.assertEqual(status, 2, err)
            self.assertIn("%s given twice" % option, err)
            self.assertFalse(os.path.exists(self.path("b")))

    def test_empty_output_is_a_usage_error(self):
        status, out, err = run("infer", PAT001, "--output", "", "--model", MODEL)
        self.assertEqual((status, out), (2, b""), err)
        self.assertIn("--output OUT is required", err)

    def test_every_option_given_twice_is_a_usage_error(self):
        """The last of two would win silently (another config, model, folder or patient than
        one of them names): every command refuses a repeated option instead."""
        cases = [["infer", PAT001, "--output", "a", "--config", "c1", "--config", "c2"],
                 ["infer", PAT001, "--output", "a", "--model", MODEL, "--model", MODEL],
                 ["results", "--sop", "1.2", "--database", "a", "--database", "b"],
                 ["token", "--subject", "a", "--ttl", "1h", "--ttl", "2h"],
                 ["serve", "--config", "a", "--config", "b"],
                 ["calibrate", "--labels", "a", "--finding", "Tuberculosis", "--finding",
                  "Cardiomegaly"],
                 ["calibrate", "--labels", "a", "--output", "x", "--output", "y"],
                 ["calibrate", "--labels", "a", "--seed", "1", "--seed", "2"],
                 ["model-run", MODEL, "in.npy", "out", "--threads", "1", "--threads", "2"]]
        for args in cases:
            status, out, err = run(*args)
            option = args[-2]
            self.assertEqual((status, out), (2, b""), (args, err))
            self.assertIn("cxrd %s: %s given twice" % (args[0], option), err)

    def test_sigint_stops_between_files_and_writes_the_summary(self):
        folder = self.path("in")
        os.makedirs(folder)
        for i in range(40):
            shutil.copyfile(PAT001, os.path.join(folder, "f%02d.dcm" % i))
        out_folder = self.path("out")
        process = subprocess.Popen([CXRD, "infer", folder, "--output", out_folder, "--model",
                                    MODEL], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, preexec_fn=lambda: signal.signal(
                                       signal.SIGINT, signal.SIG_DFL))
        # Not a terminal: one line per file. Interrupt once the first file is done.
        first = process.stderr.readline()
        self.assertIn("[1/40]", first)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
        # It dies by SIGINT (so a calling shell script stops too) after the summary.
        self.assertEqual(process.returncode, -signal.SIGINT, err)
        self.assertEqual(out, "")
        self.assertRegex(err, r"infer: stopped by SIGINT: \d+ of 40 files not processed")
        summaries = [name for name in os.listdir(out_folder) if name.startswith("cxrd_run_")]
        self.assertEqual(len(summaries), 1, os.listdir(out_folder))
        with open(os.path.join(out_folder, summaries[0]), newline="") as text:
            rows = list(csv.DictReader(text))
        self.assertEqual(len(rows), 40)
        reasons = [row["skip_reason"] for row in rows]
        done = [r for r in reasons if r == ""]
        skipped = [r for r in reasons if r == "not processed: cxrd infer was stopped (SIGINT)"]
        self.assertGreaterEqual(len(done), 1)
        self.assertGreaterEqual(len(skipped), 1)
        self.assertEqual(len(done) + len(skipped), 40, reasons)
        # The files done come first (sorted paths), the rest are listed as not processed.
        self.assertEqual(reasons, [""] * len(done) + skipped)
        hidden = [name for _, _, names in os.walk(out_folder) for name in names
                  if name.startswith(".")]
        self.assertEqual(hidden, [])

    def test_file_size_limit_fails_the_file_not_the_run(self):
        """Under RLIMIT_FSIZE (ulimit -f) a write past the limit raised SIGXFSZ, which killed infer
        (exit 153) with temp files left and no summary; ignored, the write fails with EFBIG: that
        file fails (exit 1), its temp files are removed, and the summary is written."""
        out_folder = self.path("out")
        limit = 150 * 1024  # the 1.5 KB JSON and small summary fit, the 214 KB heatmap does not
        done = subprocess.run(
            [CXRD, "infer", PAT001, "--output", out_folder, "--model", MODEL],
            capture_output=True, text=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("File too large", done.stderr)
        self.assertIn("1 failed", done.stderr)
        names = [name for _, _, files in os.walk(out_folder) for name in files]
        self.assertEqual([name for name in names if name.startswith(".")], [])
        self.assertEqual([name for name in names if name.startswith("PAT001")], [])
        self.assertEqual(len([name for name in names if name.startswith("cxrd_run_")]), 1)

    def test_folders_that_cannot_be_listed_are_counted_not_dropped(self):
        """A sub-folder nested too deep, or (run as an unprivileged user) one without read
        permission, is counted as skipped with the reason and the run exits 1: before, its
        studies were dropped unseen and the run succeeded."""
        folder = self.path("in")
        deep = os.path.join(folder, *["l%d" % i for i in range(1, 34)])
        os.makedirs(deep)
        shutil.copyfile(PAT001, os.path.join(deep, "a.dcm"))
        shutil.copyfile(PAT001, os.path.join(folder, "top.dcm"))
        command = ["infer", folder, "--output", self.path("out"), "--model", MODEL]
        status, out, err = run(*command)
        self.assertEqual(status, 1, err)
        self.assertIn("l33: failed:", err)
        self.assertIn("1 analysed", err)
        if os.geteuid() != 0 or shutil.which("runuser") is None:
            return
        # Root reads every folder: drop to nobody for a folder it may not list.
        shutil.rmtree(os.path.join(folder, "l1"))
        locked = os.path.join(folder, "locked")
        os.makedirs(locked)
        shutil.copyfile(PAT001, os.path.join(locked, "b.dcm"))
        os.chmod(locked, 0)
        for path in (self.base, folder, os.path.join(folder, "top.dcm"), MODEL):
            os.chmod(path, os.stat(path).st_mode | 0o005)
        os.makedirs(self.path("out2"))
        os.chmod(self.path("out2"), 0o777)
        done = subprocess.run(["runuser", "-u", "nobody", "--", CXRD] + command[:3] +
                              [self.path("out2")] + command[4:], capture_output=True, text=True)
        if "Permission denied" in done.stderr and "top.dcm" not in done.stderr:
            self.skipTest("nobody cannot reach the fixtures: " + done.stderr)
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("locked: failed:", done.stderr)
        self.assertIn("Permission denied", done.stderr)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
