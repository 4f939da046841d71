#!/usr/bin/python3
"""Async bulk jobs (issue 20) against the real `cxrd serve`: a job over 30 files reaches done
with the right counts; its summary CSV has one row per file that matches each file's
predictions JSON (and the sync bulk run and `cxrd infer` write one too); a server killed with
SIGKILL mid-job and restarted finishes the job without running any recorded file again (the
recorded files' output files keep their inodes, and the audit log holds exactly one pipeline
run per file); DELETE cancels between files and a queued job; auth and errors.

Environment as server_test.py. Arguments: unittest names (e.g. Jobs).
"""
import csv
import datetime
import http.client
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

import pydicom

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_test import CXRD, FINDINGS, Server  # noqa: E402

SUMMARY_HEADER = (["input_path", "patient_id", "sop_instance_uid", "result"] +
                  [field for name in FINDINGS for field in (name + " confidence",
                                                            name + " presence")] +
                  ["output_folder", "skip_reason", "model_version", "thresholds"])


def make_files(server, name, count, bad=()):
    """count chest files with distinct patients under input_root/name (pat001's pixels), and
    bad: {"file.dcm": fixture} copies of failing fixtures. Returns the folder."""
    folder = os.path.join(server.input_root, name)
    os.makedirs(folder, exist_ok=True)
    source = pydicom.dcmread(os.path.join(server.input_root, "pat001.dcm"))
    for i in range(count):
        source.PatientID = "%s%03d" % (name.upper().replace("-", ""), i)
        source.SOPInstanceUID = "1.2.826.0.1.3680043.10.2000.%d.%d" % (abs(hash(name)) % 10**6, i)
        source.file_meta.MediaStorageSOPInstanceUID = source.SOPInstanceUID
        sub = os.path.join(folder, "d%d" % (i % 3))
        os.makedirs(sub, exist_ok=True)
        source.save_as(os.path.join(sub, "f%03d.dcm" % i))
    for target, fixture in dict(bad).items():
        with open(os.path.join(server.input_root, fixture), "rb") as src:
            with open(os.path.join(folder, target), "wb") as dst:
                dst.write(src.read())
    return folder


def make_identified_files(server, name, identities):
    """Files under input_root/name with pat001's pixels and the given (file name, PatientID,
    SOPInstanceUID), e.g. IDs that a spreadsheet would run as formulas. Returns the folder."""
    folder = os.path.join(server.input_root, name)
    os.makedirs(folder)
    source = pydicom.dcmread(os.path.join(server.input_root, "pat001.dcm"))
    for file_name, patient, uid in identities:
        source.PatientID = patient
        source.SOPInstanceUID = uid
        source.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
        source.save_as(os.path.join(folder, file_name))
    return folder


