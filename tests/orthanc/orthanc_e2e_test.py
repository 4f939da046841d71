#!/usr/bin/python3
"""orthanc-cxrd end to end with the real Orthanc, started here on loopback ports with its own
storage folder and configuration (no root), and DCMTK as the modality and the PACS:

- storescu sends three chest radiographs (Abnormal and TB Presumptive from the corpus,
  decompressed with gdcmconv so that storescu's default transfer syntaxes carry them; Normal made
  from an NIH image of the data folder, since no corpus radiograph is Normal under the default
  model) and a CT;
- within a bounded wait each radiograph's study holds the source and the three outputs (Chest CAD
  SR, Secondary Capture, Encapsulated PDF: new series of the same study), GET /cxrd/instances/{id}
  gives the predictions; the CT's study holds only the CT, refused by the gate, with the reason in
  /cxrd/instances/{id}, /cxrd/status and Orthanc's log;
- with "ForwardTo": "PACS", storescp receives the nine outputs;
- /cxrd/metrics counts them; an instance deleted while queued is counted ("deleted"), so the
  outcomes add up to what was received; an instance being analysed reads "in progress", not 404;
- restarts: Orthanc restarted with the plugin processes nothing again (the record on each
  instance), a radiograph re-sent is not processed twice (with OverwriteInstances, which drops the
  record), and one stored while the plugin was not loaded is processed once at the next start
  (ResumeOnStart);
- the PACS down: the outputs are forwarded once it is back (retry), exactly once;
- Orthanc stopped while radiographs are queued and analysed: it stops cleanly, and at the next
  start (ResumeOnStart off) each is analysed exactly once;
- a ForwardTo that names no DicomModalities entry stops Orthanc at start, the key in its log.

Exit status 77 (ctest: skipped) when Orthanc is not installed.

orthanc_e2e_test.py PLUGIN MODEL DATA_DIR WORK_DIR PORT_BASE
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pydicom

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from png_dicom import make_dicom  # noqa: E402

sys.dont_write_bytecode = True

PLUGIN, MODEL, DATA, WORK = sys.argv[1:5]
PORT_BASE = int(sys.argv[5])
HTTP_PORT, DICOM_PORT, PACS_PORT = PORT_BASE + 42, PORT_BASE + 4, PORT_BASE + 5
WAIT_SECONDS = 180
SOP_SR = "1.2.840.10008.5.1.4.1.1.88.65"
SOP_SC = "1.2.840.10008.5.1.4.1.1.7"
SOP_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL: " + message, flush=True)


def http_get(path, text=False):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (HTTP_PORT, path), timeout=30) as r:
        body = r.read()
    return body.decode() if text else json.loads(body)


def http_post(path, body):
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (HTTP_PORT, path),
                                     data=body.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())


def http_status(path):
    try:
        http_get(path)
        return 200
    except urllib.error.HTTPError as error:
        return error.code


class Orthanc:
    def __init__(self, with_plugin=True, **cxrd):
        config = {
            "Name": "cxrd-e2e",
            "StorageDirectory": os.path.join(WORK, "storage"),
            "IndexDirectory": os.path.join(WORK, "storage"),
            "HttpPort": HTTP_PORT, "DicomPort": DICOM_PORT, "DicomAet": "CXRDE2E",
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
            "Plugins": [PLUGIN] if with_plugin else [],
            "DicomModalities": {"PACS": ["PACS", "127.0.0.1", PACS_PORT]},
            # A site that lets a modality re-send corrected images: Orthanc replaces the instance
            # and drops its metadata (cxrd's record).
            "OverwriteInstances": True,
            "CXRD": {"Model": MODEL, "Workers": 2, "ForwardTo": "PACS", "ResumeOnStart": True,
                     "ForwardRetrySeconds": 1, "WorkDir": os.path.join(WORK, "cxrd-work")},
        }
        config["CXRD"].update(cxrd)
        path = os.path.join(WORK, "orthanc.json")
        with open(path, "w") as out:
            json.dump(config, out, indent=2)
        self.log_path = os.path.join(WORK, "orthanc.log")
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen(["Orthanc", path], stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("Orthanc exited:\n" + open(self.log_path).read()[-4000:])
            try:
                http_get("/system")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("Orthanc did not answer within 60 s")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


def storescu(paths):
    run = subprocess.run(["storescu", "-aec", "CXRDE2E", "127.0.0.1", str(DICOM_PORT)] + paths,
                         capture_output=True, text=True)
    check(run.returncode == 0, "storescu failed: %s" % run.stderr)


def wait_status(predicate, what):
    deadline = time.time() + WAIT_SECONDS
    status = None
    while time.time() < deadline:
        status = http_get("/cxrd/status")
        if predicate(status):
            return status
        time.sleep(0.5)
    check(False, "%s within %d s; status %s" % (what, WAIT_SECONDS, json.dumps(status)))
    return status


def lookup(sop_instance_uid):
    found = http_post("/tools/lookup", sop_instance_uid)
    ids = [item["ID"] for item in found if item["Type"] == "Instance"]
    return ids[0] if ids else None


def study_sop_classes(instance_id):
    study = http_get("/instances/%s/study" % instance_id)["ID"]
    classes = []
    for instance in http_get("/studies/%s/instances" % study):
        tags = http_get("/instances/%s/simplified-tags" % instance["ID"])
        classes.append(tags.get("SOPClassUID", ""))
    return sorted(classes)


def decompress(source, target):
    subprocess.run(["gdcmconv", "--raw", source, target], check=True)


def processed_count(status):
    return sum(status["outcomes"][k] for k in ("done", "refused", "failed"))


def copy_with_new_uids(source, target):
    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = pydicom.uid.generate_uid(prefix="2.25.")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID = pydicom.uid.generate_uid(prefix="2.25.")
    ds.StudyInstanceUID = pydicom.uid.generate_uid(prefix="2.25.")
    ds.save_as(target)
    return str(ds.SOPInstanceUID)


def record_of(instance_id):
    try:
        return http_get("/cxrd/instances/%s" % instance_id)
    except urllib.error.HTTPError as error:
        return {"status": error.code}


def wait_records(ids, what):
    """Waits until each instance has a record other than queued / in progress."""
    deadline = time.time() + WAIT_SECONDS
    while time.time() < deadline:
        try:
            if all(http_get("/cxrd/instances/%s" % i)["status"] not in ("queued", "in progress")
                   for i in ids):
                return
        except urllib.error.HTTPError:
            pass
        time.sleep(0.5)
    check(False, "%s within %d s" % (what, WAIT_SECONDS))


def main():
    if shutil.which("Orthanc") is None:
        print("SKIP: Orthanc is not installed (scripts/install-deps installs orthanc)")
        sys.exit(77)
    if os.environ.get("CXR_ORTHANC_SANITIZED"):
        print("SKIP: sanitizer build: an ASan plugin needs libasan preloaded into Orthanc, which "
              "then does not start (tests/orthanc/CMakeLists.txt)")
        sys.exit(77)
    shutil.rmtree(WORK, ignore_errors=True)
    inputs = os.path.join(WORK, "inputs")
    pacs = os.path.join(WORK, "pacs")
    os.makedirs(inputs)
    os.makedirs(pacs)
    cases = {
        "abnormal": (os.path.join(DATA, "dicom", "torchxrayvision", "1.2.276.0.7230010.3.1.4."
                                  "8323329.6904.1517875201.850819.dcm"), "Abnormal"),
        "tb": (os.path.join(DATA, "dicom", "pylibjpeg-data", "JPEG2000Lossless",
                            "966_fixed.dcm"), "TB Presumptive"),
    }
    files = {}
    for name, (source, _) in cases.items():
        files[name] = os.path.join(inputs, name + ".dcm")
        decompress(source, files[name])
    # no corpus radiograph is Normal under the default model: one made from an NIH image that is
    cases["normal"] = (None, "Normal")
    files["normal"] = os.path.join(inputs, "normal.dcm")
    make_dicom(os.path.join(DATA, "cxr", "images", "nih_darkcovidnet", "00001385_000.png"),
               files["normal"], "NORMAL01", "Normal^Case", "ACC-N-0001", 1)
    files["ct"] = os.path.join(inputs, "ct.dcm")
    decompress(os.path.join(DATA, "dicom", "pydicom-test-files", "CT_small.dcm"), files["ct"])
    uids = {name: str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
            for name, path in files.items()}
    # sent last and deleted from Orthanc at once, while still queued
    doomed = os.path.join(inputs, "doomed.dcm")
    doomed_uid = copy_with_new_uids(files["abnormal"], doomed)

    receiver = subprocess.Popen(["storescp", "-aet", "PACS", "-od", pacs, str(PACS_PORT)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    orthanc = None
    try:
        # One worker, the largest image first: the others wait in the queue long enough to be
        # seen queued and then in progress.
        orthanc = Orthanc(Workers=1)
        storescu([files[name] for name in ("tb", "abnormal", "normal", "ct")] + [doomed])
        doomed_id = lookup(doomed_uid)
        check(doomed_id is not None and
              urllib.request.urlopen(urllib.request.Request(
                  "http://127.0.0.1:%d/instances/%s" % (HTTP_PORT, doomed_id),
                  method="DELETE"), timeout=30).status == 200, "deleting the queued instance")
        # Each radiograph reads queued, then in progress, then done: once cxrd has it (Orthanc
        # calls the plugin a moment after storing), never 404.
        states = {name: [] for name in cases}
        deadline = time.time() + WAIT_SECONDS
        while time.time() < deadline and not all(s and s[-1] == "done" for s in states.values()):
            for name in cases:
                try:
                    state = http_get("/cxrd/instances/%s" % lookup(uids[name]))["status"]
                except urllib.error.HTTPError as error:
                    state = error.code
                if not states[name] or states[name][-1] != state:
                    states[name].append(state)
        for name, seen in states.items():
            check(seen and seen[-1] == "done" and 404 not in seen[1 if seen[0] == 404 else 0:],
                  "%s: states while analysed %s" % (name, seen))
        check(any("in progress" in seen for seen in states.values()),
              "no radiograph was seen in progress: %s" % states)
        status = wait_status(lambda s: processed_count(s) >= 4 and s["queued"] == 0 and
                             s["in_progress"] == 0, "four instances processed")
        check(status["outcomes"]["done"] == 3 and status["outcomes"]["refused"] == 1 and
              status["outcomes"]["failed"] == 0, "outcomes %s" % status["outcomes"])
        check(status["outcomes"].get("deleted") == 1 and
              sum(status["outcomes"].values()) == status["received"],
              "the deleted instance is not counted: received %d, outcomes %s" %
              (status["received"], status["outcomes"]))
        check(status["outcomes"]["output"] + status["outcomes"]["already processed"] == 9,
              "the nine outputs were not all recognised as the plugin's own: %s" %
              status["outcomes"])

        output_uids = set()
        for name, (_, result) in cases.items():
            instance = lookup(uids[name])
            check(instance is not None, "%s: not in Orthanc" % name)
            if instance is None:
                continue
            check(study_sop_classes(instance) ==
                  sorted([SOP_SR, SOP_SC, SOP_PDF, str(pydicom.dcmread(
                      files[name], stop_before_pixels=True).SOPClassUID)]),
                  "%s: study holds %s" % (name, study_sop_classes(instance)))
            record = http_get("/cxrd/instances/%s" % instance)
            check(record["status"] == "done" and record["data"]["result"] == result and
                  len(record["data"]["findings"]) == 11 and len(record["outputs"]) == 3 and
                  record.get("forwarded") is True,
                  "%s: record %s" % (name, json.dumps(record)[:400]))
            for output in record.get("outputs", []):
                tags = http_get("/instances/%s/simplified-tags" % output)
                output_uids.add(tags["SOPInstanceUID"])
                check(http_get("/cxrd/instances/%s" % output)["status"] == "output",
                      "%s: output %s not marked" % (name, output))

        ct = lookup(uids["ct"])
        check(ct is not None and study_sop_classes(ct) == ["1.2.840.10008.5.1.4.1.1.2"],
              "CT study holds %s" % (study_sop_classes(ct) if ct else None))
        record = http_get("/cxrd/instances/%s" % ct) if ct else {}
        check(record.get("status") == "refused" and
              "not a frontal chest radiograph" in record.get("message", ""),
              "CT record %s" % record)
        recent = [r for r in status["recent"] if r["instance"] == ct]
        check(recent and recent[0]["status"] == "refused" and
              "not a frontal chest radiograph" in recent[0]["message"],
              "CT not in /cxrd/status recent: %s" % status["recent"])
        check(http_status("/cxrd/instances/no-such-instance") == 404, "unknown instance not 404")

        # The PACS received the nine outputs.
        deadline = time.time() + 30
        while time.time() < deadline and len(os.listdir(pacs)) < 9:
            time.sleep(0.5)
        received = {str(pydicom.dcmread(os.path.join(pacs, f), stop_before_pixels=True)
                        .SOPInstanceUID) for f in os.listdir(pacs)}
        check(received == output_uids and len(output_uids) == 9,
              "PACS received %d files, %d outputs in Orthanc" % (len(received), len(output_uids)))
        metrics = http_get("/cxrd/metrics", text=True)
        check('cxrd_orthanc_instances_total{outcome="done"} 3' in metrics and
              'cxrd_orthanc_instances_total{outcome="refused"} 1' in metrics and
              "cxrd_orthanc_forwarded_total 3" in metrics, "metrics:\n" + metrics)
        with open(orthanc.log_path) as log:
            check(any("refused" in line and ct in line and "frontal chest" in line
                      for line in log), "the CT's refusal is not in Orthanc's log")
        instance_count = len(http_get("/instances"))
        check(instance_count == 13, "%d instances stored, expected 13" % instance_count)

        # Restart: nothing processed again; a resent radiograph is not processed twice.
        check(orthanc.stop() == 0, "Orthanc did not stop cleanly")
        orthanc = Orthanc()
        status = wait_status(lambda s: s["resume_scans"] >= 1 and s["queued"] == 0 and
                             s["in_progress"] == 0, "the resume scan")
        storescu([files["abnormal"]])
        time.sleep(3)
        status = http_get("/cxrd/status")
        check(processed_count(status) == 0 and status["outcomes"]["done"] == 0,
              "after restart and resend: %s" % status["outcomes"])
        check(len(http_get("/instances")) == instance_count, "instances changed after restart")
        record = http_get("/cxrd/instances/%s" % lookup(uids["abnormal"]))
        check(record.get("status") == "done" and len(record.get("outputs", [])) == 3 and
              record.get("data", {}).get("result") == "Abnormal",
              "the re-sent radiograph's record: %s" % json.dumps(record)[:300])

        # Stored while the plugin was not loaded: processed once at the next start.
        check(orthanc.stop() == 0, "Orthanc did not stop cleanly")
        orthanc = Orthanc(with_plugin=False)
        late = os.path.join(inputs, "late.dcm")
        ds = pydicom.dcmread(files["abnormal"])
        ds.SOPInstanceUID = pydicom.uid.generate_uid(prefix="2.25.")
        ds.SeriesInstanceUID = pydicom.uid.generate_uid(prefix="2.25.")
        ds.save_as(late)
        storescu([late])
        check(orthanc.stop() == 0, "Orthanc without the plugin did not stop cleanly")
        orthanc = Orthanc()
        status = wait_status(lambda s: s["resume_scans"] >= 1 and processed_count(s) >= 1 and
                             s["queued"] == 0 and s["in_progress"] == 0, "the late instance")
        check(status["outcomes"]["done"] == 1 and processed_count(status) == 1,
              "resume processed %s" % status["outcomes"])
        check(len(http_get("/instances")) == instance_count + 4,
              "after resume: %d instances" % len(http_get("/instances")))
        instance_count += 4

        # The PACS is down: the outputs are kept for a retry and sent once it is back.
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=30)
        pacs_later = os.path.join(WORK, "pacs-later")
        os.makedirs(pacs_later)
        offline = os.path.join(inputs, "offline.dcm")
        offline_id = copy_with_new_uids(files["abnormal"], offline)
        storescu([offline])
        offline_id = lookup(offline_id)
        wait_records([offline_id], "the radiograph sent while the PACS is down")
        record = http_get("/cxrd/instances/%s" % offline_id)
        status = http_get("/cxrd/status")
        check(record.get("forwarded") is False and status.get("forward_pending") == 1,
              "PACS down: record %s, status %s" % (json.dumps(record)[:200], status))
        receiver = subprocess.Popen(["storescp", "-aet", "PACS", "-od", pacs_later,
                                     str(PACS_PORT)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        status = wait_status(lambda s: s.get("forward_pending", 0) == 0, "the forward retried")
        time.sleep(1)
        received = sorted(str(pydicom.dcmread(os.path.join(pacs_later, f),
                                              stop_before_pixels=True).SOPInstanceUID)
                          for f in os.listdir(pacs_later))
        outputs = sorted(http_get("/instances/%s/simplified-tags" % i)["SOPInstanceUID"]
                         for i in http_get("/cxrd/instances/%s" % offline_id).get("outputs", []))
        check(received == outputs and len(outputs) == 3 and status.get("forward_retried") == 1 and
              http_get("/cxrd/instances/%s" % offline_id).get("forwarded") is True,
              "after the PACS came back it received %d files for %d outputs; status %s" %
              (len(received), len(outputs), status))
        instance_count += 4

        # Stopped while radiographs are queued and analysed, restarted without ResumeOnStart:
        # Orthanc stops cleanly and each is analysed exactly once.
        # One worker, so that more is queued than Orthanc's shutdown (about 3 s) lets it finish.
        check(orthanc.stop() == 0, "Orthanc did not stop cleanly")
        orthanc = Orthanc(Workers=1)
        queued_files, queued_uids = [], []
        for i in range(12):
            queued_files.append(os.path.join(inputs, "queued%d.dcm" % i))
            # the largest radiograph: more work than Orthanc's shutdown lasts
            queued_uids.append(copy_with_new_uids(files["tb"], queued_files[-1]))
        storescu(queued_files)
        status = http_get("/cxrd/status")
        check(status["queued"] + status["in_progress"] > 0,
              "nothing queued at the stop (the test needs slower analysis): %s" % status)
        check(orthanc.stop() == 0, "Orthanc stopped while analysing did not stop cleanly")
        orthanc = Orthanc(ResumeOnStart=False)
        queued_ids = [lookup(uid) for uid in queued_uids]
        wait_records(queued_ids, "the instances queued at the stop")
        for instance in queued_ids:
            record = record_of(instance)
            check(record.get("status") == "done" and len(study_sop_classes(instance)) == 4,
                  "queued at the stop: record %s, study %s" %
                  (record.get("status"), study_sop_classes(instance)))
        check(len(http_get("/instances")) == instance_count + 4 * len(queued_ids),
              "after the stop while queued: %d instances, expected %d" %
              (len(http_get("/instances")), instance_count + 4 * len(queued_ids)))
        check(orthanc.stop() == 0, "Orthanc did not stop cleanly")
        orthanc = None

        # A ForwardTo that names no modality stops Orthanc at start, with the key in its log.
        try:
            orthanc = Orthanc(ForwardTo="NOWHERE")
            check(False, "Orthanc started with a ForwardTo that names no modality")
        except RuntimeError as error:
            check("CXRD.ForwardTo 'NOWHERE' is not an entry of DicomModalities" in str(error),
                  "ForwardTo NOWHERE: %s" % str(error)[-400:])
    finally:
        if orthanc is not None:
            orthanc.stop()
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=30)

    if failures:
        print("%d failures; Orthanc log: %s" % (len(failures), os.path.join(WORK, "orthanc.log")))
        sys.exit(1)
    print("orthanc-cxrd end to end: all checks passed")


main()
