#!/usr/bin/python3
"""Throughput of Orthanc + orthanc-cxrd: N distinct radiographs (copies of the bench/api
2048x2048 DX image with their own patient, study, series and instance UIDs, written here with
pydicom) sent by one storescu association to an Orthanc started here on loopback ports with the
plugin; measures the wall time from the first byte sent until the plugin has stored the three
outputs of every image (polling GET /cxrd/status), images per second, and Orthanc's CPU time per
image (utime + stime of the Orthanc process from /proc/<pid>/stat: Orthanc's own work on the
inputs and outputs plus the plugin's pipeline, which runs inside it). Prints a table; not a test.

Usage: bench_orthanc.py --plugin libOrthancCxrd.so --model MODEL.onnx --image IMAGE.dcm
           [--count 50] [--workers 2] [--port-base 18400]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import pydicom
from pydicom.uid import generate_uid


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--plugin", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port-base", type=int, default=18400)
    args = parser.parse_args()
    http_port, dicom_port = args.port_base + 43, args.port_base + 6

    base = tempfile.mkdtemp(prefix="cxr-bench-orthanc-")
    inputs = os.path.join(base, "inputs")
    os.makedirs(inputs)
    template = pydicom.dcmread(args.image)
    paths = []
    for i in range(args.count):
        template.PatientID = "BENCH%03d" % i
        template.StudyInstanceUID = generate_uid(prefix="2.25.")
        template.SeriesInstanceUID = generate_uid(prefix="2.25.")
        template.SOPInstanceUID = generate_uid(prefix="2.25.")
        template.file_meta.MediaStorageSOPInstanceUID = template.SOPInstanceUID
        paths.append(os.path.join(inputs, "%03d.dcm" % i))
        template.save_as(paths[-1])

    config = {
        "Name": "cxrd-bench", "StorageDirectory": os.path.join(base, "storage"),
        "IndexDirectory": os.path.join(base, "storage"), "HttpPort": http_port,
        "DicomPort": dicom_port, "DicomAet": "CXRDBENCH", "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "Plugins": [os.path.abspath(args.plugin)],
        "CXRD": {"Model": os.path.abspath(args.model), "Workers": args.workers,
                 "WorkDir": os.path.join(base, "work")},
    }
    config_path = os.path.join(base, "orthanc.json")
    with open(config_path, "w") as out:
        json.dump(config, out)
    log = open(os.path.join(base, "orthanc.log"), "w")
    orthanc = subprocess.Popen(["Orthanc", config_path], stdout=log, stderr=subprocess.STDOUT)

    def status():
        url = "http://127.0.0.1:%d/cxrd/status" % http_port
        with urllib.request.urlopen(url, timeout=30) as answer:
            return json.loads(answer.read())

    try:
        deadline = time.time() + 60
        while True:
            try:
                status()
                break
            except OSError:
                if time.time() > deadline or orthanc.poll() is not None:
                    raise SystemExit("Orthanc did not start; log in " + base)
                time.sleep(0.3)
        cpu_start = cpu_seconds(orthanc.pid)
        start = time.perf_counter()
        sender = subprocess.Popen(["storescu", "-aec", "CXRDBENCH", "127.0.0.1", str(dicom_port)]
                                  + paths, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sent = None
        while True:
            if sent is None and sender.poll() is not None:
                sent = time.perf_counter() - start
                if sender.returncode != 0:
                    raise SystemExit("storescu failed: " + sender.stderr.read().decode())
            now = status()
            finished = sum(now["outcomes"][k] for k in ("done", "refused", "failed"))
            if finished >= args.count and now["in_progress"] == 0:
                break
            time.sleep(0.2)
        wall = time.perf_counter() - start
        cpu = cpu_seconds(orthanc.pid) - cpu_start
        outcomes = now["outcomes"]
        print("Orthanc %s + orthanc-cxrd, %d images (2048x2048 DX, uncompressed, %.1f MB each), "
              "%d workers, %d CPUs, load %.1f at the end" % (
                  subprocess.run(["Orthanc", "--version"], capture_output=True,
                                 text=True).stdout.split()[1], args.count,
                  os.path.getsize(paths[0]) / 1e6, args.workers, os.cpu_count(),
                  os.getloadavg()[0]))
        print("outcomes: %s" % json.dumps(outcomes))
        print("storescu finished sending after %.2f s" % (sent or wall))
        print("%-28s %10.2f s" % ("wall, send to last output", wall))
        print("%-28s %10.2f" % ("images/s", args.count / wall))
        print("%-28s %10.1f ms" % ("Orthanc CPU per image", cpu / args.count * 1000))
        print("%-28s %10.1f ms" % ("plugin worker time per image",
                                    now["busy_seconds"] / args.count * 1000))
    finally:
        orthanc.send_signal(signal.SIGTERM)
        orthanc.wait(timeout=120)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


main()
