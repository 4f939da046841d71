#!/usr/bin/python3
"""The real `cxrd serve` when storage fails: a file size limit (RLIMIT_FSIZE), an output folder
on a full or read-only tmpfs, a bulk run whose summary cannot be written, an audit database on
a full tmpfs under a running job. Each checks the answer (status and Message), that no final-named
or temp file is left half-written, that an earlier result stays whole, that the server keeps
serving, and that everything works again once space returns.

Groups that mount a tmpfs exit 77 (ctest: skipped) where mount(2) is not permitted.

Environment: CXRD (the binary), CXR_API_FIXTURES (make_fixtures.py output). Arguments: unittest
names (e.g. OutputFull), so ctest can run the groups in parallel.
"""
import hashlib
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_test import CXRD, FIXTURES, Server  # noqa: E402
from jobs_test import JobCase, make_files, parse_summary, wait_for  # noqa: E402

INTERNAL = "Single Inference failed due to an internal error"
NEEDS_MOUNT = ("OutputFull", "BulkFull", "JobsOutputFull", "JobsDatabaseFull")


def mount_tmpfs(folder, options):
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", folder], check=True,
                   capture_output=True)


def unmount(folder):
    subprocess.run(["umount", folder], capture_output=True)


def can_mount():
    folder = tempfile.mkdtemp(prefix="cxr-storage-probe-")
    try:
        mount_tmpfs(folder, "size=64k")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return False
    finally:
        unmount(folder)
        os.rmdir(folder)
    return True


def fill(folder):
    """Writes a file in folder until the file system is full; returns its path."""
    path = os.path.join(folder, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"x" * 65536)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"x" * 512)
    except OSError:
        pass
    os.close(fd)
    return path


