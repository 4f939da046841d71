#!/usr/bin/python3
"""File-system safety of the real `cxrd serve` (issue 19): swaps between a path's check and its
use never lead out of the roots, a FIFO never blocks a worker, temp files a killed writer left
are removed, readers that take the folder's shared lock never see a mixed set, an output folder
that is a file is refused before inference, and messages never show where a symlink points.

The races are tight loops bounded in time (renameat2(RENAME_EXCHANGE) of a folder and a symlink,
rename of a FIFO over a file) on loopback, each a few seconds long; without the fixes each loop
finds the hole within that time (see docs/file-safety.md).

Environment: CXRD (the binary), CXR_API_FIXTURES (make_fixtures.py output). Arguments: unittest
names (e.g. InputSwap), so ctest can run the groups in parallel.
"""
import ctypes
import fcntl
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_test import CXRD, Server  # noqa: E402

RACE_SECONDS = 8.0
INSIDE_UID = "1.2.826.0.1.3680043.10.1001.1"   # pat001.dcm
OUTSIDE_UID = "1.2.826.0.1.3680043.10.1002.0"  # conc0.dcm

_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a, b):
    """Swaps two names atomically (renameat2 RENAME_EXCHANGE): a folder and a symlink trade
    places with no moment at which either name is missing."""
    if _libc.renameat2(_AT_FDCWD, a.encode(), _AT_FDCWD, b.encode(), _RENAME_EXCHANGE) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), a)


class Loop(threading.Thread):
    """Calls step() until stopped."""

    def __init__(self, step):
        super().__init__(daemon=True)
        self.step = step
        self.stopped = threading.Event()
        self.count = 0

    def run(self):
        while not self.stopped.is_set():
            self.step()
            self.count += 1

    def stop(self):
        self.stopped.set()
        self.join(timeout=10)