def wait_for(server, job_id, predicate, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        code, body = server.request("GET", "/jobs/" + job_id)
        assert code == 200, body
        if predicate(body["Data"]):
            return body["Data"]
        time.sleep(0.05)
    raise AssertionError("job %s: condition not reached: %s" % (job_id, body))


def parse_summary(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], [dict(zip(rows[0], row)) for row in rows[1:]]


class JobCase(unittest.TestCase):
    def submit(self, server, folder, out, **extra):
        body = {"input_folder_path": folder, "output_folder_path": out, "async": True}
        body.update(extra)
        return server.request("POST", "/bulk_inference", body)

    def check_summary_against_outputs(self, rows, out):
        """Every analysed row equals its patient's predictions JSON; returns rows by path."""
        for row in rows:
            if row["result"] == "":
                self.assertNotEqual(row["skip_reason"], "", row)
                self.assertEqual(row["output_folder"], "")
                continue
            self.assertEqual(row["skip_reason"], "")
            self.assertEqual(row["output_folder"], os.path.join(out, row["patient_id"]))
            with open(os.path.join(row["output_folder"],
                                   row["patient_id"] + "_predictions.json")) as saved:
                data = json.load(saved)
            self.assertEqual(row["result"], data["result"])
            self.assertEqual(row["patient_id"], data["metadata"]["patient_id"])
            self.assertEqual(row["sop_instance_uid"], data["metadata"]["sop_instance_uid"])
            for finding in data["findings"]:
                self.assertEqual(float(row[finding["name"] + " confidence"]),
                                 finding["confidence"], finding["name"])
                self.assertEqual(row[finding["name"] + " presence"],
                                 "true" if finding["presence"] else "false")


class Jobs(JobCase):
    def test_job_of_30_files_counts_csv_and_list(self):
        server = Server()
        try:
            # 27 chest files, an unreadable one, one without PatientID, one the gate refuses.
            folder = make_files(server, "run30", 27, {"junk.dcm": "junk.dcm",
                                                      "noid.dcm": "noid.dcm",
                                                      "ct.dcm": "ct.dcm"})
            out = os.path.join(server.output_root, "run30")
            code, body = self.submit(server, folder, out)
            self.assertEqual(code, 202, body)
            self.assertEqual(list(body.keys()), ["Result", "Data", "Message"])
            self.assertEqual(body["Result"], "Success")
            job = body["Data"]
            self.assertRegex(job["id"], "^[0-9a-f]{32}$")
            self.assertIn(job["state"], ("queued", "running"))
            self.assertEqual(job["total"], 30)
            seen_running = wait_for(server, job["id"], lambda d: d["done"] >= 2)
            if seen_running["state"] == "running" and seen_running["done"] < 30:
                self.assertIsInstance(seen_running["eta_seconds"], float)
            final = wait_for(server, job["id"], lambda d: d["state"] == "done")
            self.assertEqual((final["total"], final["done"], final["skipped"],
                              final["tb_presumptive"], final["abnormal"], final["normal"]),
                             (30, 30, 3, 27, 0, 0))
            self.assertIsNotNone(final["started"])
            self.assertIsNotNone(final["finished"])
            self.assertLessEqual(final["created"], final["started"])
            self.assertLessEqual(final["started"], final["finished"])
            self.assertIsNone(final["eta_seconds"])

            # The summary: written atomically in the output folder, served by the job route.
            path = final["summary_csv"]
            self.assertEqual(os.path.dirname(path), out)
            self.assertRegex(os.path.basename(path),
                             r"^cxrd_run_\d{8}T\d{6}\.\d{3}Z\.csv$")
            with open(path, newline="") as saved:
                on_disk = saved.read()
            code, served = server.request("GET", "/jobs/%s/summary.csv" % job["id"])
            self.assertEqual(code, 200)
            self.assertEqual(served, on_disk)
            header, rows = parse_summary(on_disk)
            self.assertEqual(header, SUMMARY_HEADER)
            self.assertEqual(len(rows), 30)
            expected_paths = sorted(os.path.join(dirpath, name)
                                    for dirpath, _, names in os.walk(folder) for name in names)
            self.assertEqual([row["input_path"] for row in rows], expected_paths)
            self.check_summary_against_outputs(rows, out)
            skipped = {os.path.basename(r["input_path"]): r["skip_reason"]
                       for r in rows if r["result"] == ""}
            self.assertEqual(sorted(skipped), ["ct.dcm", "junk.dcm", "noid.dcm"])
            self.assertTrue(skipped["ct.dcm"].startswith(
                "Image is not a frontal chest radiograph: Modality CT"), skipped["ct.dcm"])
            self.assertTrue(skipped["junk.dcm"].startswith(
                "Invalid DICOM image, unable to fetch patient ID"), skipped["junk.dcm"])

            # One audit row (one pipeline run) per file, tagged with the job.
            db = sqlite3.connect(server.audit)
            per_path = db.execute("SELECT input_path, count(*) FROM audit WHERE job_id = ?"
                                  " AND route = 'bulk_inference/file' GROUP BY input_path",
                                  (job["id"],)).fetchall()
            created = db.execute("SELECT status, input_path, message FROM audit WHERE job_id = ?"
                                 " AND route = 'bulk_inference'", (job["id"],)).fetchall()
            db.close()
            self.assertEqual(created, [(202, folder, "job %s created: 30 DICOM files" %
                                        job["id"])])
            self.assertEqual(sorted(p for p, _ in per_path), expected_paths)
            self.assertEqual({n for _, n in per_path}, {1})

            code, listed = server.request("GET", "/jobs")
            self.assertEqual(code, 200)
            self.assertEqual(listed["Data"][0]["id"], job["id"])
            self.assertEqual(listed["Data"][0], final)
            code, listed = server.request("GET", "/jobs?limit=abc")
            self.assertEqual(code, 400)
        finally:
            self.assertEqual(server.stop(), 0, "".join(server.log))
            server.remove()

    def test_sync_bulk_and_infer_write_a_summary(self):
        server = Server()
        try:
            folder = make_files(server, "sync", 4, {"junk.dcm": "junk.dcm"})
            out = os.path.join(server.output_root, "sync")
            code, body = server.request("POST", "/bulk_inference",
                                        {"input_folder_path": folder, "output_folder_path": out,
                                         "async": False})
            self.assertEqual(code, 200, body)
            self.assertIsNone(body["Data"])  # the v1 answer is unchanged
            self.assertTrue(body["Message"].startswith(
                "Bulk inference completed with 1 of 5 DICOM files skipped"), body["Message"])
            summaries = [n for n in os.listdir(out) if n.startswith("cxrd_run_")]
            self.assertEqual(len(summaries), 1, os.listdir(out))
            with open(os.path.join(out, summaries[0]), newline="") as saved:
                header, rows = parse_summary(saved.read())
            self.assertEqual(header, SUMMARY_HEADER)
            self.assertEqual(len(rows), 5)
            self.check_summary_against_outputs(rows, out)
            self.assertEqual(sum(1 for r in rows if r["result"] == ""), 1)

            code, body = server.request("POST", "/bulk_inference",
                                        {"input_folder_path": folder, "output_folder_path": out,
                                         "async": "yes"})
            self.assertEqual(code, 400)
            self.assertEqual(body["Message"],
                             "Invalid value for async, should be a boolean: yes")

            infer_out = os.path.join(server.base, "infer-out")
            # The temp file of a summary whose run was killed inside its commit (an hour old)
            # goes with the next summary written there: infer has no start-up sweep.
            os.makedirs(infer_out)
            stale = os.path.join(infer_out, ".cxrd_run_20261201T000000.000Z.csv.tmp-AbC123")
            with open(stale, "w") as half:
                half.write("input_path,patient_id\n")
            os.utime(stale, (time.time() - 3600, time.time() - 3600))
            run = subprocess.run([CXRD, "infer", folder, "--output", infer_out, "--model",
                                  os.path.join(os.environ["CXR_API_FIXTURES"], "model-tb.onnx")],
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 1, run.stderr)  # junk.dcm failed
            summaries = [n for n in os.listdir(infer_out) if n.startswith("cxrd_run_")]
            self.assertEqual(len(summaries), 1)
            self.assertFalse(os.path.exists(stale))
            self.assertIn("infer: summary " + os.path.join(infer_out, summaries[0]), run.stderr)
            with open(os.path.join(infer_out, summaries[0]), newline="") as saved:
                header, rows = parse_summary(saved.read())
            self.assertEqual(len(rows), 5)
            self.check_summary_against_outputs(rows, infer_out)
        finally:
            self.assertEqual(server.stop(), 0, "".join(server.log))
            server.remove()


    def test_summary_stays_beneath_the_output_root(self):
        """The summary is written beneath the output root's descriptor: a job's folder swapped
        for a symlink out of the root while the job waited gets no file outside (the job fails,
        saying why); a folder that no file created (every file skipped) is made for it."""
        server = Server(workers=1)
        try:
            blocker = make_files(server, "blocker", 20)
            code, body = self.submit(server, blocker, os.path.join(server.output_root, "blk"))
            self.assertEqual(code, 202, body)
            folder = make_files(server, "swap", 2)
            out = os.path.join(server.output_root, "swapped")
            os.makedirs(out)
            code, body = self.submit(server, folder, out)
            self.assertEqual((code, body["Data"]["state"]), (202, "queued"), body)
            swapped = body["Data"]["id"]
            os.rmdir(out)
            os.symlink(server.outside, out)
            junk = os.path.join(server.input_root, "junkonly")
            os.makedirs(junk)
            with open(os.path.join(server.input_root, "junk.dcm"), "rb") as src:
                with open(os.path.join(junk, "junk.dcm"), "wb") as dst:
                    dst.write(src.read())
            fresh = os.path.join(server.output_root, "never", "made")
            code, body = self.submit(server, junk, fresh)
            self.assertEqual(code, 202, body)
            junk_job = body["Data"]["id"]

            final = wait_for(server, swapped, lambda d: d["finished"] is not None)
            self.assertEqual(os.listdir(server.outside), [])
            self.assertEqual(final["state"], "failed")
            # The counts first (every result is on disk), then why there is no summary.
            self.assertRegex(final["message"], r"^\d+ of \d+ files done \(.*\); the run summary "
                             r"could not be written: outside the allowed root")
            final = wait_for(server, junk_job, lambda d: d["finished"] is not None)
            self.assertEqual((final["state"], final["skipped"]), ("done", 1), final)
            with open(final["summary_csv"], newline="") as saved:
                _, rows = parse_summary(saved.read())
            self.assertEqual([r["input_path"] for r in rows], [os.path.join(junk, "junk.dcm")])
        finally:
            self.assertEqual(server.stop(), 0, "".join(server.log))
            server.remove()

    def test_summary_fields_never_start_a_spreadsheet_formula(self):
        """A valid patient ID "-A1" and a hostile SOP Instance UID "=HYPERLINK(...)" reach the
        CSV with a leading apostrophe, so Excel shows them as text instead of running them."""
        server = Server()
        try:
            folder = make_identified_files(server, "formula", (
                ("a.dcm", "-A1", "1.2.826.0.1.3680043.10.2001.1"),
                ("b.dcm", "PLAIN", '=HYPERLINK("http://x","y")')))
            out = os.path.join(server.output_root, "formula")
            code, body = self.submit(server, folder, out)
            self.assertEqual(code, 202, body)
            final = wait_for(server, body["Data"]["id"], lambda d: d["state"] == "done")
            with open(final["summary_csv"], newline="") as saved:
                _, rows = parse_summary(saved.read())
            self.assertEqual([(r["patient_id"], r["sop_instance_uid"], r["output_folder"])
                              for r in rows],
                             [("'-A1", "1.2.826.0.1.3680043.10.2001.1", os.path.join(out, "-A1")),
                              ("PLAIN", '\'=HYPERLINK("http://x","y")',
                               os.path.join(out, "PLAIN"))])
        finally:
            self.assertEqual(server.stop(), 0, "".join(server.log))
            server.remove()


    def test_job_says_which_patient_ids_more_than_one_file_wrote(self):
        """Three studies of one patient in a job share its folder; the job's message says so,
        naming the file whose result the folder holds, as a sync run's Message does."""
        server = Server(workers=2)
        try:
            folder = make_files(server, "shared", 4)
            source = pydicom.dcmread(os.path.join(server.input_root, "pat001.dcm"))
            for i in range(3):
                source.PatientID = "SAME"
                source.SOPInstanceUID = "1.2.826.0.1.3680043.10.2002.%d" % i
                source.save_as(os.path.join(folder, "same%d.dcm" % i))
            out = os.path.join(server.output_root, "shared")
            code, body = self.submit(server, folder, out)
            self.assertEqual(code, 202, body)
            final = wait_for(server, body["Data"]["id"], lambda d: d["state"] == "done")
            with open(os.path.join(out, "SAME", "SAME_predictions.json")) as saved:
                held = json.load(saved)["metadata"]["sop_instance_uid"]
            holder = "same%s.dcm" % held.rsplit(".", 1)[1]
            self.assertEqual(final["message"],
                             "7 of 7 files done (TB Presumptive 7, Abnormal 0, Normal 0, skipped "
                             "0); 1 patient IDs written by more than one file (each folder keeps "
                             "the result written last; every result stays in the audit log: cxrd "
                             "results --sop UID): SAME: same0.dcm, same1.dcm, same2.dcm (the "
                             "folder holds %s)" % holder)
        finally:
            self.assertEqual(server.stop(), 0, "".join(server.log))
            server.remove()


class JobsResume(JobCase):
    def test_sigkill_mid_job_then_restart_finishes_without_rerunning(self):
        server = Server(workers=2)
        base = server.base
        try:
            folder = make_files(server, "resume", 120)
            out = os.path.join(server.output_root, "resume")
            code, body = self.submit(server, folder, out)
            self.assertEqual(code, 202, body)
            job_id = body["Data"]["id"]
            wait_for(server, job_id, lambda d: d["done"] >= 8)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=30)
            server.reader.join(timeout=10)

            db = sqlite3.connect(server.audit)
            recorded = [row[0] for row in db.execute(
                "SELECT path FROM job_files WHERE job_id = ? AND state != 'pending'",
                (job_id,))]
            runs_before = db.execute("SELECT count(*) FROM audit WHERE job_id = ?"
                                     " AND route = 'bulk_inference/file'",
                                     (job_id,)).fetchone()[0]
            last_row = db.execute("SELECT max(id) FROM audit").fetchone()[0]
            state = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
            db.close()
            self.assertEqual(state, "running")
            self.assertGreaterEqual(len(recorded), 8)
            self.assertLess(len(recorded), 120, "the job ended before the kill: make it longer")
            self.assertEqual(runs_before, len(recorded))
            # The recorded files' outputs: a second run would replace them (new inodes).
            inodes = {}
            for path in recorded:
                patient = pydicom.dcmread(path, stop_before_pixels=True).PatientID
                for name in os.listdir(os.path.join(out, patient)):
                    inodes[os.path.join(out, patient, name)] = os.stat(
                        os.path.join(out, patient, name)).st_ino

            server = Server(base=base, workers=2)
            final = wait_for(server, job_id, lambda d: d["state"] == "done")
            self.assertEqual((final["total"], final["done"], final["skipped"],
                              final["tb_presumptive"]), (120, 120, 0, 120))
            self.assertTrue(any("job %s resumed: %d of 120 files to do" %
                                (job_id, 120 - len(recorded)) in line for line in server.log),
                            "".join(server.log))
            for path, inode in inodes.items():
                self.assertEqual(os.stat(path).st_ino, inode, path + " was written again")
            db = sqlite3.connect(server.audit)
            after = db.execute("SELECT input_path FROM audit WHERE job_id = ? AND id > ?"
                               " AND route = 'bulk_inference/file'",
                               (job_id, last_row)).fetchall()
            per_path = db.execute("SELECT input_path, count(*) FROM audit WHERE job_id = ?"
                                  " AND route = 'bulk_inference/file' GROUP BY input_path",
                                  (job_id,)).fetchall()
            db.close()
            # Pipeline runs after the restart: exactly the files not recorded before the kill.
            self.assertEqual(sorted(p for (p,) in after),
                             sorted(set(p for p, _ in per_path) - set(recorded)))
            self.assertEqual(len(per_path), 120)
            self.assertEqual({n for _, n in per_path}, {1})
            with open(final["summary_csv"], newline="") as saved:
                _, rows = parse_summary(saved.read())
            self.assertEqual(len(rows), 120)
            self.check_summary_against_outputs(rows, out)
        finally:
            code = server.stop()
            server.remove()
            if code != -signal.SIGKILL:  # the restarted server stops cleanly
                self.assertEqual(code, 0, "".join(server.log))