def files(root):
    """{relative path: sha256} of every file under root (hidden ones included)."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as data:
                found[os.path.relpath(path, root)] = hashlib.sha256(data.read()).hexdigest()
    return found


class StorageCase(unittest.TestCase):
    """A server whose output folders below output_root are tmpfs mounts made by mount()."""

    server_options = {}

    def setUp(self):
        self.mounts = []
        self.server = Server(**self.server_options)

    def tearDown(self):
        code = self.server.stop()
        log = "".join(self.server.log)
        for folder in reversed(self.mounts):
            unmount(folder)
        self.server.remove()
        self.assertEqual(code, 0, log)

    def mount(self, name, options, root=None):
        folder = os.path.join(root or self.server.output_root, name)
        os.makedirs(folder)
        mount_tmpfs(folder, options)
        self.mounts.append(folder)
        return folder

    def single(self, out, patient_id=None, dicom_outputs=False):
        body = {"input_image_path": os.path.join(self.server.input_root, "pat001.dcm"),
                "save_to_disk": True, "output_folder_path": out}
        if patient_id:
            body["patient_id"] = patient_id
        if dicom_outputs:
            body["dicom_outputs"] = True
        return self.server.single(body)

    def assert_serving(self):
        code, body = self.server.single(
            {"input_image_path": os.path.join(self.server.input_root, "pat001.dcm"),
             "save_to_disk": False})
        self.assertEqual(code, 200, body)

    def assert_failure(self, answer, status, message):
        code, body = answer
        self.assertEqual((code, body["Result"], body["Data"], body["Message"]),
                         (status, "Failure", None, message))


class FileSizeLimit(StorageCase):
    """Under RLIMIT_FSIZE a write past the limit raised SIGXFSZ, whose default action killed the
    server (with the request in flight, leaving its temp files); ignored, the write fails with
    EFBIG and only that request fails."""

    limit = 150 * 1024  # the JSON fits, the 214 KB heatmap PNG does not
    server_options = {"preexec_fn": lambda: resource.setrlimit(
        resource.RLIMIT_FSIZE, (FileSizeLimit.limit, FileSizeLimit.limit))}

    def test_a_file_past_the_limit_fails_the_request_not_the_server(self):
        out = os.path.join(self.server.output_root, "limited")
        for _ in range(2):
            self.assert_failure(self.single(out), 500, INTERNAL)
        self.assertIsNone(self.server.process.poll(), "cxrd serve died")
        self.assertEqual(files(self.server.output_root), {})
        self.assertIn("File too large", "".join(self.server.log))
        self.assert_serving()


class OutputFull(StorageCase):
    """An output folder on a full, then read-only, tmpfs."""

    def test_too_small_for_the_files(self):
        for size in ("64k", "256k"):
            out = self.mount("size" + size, "size=" + size)
            for dicom_outputs in (False, True):
                self.assert_failure(self.single(out, dicom_outputs=dicom_outputs), 500, INTERNAL)
                # Nothing left: no result file, no temp file, not even the patient folder.
                self.assertEqual(os.listdir(out), [], size)
        self.assert_serving()

    def test_a_repeat_that_does_not_fit_keeps_the_earlier_result_whole(self):
        # The four files (about 390 KB) fit once, not twice (the new set is staged beside the
        # old one); with dicom_outputs the extra three (about 850 KB) fill it part-way.
        out = self.mount("repeat", "size=600k")
        code, body = self.single(out)
        self.assertEqual(code, 200, body)
        before = files(out)
        self.assertEqual(len(before), 4)
        self.assert_failure(self.single(out), 500, INTERNAL)
        self.assertEqual(files(out), before)
        self.assert_failure(self.single(out, dicom_outputs=True), 500, INTERNAL)
        self.assertEqual(files(out), before)
        # Space returns: the repeat replaces the set whole.
        subprocess.run(["mount", "-o", "remount,size=4M", out], check=True)
        code, body = self.single(out, dicom_outputs=True)
        self.assertEqual(code, 200, body)
        after = files(out)
        self.assertEqual(sorted(after), sorted(list(before) + [
            "PAT001/PAT001_sr.dcm", "PAT001/PAT001_heatmap.dcm", "PAT001/PAT001_report.dcm"]))
        self.assertFalse([name for name in after if os.path.basename(name).startswith(".")])

    def test_no_room_for_the_patient_folder_says_why(self):
        """The spec's row for a folder that cannot be created, with mkdir's reason: before, the
        reason was the ENOENT of the open that followed the failed mkdir."""
        out = self.mount("noinodes", "nr_inodes=1")  # the root folder only
        self.assert_failure(self.single(out), 500, "Unable to create output folder: %s/PAT001 "
                            "(mkdir: No space left on device)" % out)
        self.assertEqual(os.listdir(out), [])
        self.assert_serving()

    def test_read_only(self):
        out = self.mount("readonly", "size=4M")
        code, body = self.single(out)
        self.assertEqual(code, 200, body)
        before = files(out)
        subprocess.run(["mount", "-o", "remount,ro", out], check=True)
        self.assert_failure(self.single(out), 500, INTERNAL)
        self.assert_failure(self.single(out, patient_id="NEWPAT"), 500,
                            "Unable to create output folder: %s/NEWPAT "
                            "(mkdir: Read-only file system)" % out)
        self.assertEqual(files(out), before)
        subprocess.run(["mount", "-o", "remount,rw", out], check=True)
        code, body = self.single(out, patient_id="NEWPAT")
        self.assertEqual(code, 200, body)
        self.assertEqual(len(files(os.path.join(out, "NEWPAT"))), 4)


    def test_infer_into_a_folder_too_small_for_its_database(self):
        """`infer` keeps its audit database in the output folder: one it could not make there
        must not be left behind (before: cxrd_results.sqlite, -wal and -shm stayed)."""
        out = self.mount("infer", "size=4M")
        filler = fill(out)
        dicom = os.path.join(self.server.input_root, "pat001.dcm")
        command = [CXRD, "infer", dicom, "--output", out, "--model",
                   os.path.join(FIXTURES, "model-tb.onnx")]
        run = subprocess.run(command, capture_output=True, text=True)
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertIn("cxrd infer:", run.stderr)
        self.assertEqual(os.listdir(out), ["filler"])
        # Room again: the same command works.
        os.unlink(filler)
        run = subprocess.run(command, capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("cxrd_results.sqlite", os.listdir(out))


class BulkFull(StorageCase, JobCase):
    """A sync bulk run whose output file system fills: the files that did not fit are skipped,
    and a run summary that could not be written is said, never answered as Success."""

    def test_summary_that_does_not_fit_is_reported(self):
        folder = make_files(self.server, "bulk", 2)
        # The root, two patient folders and their four files each: no inode for the summary.
        out = self.mount("bulk", "nr_inodes=11")
        code, body = self.server.request("POST", "/bulk_inference",
                                         {"input_folder_path": folder, "output_folder_path": out})
        self.assertEqual(code, 200, body)
        self.assertEqual(body["Result"], "Warning", body)
        self.assertRegex(body["Message"], r"^Bulk inference completed with the run summary not "
                         r"written \(create a temp file for .*: No space left on device\)$")
        self.assertEqual(len(files(out)), 8)
        self.assertFalse([name for name in os.listdir(out) if name.startswith(("cxrd_run_", "."))])

    def test_files_that_do_not_fit_are_skipped_and_the_summary_is_right(self):
        folder = make_files(self.server, "part", 3)
        # Room for the four files of two patients (about 390 KB each) and the summary.
        out = self.mount("part", "size=1M")
        code, body = self.server.request("POST", "/bulk_inference",
                                         {"input_folder_path": folder, "output_folder_path": out})
        self.assertEqual(code, 200, body)
        self.assertEqual(body["Result"], "Warning", body)
        self.assertIn("1 of 3 DICOM files skipped", body["Message"])
        summaries = [name for name in os.listdir(out) if name.startswith("cxrd_run_")]
        self.assertEqual(len(summaries), 1)
        with open(os.path.join(out, summaries[0]), newline="") as saved:
            _, rows = parse_summary(saved.read())
        self.assertEqual(len(rows), 3)
        self.assertEqual(len([row for row in rows if row["result"]]), 2)
        self.check_summary_against_outputs(rows, out)
        # The reason names the disk, not the model ("inference error" before).
        reason = "outputs could not be written (the server log says why)"
        self.assertEqual([row["skip_reason"] for row in rows if not row["result"]], [reason])
        self.assertIn(reason, body["Message"])
        self.assertEqual(len(files(out)), 2 * 4 + 1)


def paused_gauge(server):
    """/metrics' cxrd_jobs_paused."""
    status, text = server.request("GET", "/metrics")
    assert status == 200, text
    values = [line.split()[1] for line in text.splitlines()
              if line.startswith("cxrd_jobs_paused ")]
    assert len(values) == 1, text
    return int(values[0])