def post(server, route, body, timeout=60):
    """(status, body) or ("timeout", None) when the server does not answer in time."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        connection.request("POST", route, body=json.dumps(body),
                           headers={"Content-Type": "application/json",
                                    "Authorization": server.token})
        response = connection.getresponse()
        text = response.read().decode("utf-8")
        return response.status, json.loads(text)
    except (TimeoutError, OSError):
        return "timeout", None
    finally:
        connection.close()


def clients(count, seconds, request):
    """count threads calling request() until seconds have passed; returns every answer."""
    answers = []
    lock = threading.Lock()
    deadline = time.time() + seconds

    def client():
        while time.time() < deadline:
            answer = request()
            with lock:
                answers.append(answer)
            if answer[0] == "timeout":
                return

    threads = [threading.Thread(target=client) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    return answers


class SafetyTest(unittest.TestCase):
    workers = 2

    def setUp(self):
        self.server = Server(workers=self.workers, queue_size=32)

    def tearDown(self):
        process = self.server.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                self.server.remove()
                self.fail("cxrd serve did not stop within 45 s of SIGTERM")
        self.server.reader.join(timeout=10)
        log = "".join(self.server.log)
        self.server.remove()
        self.assertEqual(process.returncode, 0, log)

    def single(self, body, timeout=60):
        return post(self.server, "/single_inference", body, timeout)

    def files_under(self, folder):
        found = []
        for parent, folders, files in os.walk(folder):
            found += [os.path.relpath(os.path.join(parent, name), folder)
                      for name in files + [f for f in folders
                                           if os.path.islink(os.path.join(parent, f))]]
        return sorted(found)


class FifoSwap(SafetyTest):
    """Item 1: FIFOs renamed over the file a request reads, or over the predictions JSON a bulk
    run reads back, never block a worker."""

    def test_fifo_swapped_over_the_input(self):
        root = self.server.input_root
        target = os.path.join(root, "x.dcm")
        shutil.copyfile(os.path.join(root, "pat001.dcm"), target)

        def swap():
            fifo = os.path.join(root, "fifo.tmp")
            real = os.path.join(root, "real.tmp")
            os.mkfifo(fifo)
            os.rename(fifo, target)
            shutil.copyfile(os.path.join(root, "pat001.dcm"), real)
            os.rename(real, target)

        swapper = Loop(swap)
        swapper.start()
        answers = clients(4, RACE_SECONDS, lambda: self.single(
            {"input_image_path": target, "save_to_disk": False}, timeout=30))
        swapper.stop()
        self.assertGreater(swapper.count, 10)
        self.assertGreater(len(answers), 8)
        statuses = sorted(set(str(status) for status, _ in answers))
        self.assertNotIn("timeout", statuses)
        for status, body in answers:
            if status != 200:
                self.assertEqual(status, 400, body)
        # The server still serves, and stops on SIGTERM (tearDown).
        code, body = self.single({"input_image_path": os.path.join(root, "pat001.dcm"),
                                  "save_to_disk": False}, timeout=30)
        self.assertEqual(code, 200, body)

    def test_fifo_swapped_over_the_predictions_a_bulk_run_reads_back(self):
        folder = os.path.join(self.server.input_root, "twins")
        os.makedirs(folder)
        for name in ("twin1.dcm", "twin2.dcm"):
            shutil.copyfile(os.path.join(self.server.input_root, name),
                            os.path.join(folder, name))
        out = os.path.join(self.server.output_root, "twins")
        patient = os.path.join(out, "TWIN1")
        os.makedirs(patient)
        target = os.path.join(patient, "TWIN1_predictions.json")

        def swap():
            fifo = os.path.join(patient, "fifo.tmp")
            os.mkfifo(fifo)
            os.rename(fifo, target)
            time.sleep(0.0005)

        swapper = Loop(swap)
        swapper.start()
        try:
            for _ in range(3):
                code, body = post(self.server, "/bulk_inference",
                                  {"input_folder_path": folder, "output_folder_path": out},
                                  timeout=30)
                self.assertEqual(code, 200, "bulk run did not answer in 30 s")
                self.assertEqual(body["Result"], "Warning", body)
                self.assertIn("TWIN1: twin1.dcm, twin2.dcm", body["Message"])
        finally:
            swapper.stop()


class InputSwap(SafetyTest):
    """Item 2: a folder swapped with a symlink to a folder outside the input root, in a loop,
    while clients ask for a file below it: no answer ever carries the outside file."""

    def test_single_requests_never_read_outside(self):
        root, outside = self.server.input_root, self.server.outside
        os.makedirs(os.path.join(root, "swap"))
        shutil.copyfile(os.path.join(root, "pat001.dcm"), os.path.join(root, "swap", "x.dcm"))
        os.makedirs(os.path.join(outside, "real"))
        shutil.copyfile(os.path.join(root, "conc0.dcm"), os.path.join(outside, "real", "x.dcm"))
        os.symlink(os.path.join(outside, "real"), os.path.join(root, "spare"))
        swap, spare = os.path.join(root, "swap"), os.path.join(root, "spare")

        swapper = Loop(lambda: exchange(swap, spare))
        swapper.start()
        answers = clients(4, RACE_SECONDS, lambda: self.single(
            {"input_image_path": os.path.join(swap, "x.dcm"), "save_to_disk": False}))
        swapper.stop()
        self.assertGreater(len(answers), 20)
        read_outside = sum(1 for status, body in answers if status == 200 and
                           body["Data"]["metadata"]["sop_instance_uid"] == OUTSIDE_UID)
        print("%d requests during %d swaps: %d answered with the outside file" % (
            len(answers), swapper.count, read_outside), file=sys.stderr)
        inside = 0
        for status, body in answers:
            self.assertIn(status, (200, 400), body)
            if status == 200:
                uid = body["Data"]["metadata"]["sop_instance_uid"]
                self.assertNotEqual(uid, OUTSIDE_UID, "read a file outside the input root")
                self.assertEqual(uid, INSIDE_UID)
                inside += 1
            else:
                self.assertTrue(body["Message"].startswith(
                    ("Invalid path input_image_path: ", "Input image path does not exist: ")),
                    body["Message"])
        self.assertGreater(inside, 0)

    def test_bulk_runs_never_read_outside(self):
        root, outside = self.server.input_root, self.server.outside
        os.makedirs(os.path.join(root, "bulk", "swap"))
        shutil.copyfile(os.path.join(root, "pat001.dcm"),
                        os.path.join(root, "bulk", "swap", "x.dcm"))
        os.makedirs(os.path.join(outside, "breal"))
        shutil.copyfile(os.path.join(root, "conc1.dcm"), os.path.join(outside, "breal", "y.dcm"))
        os.symlink(os.path.join(outside, "breal"), os.path.join(root, "bulk", "spare"))
        swap, spare = os.path.join(root, "bulk", "swap"), os.path.join(root, "bulk", "spare")
        out = os.path.join(self.server.output_root, "bulk")

        swapper = Loop(lambda: exchange(swap, spare))
        swapper.start()
        answers = clients(2, RACE_SECONDS, lambda: post(
            self.server, "/bulk_inference",
            {"input_folder_path": swap, "output_folder_path": out}))
        swapper.stop()
        self.assertGreater(len(answers), 4)
        for status, body in answers:
            self.assertIn(status, (200, 400), body)
        # conc1.dcm (PATC1) lives only outside the root: no folder of it may appear.
        self.assertFalse(os.path.exists(os.path.join(out, "PATC1")), self.files_under(out))


class OutputSwap(SafetyTest):
    """Item 3: the patient folder swapped with a symlink to a folder outside the output root,
    in a loop, while clients write that patient: nothing lands outside, no temp file either."""

    def test_nothing_written_outside(self):
        out, outside = os.path.join(self.server.output_root, "o"), self.server.outside
        os.makedirs(os.path.join(out, "PAT"))
        os.makedirs(os.path.join(outside, "PAT"))
        os.symlink(os.path.join(outside, "PAT"), os.path.join(out, "spare"))
        swap, spare = os.path.join(out, "PAT"), os.path.join(out, "spare")

        swapper = Loop(lambda: exchange(swap, spare))
        swapper.start()
        answers = clients(4, RACE_SECONDS, lambda: self.single(
            {"input_image_path": os.path.join(self.server.input_root, "pat001.dcm"),
             "save_to_disk": True, "output_folder_path": out, "patient_id": "PAT"}))
        swapper.stop()
        self.assertGreater(len(answers), 8)
        print("%d requests during %d swaps: %d files written outside" % (
            len(answers), swapper.count, len(self.files_under(outside))), file=sys.stderr)
        self.assertEqual(self.files_under(outside), [], "written outside the output root")
        written = 0
        for status, body in answers:
            self.assertIn(status, (200, 400), body)
            if status == 400:
                self.assertTrue(body["Message"].startswith("Invalid path output_folder_path: "),
                                body["Message"])
            else:
                written += 1
        self.assertGreater(written, 0)


class StaleTemps(SafetyTest):
    """Item 5 of the issue: hidden temp files a writer killed inside a commit left behind go
    when the patient folder is next written, and at start-up under the output root."""

    STALE = [".PAT2_report.pdf.tmp-Ab3xYz", ".PAT2_heatmap.png.tmp-q9Q9q9"]
    KEPT = [".PAT2_source_image.png.tmp-fresh0",  # too new: may be a live writer's
            ".PAT2_notes.tmp-abc",                 # not our pattern (6 characters)
            "PAT2_keep.txt"]

    def plant(self, folder):
        os.makedirs(folder, exist_ok=True)
        old = time.time() - 3600
        for name in self.STALE + self.KEPT:
            with open(os.path.join(folder, name), "wb") as planted:
                planted.write(b"x" * 1000)
            if name != ".PAT2_source_image.png.tmp-fresh0":
                os.utime(os.path.join(folder, name), (old, old))

    def test_removed_when_the_folder_is_next_written(self):
        out = os.path.join(self.server.output_root, "st")
        folder = os.path.join(out, "PAT2")
        self.plant(folder)
        code, body = self.single({"input_image_path": os.path.join(self.server.input_root,
                                                                   "pat001.dcm"),
                                  "save_to_disk": True, "output_folder_path": out,
                                  "patient_id": "PAT2"})
        self.assertEqual(code, 200, body)
        self.assertEqual(sorted(os.listdir(folder)), sorted(
            self.KEPT + ["PAT2_predictions.json", "PAT2_source_image.png",
                         "PAT2_heatmap.png", "PAT2_report.pdf"]))

    def test_removed_at_start_up(self):
        base = self.server.base
        self.server.stop()
        deep = os.path.join(self.server.output_root, "site", "day", "PAT2")
        shallow = os.path.join(self.server.output_root, "PAT2")
        self.plant(deep)
        self.plant(shallow)
        self.server = Server(base=base)
        for folder in (deep, shallow):
            self.assertEqual(sorted(os.listdir(folder)), sorted(self.KEPT))
        self.assertTrue(any("removed 4 stale temp files under the output root" in line
                            for line in self.server.log), "".join(self.server.log))


class ReaderLock(SafetyTest):
    """Item 7 of the issue: a reader that takes flock(LOCK_SH) on the patient folder (as
    README and docs/file-safety.md tell readers to) never sees a mix of two requests' sets,
    while two writers replace that patient's set with two different studies in a loop."""

    def test_shared_lock_readers_never_see_a_mix(self):
        import pydicom
        root = self.server.input_root
        flipped = pydicom.dcmread(os.path.join(root, "conc0.dcm"))
        flipped.PixelData = flipped.pixel_array[:, ::-1].copy().tobytes()
        flipped.save_as(os.path.join(root, "flipped.dcm"))
        out = os.path.join(self.server.output_root, "rl")
        folder = os.path.join(out, "RL")
        names = ["RL_predictions.json", "RL_source_image.png", "RL_heatmap.png"]

        def write(name):
            return self.single({"input_image_path": os.path.join(root, name),
                                "save_to_disk": True, "output_folder_path": out,
                                "patient_id": "RL"})

        def snapshot(lock):
            descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                if lock:
                    fcntl.flock(descriptor, fcntl.LOCK_SH)
                contents = []
                for name in names:
                    with open(os.path.join(folder, name), "rb") as part:
                        contents.append(part.read())
            finally:
                os.close(descriptor)  # releases the lock
            uid = json.loads(contents[0])["metadata"]["sop_instance_uid"]
            return uid, tuple(hashlib.sha256(c).hexdigest() for c in contents[1:])

        # Each study's own images, read alone.
        expected = {}
        for name in ("pat001.dcm", "flipped.dcm"):
            code, body = write(name)
            self.assertEqual(code, 200, body)
            uid, images = snapshot(lock=True)
            expected[uid] = images
        self.assertEqual(len(set(expected.values())), 2)

        stop = threading.Event()
        samples, mixed = [0], []

        def reader():
            while not stop.is_set():
                uid, images = snapshot(lock=True)
                samples[0] += 1
                if expected.get(uid) != images:
                    mixed.append(uid)

        readers = [threading.Thread(target=reader) for _ in range(2)]
        for thread in readers:
            thread.start()
        writers = [threading.Thread(target=lambda n=n: [write(n) for _ in range(1000)
                                                        if not stop.is_set()])
                   for n in ("pat001.dcm", "flipped.dcm")]
        for thread in writers:
            thread.start()
        time.sleep(RACE_SECONDS)
        stop.set()
        for thread in readers + writers:
            thread.join(timeout=120)
        self.assertGreater(samples[0], 50)
        self.assertEqual(len(mixed), 0, "%d of %d samples mixed two sets" % (len(mixed),
                                                                             samples[0]))