class JobsUpgrade(JobCase):
    """Jobs recorded by an earlier release and finished or listed by this one."""

    def test_rows_recorded_before_formula_defusing_are_defused(self):
        """Releases before 2026-12-05 stored a job file's summary record with its text fields as
        they were. A job they left running (resumed here) or ended (summary.csv served here)
        must not put a patient ID "-A1" or a SOP Instance UID "=HYPERLINK(...)" into the CSV as
        a formula, and records of this release must come back unchanged."""
        server = Server()
        base = server.base
        try:
            folder = make_identified_files(server, "upgrade", (
                ("a.dcm", "-A1", "1.2.826.0.1.3680043.10.2003.1"),
                ("b.dcm", "PLAIN", '=HYPERLINK("http://x","y")'),
                ("c.dcm", "LAST", "1.2.826.0.1.3680043.10.2003.3")))
            out = os.path.join(server.output_root, "upgrade")
            code, body = self.submit(server, folder, out)
            self.assertEqual(code, 202, body)
            job_id = body["Data"]["id"]
            final = wait_for(server, job_id, lambda d: d["state"] == "done")
            self.assertEqual(server.stop(), 0, "".join(server.log))
            with open(final["summary_csv"], newline="") as saved:
                _, expected = parse_summary(saved.read())

            # The state the earlier release left: its own records (no apostrophe), the job
            # still running with its last file pending.
            db = sqlite3.connect(server.audit)
            for seq, row in db.execute("SELECT seq, csv_row FROM job_files WHERE job_id = ?",
                                       (job_id,)).fetchall():
                old = row.replace(",'-A1,", ",-A1,").replace("\"'=HYPERLINK", "\"=HYPERLINK")
                db.execute("UPDATE job_files SET csv_row = ? WHERE job_id = ? AND seq = ?",
                           (old, job_id, seq))
            db.execute("UPDATE job_files SET state = 'pending', result = '', csv_row = ''"
                       " WHERE job_id = ? AND path LIKE '%c.dcm'", (job_id,))
            db.execute("UPDATE jobs SET state = 'running', finished = '', message = ''"
                       " WHERE id = ?", (job_id,))
            self.assertEqual(db.execute("SELECT count(*) FROM job_files WHERE job_id = ? AND"
                                        " (csv_row LIKE '%,-A1,%' OR csv_row LIKE"
                                        " '%,\"=HYPERLINK%')", (job_id,)).fetchone()[0], 2)
            db.commit()
            db.close()

            server = Server(base=base)
            final = wait_for(server, job_id, lambda d: d["state"] == "done")
            with open(final["summary_csv"], newline="") as saved:
                on_disk = saved.read()
            code, served = server.request("GET", "/jobs/%s/summary.csv" % job_id)
            self.assertEqual((code, served), (200, on_disk))
            _, rows = parse_summary(on_disk)
            self.assertEqual([(r["patient_id"], r["sop_instance_uid"]) for r in rows],
                             [("'-A1", "1.2.826.0.1.3680043.10.2003.1"),
                              ("PLAIN", '\'=HYPERLINK("http://x","y")'),
                              ("LAST", "1.2.826.0.1.3680043.10.2003.3")])
            # Everything else in the records is what the job wrote before.
            self.assertEqual(rows, expected)
        finally:
            self.assertEqual(server.stop(), 0, "".join(server.log))
            server.remove()