def log_lines(server, level, needle=""):
    """The log lines of one level that contain needle."""
    return [line for line in "".join(server.log).splitlines()
            if needle in line and re.search(r"Z %s " % level, line)]


class JobsOutputFull(StorageCase, JobCase):
    """A job whose output file system fills: the file that did not fit and the ones after it
    stay pending and the job pauses (before, every file left was skipped with "outputs could not
    be written", and each result had to be run again by hand); once there is room it goes on by
    itself and ends with every file analysed once. The tries in between log at debug level."""

    server_options = {"config_extra": {"server": {"log_level": "debug"}}}

    def test_a_job_waits_for_room_instead_of_skipping_the_rest(self):
        folder = make_files(self.server, "outfull", 5)
        out = self.mount("outfull", "size=1M")  # two patients' files (about 390 KB each) fit
        code, body = self.submit(self.server, folder, out)
        self.assertEqual(code, 202, body)
        job_id = body["Data"]["id"]
        wait_for(self.server, job_id,
                 lambda data: "job %s paused" % job_id in "".join(self.server.log), timeout=60)
        paused = wait_for(self.server, job_id, lambda data: True)
        self.assertEqual((paused["state"], paused["skipped"]), ("running", 0), paused)
        self.assertLess(paused["done"], 5)
        self.assertEqual(paused["message"], "Paused: no room to write its outputs or record its "
                                            "files; tried again every 15 s")
        self.assertIn("stays pending: no room for its outputs (writing outputs: write ",
                      "".join(self.server.log))
        self.assertEqual(paused_gauge(self.server), 1)
        self.assert_serving()

        # A try that finds no room again adds no error line (before, seven lines every 15 s for
        # as long as the disk stayed full: the file's, the job's, the pause's).
        errors = log_lines(self.server, "error", job_id)
        wait_for(self.server, job_id, lambda data: "job %s still paused" % job_id in "".join(
            self.server.log), timeout=40)
        self.assertEqual(log_lines(self.server, "error", job_id), errors)
        self.assertEqual(paused_gauge(self.server), 1)
        self.assertTrue(any("still paused: no room to record it or write its outputs (try 1 "
                            "since " in line for line in log_lines(self.server, "debug", job_id)),
                        "".join(self.server.log))

        subprocess.run(["mount", "-o", "remount,size=8M", out], check=True)
        final = wait_for(self.server, job_id, lambda data: data["state"] == "done", timeout=120)
        self.assertEqual((final["done"], final["skipped"]), (5, 0), final)
        self.assertFalse(final["message"].startswith("Paused"), final)
        self.assertEqual(paused_gauge(self.server), 0)
        self.assertTrue(any("goes on: room again at try " in line
                            for line in log_lines(self.server, "info", job_id)),
                        "".join(self.server.log))
        with open(final["summary_csv"], newline="") as saved:
            _, rows = parse_summary(saved.read())
        self.assertEqual(len(rows), 5)
        self.assertTrue(all(row["result"] for row in rows), rows)
        self.check_summary_against_outputs(rows, out)
        database = sqlite3.connect(self.server.audit)
        try:
            analysed = database.execute(
                "SELECT COUNT(*), COUNT(DISTINCT input_path) FROM audit WHERE job_id = ? AND"
                " route = 'bulk_inference/file' AND status = 200", (job_id,)).fetchone()
        finally:
            database.close()
        self.assertEqual(analysed, (5, 5))

    def test_a_paused_job_cancelled_ends_at_once(self):
        """No file is in flight while a job waits for room: a cancel ends it then, as for a
        queued job (before, its end and summary waited for a restart)."""
        folder = make_files(self.server, "cancelpaused", 5)
        out = self.mount("cancelpaused", "size=1M")
        code, body = self.submit(self.server, folder, out)
        self.assertEqual(code, 202, body)
        job_id = body["Data"]["id"]
        wait_for(self.server, job_id, lambda data: data["message"].startswith("Paused"),
                 timeout=60)
        code, body = self.server.request("DELETE", "/jobs/" + job_id)
        self.assertEqual((code, body["Data"]["state"]), (200, "cancelled"), body)
        final = wait_for(self.server, job_id, lambda data: data["finished"] is not None,
                         timeout=30)
        self.assertEqual((final["state"], final["skipped"]), ("cancelled", 0), final)
        with open(final["summary_csv"], newline="") as saved:
            _, rows = parse_summary(saved.read())
        self.assertEqual(len(rows), 5)
        self.assertIn("not processed: the job was cancelled", [row["skip_reason"] for row in rows])

    def test_a_job_waits_for_room_for_its_summary(self):
        """Every result is on disk; only the summary does not fit. Before, the job ended
        `failed` with no counts; it now waits, and writes the summary when there is room."""
        folder = make_files(self.server, "nosummary", 2)
        # The root, two patient folders and their four files each: no inode for the summary.
        out = self.mount("nosummary", "nr_inodes=11")
        code, body = self.submit(self.server, folder, out)
        self.assertEqual(code, 202, body)
        job_id = body["Data"]["id"]
        paused = wait_for(self.server, job_id,
                          lambda data: data["message"].startswith("Paused"), timeout=60)
        self.assertEqual((paused["state"], paused["done"], paused["skipped"]), ("running", 2, 0))
        subprocess.run(["mount", "-o", "remount,nr_inodes=100", out], check=True)
        final = wait_for(self.server, job_id, lambda data: data["state"] == "done", timeout=120)
        self.assertTrue(final["message"].startswith("2 of 2 files done"), final)
        with open(final["summary_csv"], newline="") as saved:
            _, rows = parse_summary(saved.read())
        self.check_summary_against_outputs(rows, out)