class OutputIsFile(SafetyTest):
    """Item 8 of the issue: output_folder_path naming an existing regular file is refused
    before inference, with the README table's message and status."""

    def infer_count(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        connection.request("GET", "/metrics", headers={"Authorization": self.server.token})
        text = connection.getresponse().read().decode()
        connection.close()
        for line in text.splitlines():
            if line.startswith('cxrd_stage_duration_seconds_count{stage="infer"}'):
                return float(line.split()[-1])
        return 0.0

    def test_refused_before_inference(self):
        blocker = os.path.join(self.server.output_root, "afile")
        with open(blocker, "w") as planted:
            planted.write("not a folder\n")
        before = self.infer_count()
        for shown in (blocker, blocker + "/"):
            code, body = self.single({"input_image_path": os.path.join(self.server.input_root,
                                                                       "pat001.dcm"),
                                      "save_to_disk": True, "output_folder_path": shown})
            self.assertEqual(code, 500, body)
            self.assertEqual(body, {"Result": "Failure", "Data": None,
                                    "Message": "Unable to create output folder: %s (exists "
                                               "and is not a folder)" % shown})
        self.assertEqual(self.infer_count(), before)
        with open(blocker) as kept:
            self.assertEqual(kept.read(), "not a folder\n")


class SymlinkMessage(SafetyTest):
    """Item 12 of the issue: a symlink that leads out of a root is refused as "outside the
    allowed root" without saying where it points."""

    def test_messages_do_not_show_the_target(self):
        root, outside = self.server.input_root, self.server.outside
        shutil.copyfile(os.path.join(root, "pat001.dcm"), os.path.join(outside, "secret.dcm"))
        os.symlink("/proc/self/environ", os.path.join(root, "environ.dcm"))
        os.symlink(os.path.join(outside, "secret.dcm"), os.path.join(root, "secret.dcm"))
        os.symlink(outside, os.path.join(root, "away"))
        os.symlink(outside, os.path.join(self.server.output_root, "away"))
        cases = [
            ("/single_inference", {"input_image_path": os.path.join(root, "environ.dcm"),
                                   "save_to_disk": False}, "input_image_path"),
            ("/single_inference", {"input_image_path": os.path.join(root, "secret.dcm"),
                                   "save_to_disk": False}, "input_image_path"),
            ("/single_inference", {"input_image_path": os.path.join(root, "away", "secret.dcm"),
                                   "save_to_disk": False}, "input_image_path"),
            ("/single_inference", {"input_image_path": os.path.join(root, "pat001.dcm"),
                                   "save_to_disk": True, "output_folder_path": os.path.join(
                                       self.server.output_root, "away", "deeper")},
             "output_folder_path"),
            ("/bulk_inference", {"input_folder_path": os.path.join(root, "away"),
                                 "output_folder_path": self.server.output_root},
             "input_folder_path"),
        ]
        for route, body, field in cases:
            code, answer = post(self.server, route, body)
            self.assertEqual(code, 400, answer)
            message = answer["Message"]
            self.assertTrue(message.startswith("Invalid path %s: " % field), message)
            self.assertIn("outside the allowed root", message)
            for secret in ("/proc", "environ (", outside):
                self.assertNotIn(secret, message)
        self.assertEqual(self.files_under(outside), ["secret.dcm"])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:], verbosity=2)