class JobsCancel(JobCase):
    """Cancel, and a single request served while a job holds the only worker."""

    def test_cancel_running_and_queued_jobs(self):
        server = Server(workers=1)
        try:
            folder = make_files(server, "cancel", 100)
            out = os.path.join(server.output_root, "cancel")
            code, first = self.submit(server, folder, out)
            self.assertEqual(code, 202, first)
            code, second = self.submit(server, folder, os.path.join(server.output_root, "c2"))
            self.assertEqual(code, 202, second)
            first, second = first["Data"]["id"], second["Data"]["id"]
            code, body = server.request("GET", "/jobs/" + second)
            self.assertEqual(body["Data"]["state"], "queued")  # one job runs at a time

            # A queued job ends at once; its summary lists every file as not processed.
            code, body = server.request("DELETE", "/jobs/" + second)
            self.assertEqual(code, 200, body)
            self.assertEqual(body["Data"]["state"], "cancelled")
            self.assertIsNotNone(body["Data"]["finished"])
            self.assertEqual(body["Data"]["done"], 0)

            wait_for(server, first, lambda d: d["done"] >= 2)
            # A single request is not starved by the job on the one worker: it is answered
            # while the job still has files left (it waits for at most the file in flight).
            code, body = server.single({"input_image_path": os.path.join(
                server.input_root, "pat001.dcm"), "save_to_disk": False})
            self.assertEqual(code, 200)
            code, body = server.request("GET", "/jobs/" + first)
            self.assertEqual(body["Data"]["state"], "running")
            self.assertLess(body["Data"]["done"], 100)
            code, body = server.request("DELETE", "/jobs/" + first)
            self.assertEqual(code, 200, body)
            self.assertEqual(body["Data"]["state"], "cancelled")
            final = wait_for(server, first, lambda d: d["finished"] is not None)
            time.sleep(1.0)  # nothing runs after the end
            code, later = server.request("GET", "/jobs/" + first)
            self.assertEqual(later["Data"], final)
            self.assertEqual(final["state"], "cancelled")
            self.assertLess(final["done"], 100)
            with open(final["summary_csv"], newline="") as saved:
                _, rows = parse_summary(saved.read())
            self.assertEqual(len(rows), 100)
            not_done = [r for r in rows if r["result"] == ""]
            self.assertEqual(len(not_done), 100 - final["done"])
            self.assertEqual({r["skip_reason"] for r in not_done},
                             {"not processed: the job was cancelled"})
            self.check_summary_against_outputs(rows, out)
            db = sqlite3.connect(server.audit)
            runs = db.execute("SELECT count(*) FROM audit WHERE job_id = ?"
                              " AND route = 'bulk_inference/file'", (first,)).fetchone()[0]
            db.close()
            self.assertEqual(runs, final["done"])

            code, body = server.request("DELETE", "/jobs/" + first)
            self.assertEqual(code, 409)
            self.assertEqual(body["Message"], "Job has already ended: %s is cancelled" % first)
            code, body = server.request("GET", "/jobs/" + "0" * 32)
            self.assertEqual((code, body["Message"]), (404, "Job not found: " + "0" * 32))
            code, body = server.request("GET", "/jobs/../etc/passwd")
            self.assertEqual((code, body["Message"]), (404, "Not found"))
            code, body = server.request("POST", "/jobs/" + first)
            self.assertEqual(code, 405)
        finally:
            self.assertEqual(server.stop(), 0, "".join(server.log))
            server.remove()