class JobsDatabaseFull(StorageCase, JobCase):
    """The audit database (and with it the job store) on a tmpfs that fills while a job runs:
    the files whose rows cannot be written stay pending and the job pauses instead of starting
    over in a loop (which redid every pending file's outputs many times a second); once space
    returns it is tried again on its own (every 15 s) and ends with every file recorded once."""

    def setUp(self):
        self.mounts = []
        base = tempfile.mkdtemp(prefix="cxr-api-test-")
        self.database = os.path.join(base, "db")
        os.makedirs(self.database)
        mount_tmpfs(self.database, "size=8M")  # room for the WAL (4 MiB)
        self.mounts.append(self.database)
        try:
            self.server = Server(base=base, config_extra={
                "audit": {"database": os.path.join(self.database, "audit.sqlite")},
                "server": {"log_level": "debug"}})
        except Exception:
            unmount(self.database)
            raise

    def test_a_job_pauses_while_its_files_cannot_be_recorded(self):
        folder = make_files(self.server, "dbfull", 30)
        out = os.path.join(self.server.output_root, "dbfull")
        code, body = self.submit(self.server, folder, out)
        self.assertEqual(code, 202, body)
        job_id = body["Data"]["id"]
        filler = fill(self.database)
        paused = wait_for(self.server, job_id, lambda data: "paused" in "".join(
            self.server.log) or data["state"] == "done", timeout=30)
        if paused["state"] == "done":
            self.skipTest("every file was recorded before the database filled")
        time.sleep(2)  # long enough for the job to have started over many times before
        log = "".join(self.server.log)
        paused = wait_for(self.server, job_id, lambda data: True)
        self.assertEqual(paused["state"], "running")
        self.assertLess(paused["done"], 30)
        # One pause, no restart of the job while the database is full.
        self.assertEqual(log.count("job %s paused" % job_id), 1, log)
        self.assertNotIn("job %s resumed" % job_id, log)
        self.assertLessEqual(len(re.findall("job %s: .* not recorded" % job_id, log)), 2, log)
        self.assert_serving()
        # Its next try, while the database is still full, adds no error line.
        errors = log_lines(self.server, "error")  # the audit's own lines name no job
        wait_for(self.server, job_id, lambda data: "job %s still paused" % job_id in "".join(
            self.server.log), timeout=40)
        self.assertEqual(log_lines(self.server, "error"), errors)

        # Space returns: the paused job is tried again without anyone submitting or restarting.
        os.unlink(filler)
        final = wait_for(self.server, job_id, lambda data: data["state"] == "done", timeout=120)
        self.assertEqual((final["done"], final["skipped"]), (30, 0))
        self.assertIn("jobs: trying the paused job again", "".join(self.server.log))
        with open(final["summary_csv"], newline="") as saved:
            _, rows = parse_summary(saved.read())
        self.assertEqual(len(rows), 30)
        self.check_summary_against_outputs(rows, out)
        database = sqlite3.connect(os.path.join(self.database, "audit.sqlite"))
        try:
            recorded = database.execute(
                "SELECT COUNT(*), COUNT(DISTINCT input_path) FROM audit WHERE job_id = ? AND "
                "route = 'bulk_inference/file'", (job_id,)).fetchone()
        finally:
            database.close()
        self.assertEqual(recorded, (30, 30))

    def test_a_cancel_the_database_cannot_hold_is_not_answered_as_done(self):
        folder = make_files(self.server, "dbfull", 30)
        out = os.path.join(self.server.output_root, "dbfull")
        code, first = self.submit(self.server, folder, out)
        self.assertEqual(code, 202, first)
        code, second = self.submit(self.server, folder, os.path.join(out, "second"))
        self.assertEqual(code, 202, second)
        second_id = second["Data"]["id"]
        self.assertEqual(second["Data"]["state"], "queued")
        filler = fill(self.database)
        code, body = self.server.request("DELETE", "/jobs/" + second_id)
        self.assertEqual((code, body["Result"], body["Data"]), (500, "Failure", None), body)
        self.assertEqual(body["Message"], "Bulk job failed due to an internal error")
        os.unlink(filler)
        self.assertEqual(wait_for(self.server, second_id, lambda data: True)["state"], "queued")
        code, body = self.server.request("DELETE", "/jobs/" + second_id)
        self.assertEqual((code, body["Data"]["state"]), (200, "cancelled"), body)


if __name__ == "__main__":
    names = [name for name in sys.argv[1:] if not name.startswith("-")]
    if any(name.split(".")[0] in NEEDS_MOUNT for name in names) and not can_mount():
        print("SKIP: mounting a tmpfs is not permitted here")
        sys.exit(77)
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:])