def get_bytes(server, path, token="default"):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {"Authorization": server.token if token == "default" else token}
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), data


class Results(JobCase):
    def test_result_files_by_id_only_while_the_folder_holds_them(self):
        server = Server()
        try:
            out = os.path.join(server.output_root, "res")
            ids = {}
            for name in ("twin1.dcm", "twin2.dcm", "pat001.dcm"):
                code, body = server.single({"input_image_path": os.path.join(
                    server.input_root, name), "save_to_disk": True, "output_folder_path": out})
                self.assertEqual(code, 200, body)
                db = sqlite3.connect(server.audit)
                ids[name] = db.execute("SELECT max(id) FROM audit").fetchone()[0]
                db.close()
            code, body = server.single({"input_image_path": os.path.join(
                server.input_root, "conc0.dcm"), "save_to_disk": False})
            self.assertEqual(code, 200)
            code, listed = server.request("GET", "/results?limit=10")
            self.assertEqual(code, 200, listed)
            by_id = {row["id"]: row for row in listed["Data"]}
            self.assertEqual(len(by_id), 4)
            inline = [row for row in listed["Data"] if not row["has_files"]]
            self.assertEqual([row["patient_id"] for row in inline], ["PATC0"])
            self.assertEqual(by_id[ids["pat001.dcm"]]["patient_name"], "John Doe")
            self.assertEqual(by_id[ids["pat001.dcm"]]["top_finding"]["name"], "Tuberculosis")

            # twin2 replaced twin1's folder (same PatientID): twin1's files are gone.
            code, headers, data = get_bytes(server, "/results/%d/source_image.png" %
                                            ids["twin2.dcm"])
            self.assertEqual((code, headers["Content-Type"]), (200, "image/png"))
            with open(os.path.join(out, "TWIN1", "TWIN1_source_image.png"), "rb") as saved:
                self.assertEqual(data, saved.read())
            self.assertIn("default-src 'none'", headers["Content-Security-Policy"])
            code, _, data = get_bytes(server, "/results/%d/report.pdf" % ids["twin2.dcm"])
            self.assertEqual((code, data[:5]), (200, b"%PDF-"))
            code, _, data = get_bytes(server, "/results/%d/source_image.png" % ids["twin1.dcm"])
            self.assertEqual(code, 410)
            self.assertEqual(json.loads(data)["Message"],
                             "The files of this result were replaced by a later study of the "
                             "same patient: TWIN1")
            code, _, data = get_bytes(server, "/results/%d/source_image.png" %
                                      inline[0]["id"])
            self.assertEqual(code, 404)
            self.assertTrue(json.loads(data)["Message"].startswith(
                "No such file for this result: no saved files"))
            for bad in ["/results/%d/../../etc/passwd" % ids["pat001.dcm"],
                        "/results/%d/predictions.json" % ids["pat001.dcm"],
                        "/results/abc/source_image.png", "/results/999999/heatmap.png"]:
                code, _, data = get_bytes(server, bad)
                self.assertEqual(code, 404, bad)
                self.assertIsNone(json.loads(data)["Data"])
            # Paging: offset passes over the results already read, in the list's order.
            code, page = server.request("GET", "/results?limit=2&offset=2")
            self.assertEqual(code, 200, page)
            self.assertEqual([r["id"] for r in page["Data"]],
                             [r["id"] for r in listed["Data"]][2:4])
            code, page = server.request("GET", "/results?offset=4")
            self.assertEqual([r["id"] for r in page["Data"]], [])
            for bad in ("-1", "x", "1e3"):
                code, body = server.request("GET", "/results?offset=" + bad)
                self.assertEqual((code, body["Message"]),
                                 (400, "Invalid query parameter offset: not a number from 0 to "
                                       "1000000000"), bad)
            # A date that is no day is refused, not answered with an empty list.
            for bad in ("2026-13-45", "2026-02-29", "2026-04-31", "26-01-01"):
                code, body = server.request("GET", "/results?date=" + bad)
                self.assertEqual((code, body["Message"]),
                                 (400, "Invalid query parameter date: not a day as YYYY-MM-DD"),
                                 bad)
            for day in ("2024-02-29", "9999-12-31", "0000-01-01"):
                code, body = server.request("GET", "/results?date=" + day)
                self.assertEqual((code, body["Data"]), (200, []), day)
            # date is the stored rows' UTC day; with from/to, both apply.
            day = listed["Data"][0]["time"][:10]
            code, body = server.request("GET", "/results?date=" + day)
            self.assertEqual([r["id"] for r in body["Data"]],
                             [r["id"] for r in listed["Data"] if r["time"][:10] == day])
            code, body = server.request("GET", "/results?date=%s&from=%s" % (
                day, urllib.parse.quote(listed["Data"][0]["time"])))
            self.assertEqual(sorted(r["id"] for r in body["Data"]),
                             sorted(r["id"] for r in listed["Data"]
                                    if r["time"] >= listed["Data"][0]["time"]
                                    and r["time"][:10] == day))
            code, body = server.request("GET", "/results?date=%s&to=%sT00:00:00Z" % (day, day))
            self.assertEqual((code, body["Data"]), (200, []))
            # Filters together: result and finding and job narrow the same list.
            code, body = server.request("GET", "/results?result=TB+Presumptive&finding="
                                        "Tuberculosis&date=" + day)
            self.assertEqual(sorted(r["id"] for r in body["Data"]),
                             sorted(r["id"] for r in listed["Data"]
                                    if r["result"] == "TB Presumptive" and r["time"][:10] == day))
            # from/to: instants with any offset (the page sends the reader's local day), compared
            # with the stored UTC times.
            times = sorted(row["time"] for row in listed["Data"])
            cut = datetime.datetime.fromisoformat(times[1].replace("Z", "+00:00"))
            for name, zone, keep in (
                    ("from", datetime.timezone(datetime.timedelta(hours=5, minutes=30)),
                     lambda t: t >= times[1]),
                    ("to", datetime.timezone(datetime.timedelta(hours=-3)),
                     lambda t: t < times[1])):
                when = cut.astimezone(zone).isoformat(timespec="milliseconds")
                code, body = server.request("GET", "/results?%s=%s" % (
                    name, urllib.parse.quote(when)))
                self.assertEqual(code, 200, body)
                self.assertEqual(sorted(row["time"] for row in body["Data"]),
                                 [t for t in times if keep(t)], when)
            for bad in ("2026-12-05", "2026-12-05T10:00:00", "2026-12-05T24:00:00Z",
                        "2026-12-05T10:00:00+5:30", "2026-12-05T10:00:00.Z"):
                code, body = server.request("GET", "/results?from=" + urllib.parse.quote(bad))
                self.assertEqual((code, body["Message"]),
                                 (400, "Invalid query parameter from: not a time as "
                                       "YYYY-MM-DDThh:mm:ss with Z or an offset such as +05:30"),
                                 bad)
            code, body = server.request("GET", "/results?result=Maybe")
            self.assertEqual((code, body["Message"]), (400, "Invalid query parameter result: "
                                                              "not TB Presumptive, Abnormal or "
                                                              "Normal"))
            # A patient folder swapped for a symlink to elsewhere is not followed.
            outside = os.path.join(server.outside, "PAT001")
            os.rename(os.path.join(out, "PAT001"), outside)
            os.symlink(outside, os.path.join(out, "PAT001"))
            code, _, data = get_bytes(server, "/results/%d/source_image.png" % ids["pat001.dcm"])
            self.assertEqual(code, 404)
            self.assertEqual(json.loads(data)["Message"],
                             "No such file for this result: the result's folder is gone")
        finally:
            self.assertEqual(server.stop(), 0, "".join(server.log))
            server.remove()


class ResultsLongUid(JobCase):
    def test_sop_instance_uid_past_79_characters_kept_whole(self):
        """A SOP Instance UID longer than a UID may be (64) was cut to 79 bytes in the audit
        row, the run summary and the bulk ledger: the worklist then answered 410 "replaced by
        a later study" for the result the folder holds, `cxrd results --sop` found nothing, and
        a bulk run could not say which study a shared folder holds."""
        server = Server()
        try:
            long_uids = ["1.2.826.0.1.3680043.10.1001." + "1234567890." * 9 + str(i)
                         for i in (1, 2)]
            folder = make_identified_files(server, "long-uid",
                                           [("a.dcm", "LONGUID", long_uids[0]),
                                            ("b.dcm", "LONGUID", long_uids[1])])
            out = os.path.join(server.output_root, "long-uid")
            code, body = server.single({"input_image_path": os.path.join(folder, "a.dcm"),
                                        "save_to_disk": True, "output_folder_path": out})
            self.assertEqual(code, 200, body)
            self.assertEqual(body["Data"]["metadata"]["sop_instance_uid"], long_uids[0])
            db = sqlite3.connect(server.audit)
            row_id, stored = db.execute(
                "SELECT id, sop_instance_uid FROM audit ORDER BY id DESC LIMIT 1").fetchone()
            db.close()
            self.assertEqual(stored, long_uids[0])
            code, _, data = get_bytes(server, "/results/%d/report.pdf" % row_id)
            self.assertEqual((code, data[:5]), (200, b"%PDF-"), data[:200])
            run = subprocess.run([CXRD, "results", "--sop", long_uids[0], "--config",
                                  server.config], capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)

            bulk_out = os.path.join(server.output_root, "long-uid-bulk")
            code, body = server.request("POST", "/bulk_inference",
                                        {"input_folder_path": folder,
                                         "output_folder_path": bulk_out})
            self.assertEqual(code, 200, body)
            with open(os.path.join(bulk_out, "LONGUID", "LONGUID_predictions.json")) as saved:
                held = json.load(saved)["metadata"]["sop_instance_uid"]
            holder = {long_uids[0]: "a.dcm", long_uids[1]: "b.dcm"}[held]
            self.assertIn("LONGUID: a.dcm, b.dcm (the folder holds %s)" % holder,
                          body["Message"])
            summary = [name for name in os.listdir(bulk_out) if name.startswith("cxrd_run_")]
            with open(os.path.join(bulk_out, summary[0])) as text:
                _, rows = parse_summary(text.read())
            self.assertEqual(sorted(row["sop_instance_uid"] for row in rows), long_uids)
        finally:
            server.stop()
            server.remove()


class ResultsPages(JobCase):
    def test_every_page_matches_a_reference_order(self):
        """GET /results against the list's rule computed here from the database: stored results
        (status 200, predictions kept) that pass every filter, TB Presumptive first, then
        Abnormal, then Normal, newest first within each, sliced by offset and limit. The rows
        are a real result copied with other results, findings, jobs and times, so that pages cut
        across the groups and each group's newest rows fail the filters; some written before
        the findings table existed (filled at the next start), some pruned with the sqlite3
        shell."""
        server = Server()
        try:
            code, body = server.single({"input_image_path": os.path.join(
                server.input_root, "pat001.dcm"), "save_to_disk": False})
            self.assertEqual(code, 200, body)
            db = sqlite3.connect(server.audit)
            columns = [c[1] for c in db.execute("PRAGMA table_info(audit)")]
            template = list(db.execute("SELECT * FROM audit WHERE status = 200").fetchone())
            predictions = json.loads(template[columns.index("predictions")])
            results = ["TB Presumptive", "Abnormal", "Normal"]
            jobs = ["", "a" * 32, "b" * 32]
            rows = []
            for i in range(90):
                row = list(template)
                row[columns.index("id")] = None
                row[columns.index("result")] = results[(i * 7) % 5 % 3]
                row[columns.index("job_id")] = jobs[i % 3]
                row[columns.index("time")] = "2026-0%d-%02dT10:00:00.000Z" % (1 + i % 3,
                                                                               1 + i % 28)
                for k, finding in enumerate(predictions["findings"]):
                    finding["presence"] = (i + k) % 4 == 0
                row[columns.index("predictions")] = json.dumps(predictions)
                if i % 11 == 5:  # a refusal: never listed
                    row[columns.index("status")] = 400
                    row[columns.index("predictions")] = ""
                rows.append(row)
            insert = "INSERT INTO audit VALUES (%s)" % ",".join("?" * len(columns))
            db.executemany(insert, rows[:60])
            db.commit()
            db.close()
            # The database as a release before the findings table left it, with rows that it
            # wrote after: the next start fills the table from every stored row.
            self.assertEqual(server.stop(), 0, "".join(server.log))
            db = sqlite3.connect(server.audit)
            db.executescript("DROP TRIGGER audit_findings_insert; DROP TRIGGER"
                             " audit_findings_delete; DROP TABLE audit_findings;")
            db.executemany(insert, rows[60:])
            # A row whose JSON does not parse is listed, but under no finding.
            broken = list(template)
            broken[columns.index("id")] = None
            broken[columns.index("predictions")] = '{"findings": [}'
            db.execute(insert, broken)
            db.commit()
            db.close()
            server = Server(base=server.base)
            self.assertIn("audit: indexing 92 stored rows for the worklist (once)",
                          "".join(server.log))
            # Pruned as docs/deploy.md says: the rows' findings go with them.
            db = sqlite3.connect(server.audit)
            db.execute("DELETE FROM audit WHERE id % 9 = 4")
            db.commit()
            self.assertEqual(db.execute("SELECT count(*) FROM audit_findings WHERE id NOT IN"
                                        " (SELECT id FROM audit)").fetchone(), (0,))
            stored = db.execute("SELECT id, result, job_id, time, predictions FROM audit"
                                " WHERE status = 200 AND predictions != ''").fetchall()
            db.close()

            def present(predictions, finding):
                try:
                    return any(f["name"] == finding and f["presence"]
                               for f in json.loads(predictions)["findings"])
                except ValueError:
                    return False

            def expected(result="", finding="", job="", date="", limit=200, offset=0):
                kept = [(results.index(r), -i, i) for i, r, j, t, p in stored
                        if (not result or r == result) and (not job or j == job)
                        and (not date or t[:10] == date)
                        and (not finding or present(p, finding))]
                return [i for _, _, i in sorted(kept)][offset:offset + limit]

            cases = [{}, {"limit": 7}, {"limit": 7, "offset": 7}, {"limit": 13, "offset": 30},
                     {"limit": 1, "offset": 44}, {"offset": 200}, {"result": "Abnormal",
                                                                   "limit": 4, "offset": 3},
                     {"finding": "Tuberculosis"}, {"finding": "Cardiomegaly", "limit": 5,
                                                   "offset": 5},
                     {"job": "a" * 32, "finding": "Nodule Mass", "limit": 3, "offset": 2},
                     {"date": "2026-02-05"}, {"date": "2026-01-01", "result": "Normal"},
                     {"date": "2026-03-09", "finding": "Tuberculosis", "limit": 1,
                      "offset": 1}]
            for case in cases:
                query = urllib.parse.urlencode(case)
                code, body = server.request("GET", "/results?" + query)
                self.assertEqual(code, 200, body)
                self.assertEqual([row["id"] for row in body["Data"]], expected(**case), query)
        finally:
            self.assertEqual(server.stop(), 0, "".join(server.log))
            server.remove()


class ResultsReplaced(JobCase):
    def test_file_served_belongs_to_the_result_while_studies_replace_it(self):
        """GET /results/{id}/source_image.png while two studies of one patient replace each
        other's folder: every file served is the result's own study (or 410), never the other
        study's image under this result. The check of the folder's predictions JSON and the
        read of the file were two opens with no lock between them: a commit in between served
        the later study's image as this result's (docs/file-safety.md: readers take the
        folder's shared lock)."""
        server = Server()
        try:
            source = pydicom.dcmread(os.path.join(server.input_root, "pat001.dcm"))
            paths = []
            for i in range(2):  # one patient, two studies whose pixels differ
                pixels = source.pixel_array.copy()
                pixels[20:80, 20 + 100 * i:80 + 100 * i] = 900
                source.PixelData = pixels.tobytes()
                source.PatientID = "SAMEPAT"
                source.SOPInstanceUID = "1.2.826.0.1.3680043.10.2001.%d" % i
                source.file_meta.MediaStorageSOPInstanceUID = source.SOPInstanceUID
                paths.append(os.path.join(server.input_root, "study%d.dcm" % i))
                source.save_as(paths[-1])
            out = os.path.join(server.output_root, "race")
            saved = os.path.join(out, "SAMEPAT", "SAMEPAT_source_image.png")
            images = []
            for path in paths:
                code, body = server.single({"input_image_path": path, "save_to_disk": True,
                                            "output_folder_path": out})
                self.assertEqual(code, 200, body)
                with open(saved, "rb") as png:
                    images.append(png.read())
            self.assertNotEqual(images[0], images[1])
            db = sqlite3.connect(server.audit)
            first = db.execute("SELECT min(id) FROM audit").fetchone()[0]
            db.close()
            stop = time.time() + 10
            wrong = []

            def writer(path):
                while time.time() < stop:
                    server.single({"input_image_path": path, "save_to_disk": True,
                                   "output_folder_path": out})

            def reader():
                while time.time() < stop:
                    code, _, data = get_bytes(server, "/results/%d/source_image.png" % first)
                    if code == 200 and data != images[0]:
                        wrong.append(data == images[1])
                    else:
                        self.assertIn(code, (200, 410))

            threads = [threading.Thread(target=writer, args=(path,)) for path in paths]
            threads += [threading.Thread(target=reader) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            self.assertEqual(wrong, [], "the other study's image served under result %d" % first)
        finally:
            self.assertEqual(server.stop(), 0)
            server.remove()


class JobsAuth(JobCase):
    def test_token_required_and_no_database(self):
        server = Server()
        try:
            for path in ["/jobs", "/jobs/" + "0" * 32, "/jobs/%s/summary.csv" % ("0" * 32),
                         "/results", "/results/1/source_image.png"]:
                code, body = server.request("GET", path, token=None)
                self.assertEqual((code, body["Message"], body["Data"]),
                                 (401, "Token missing", None), path)
                code, body = server.request("GET", path, token="x.y.z")
                self.assertEqual((code, body["Message"]), (401, "Invalid token"), path)
        finally:
            self.assertEqual(server.stop(), 0)
            server.remove()
        server = Server(config_extra={"audit": {"database": ""}})
        try:
            folder = make_files(server, "nodb", 1)
            code, body = self.submit(server, folder, server.output_root)
            message = ("Bulk jobs and stored results need a database: set [audit] database in "
                       "the server configuration")
            self.assertEqual((code, body["Message"]), (400, message))
            code, body = server.request("GET", "/jobs")
            self.assertEqual((code, body["Message"]), (400, message))
        finally:
            self.assertEqual(server.stop(), 0)
            server.remove()


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:])
