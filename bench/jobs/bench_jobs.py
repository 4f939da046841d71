#!/usr/bin/python3
"""Bulk runs of many files on the real `cxrd serve`: the synchronous POST /bulk_inference
against an async job ("async": true) over the same files, in one session, alternating. Prints
files/s (wall clock) and server CPU seconds per file for each run, their ratio, and the
server's RSS sampled every --sample seconds during each run (a job must not grow with the
number of files). Not a test.

The files are copies of the corpus chest radiographs the input gate accepts (RG1 in JPEG-LS and
JPEG 2000, 966_fixed, the gdcm 10-bit chest CR), each with its own PatientID and SOP Instance
UID, written once into --work (the build tree or /tmp, never the repository).

Usage: bench_jobs.py --cxrd BUILD/src/cxrd --data ../shared/data --model MODEL.onnx
           --work DIR [--files 1000] [--rounds 1] [--workers 2] [--port 18350]
"""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pydicom

SECRET = "benchmark-secret-0123456789abcdef0123456789"
SOURCES = ["dicom/pylibjpeg-data/JPEGLS/RG1_JLSN.dcm",
           "dicom/pylibjpeg-data/JPEG2000/RG1_J2KI.dcm",
           "dicom/pylibjpeg-data/JPEG2000Lossless/966_fixed.dcm",
           "dicom/dcmbench/gdcm-CR-MONO1-10-chest.dcm"]


def make_files(data, folder, count):
    stamp = os.path.join(folder, ".made-%d" % count)
    if os.path.exists(stamp):
        return
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    sources = [pydicom.dcmread(os.path.join(data, path)) for path in SOURCES]
    for i in range(count):
        dataset = sources[i % len(sources)]
        dataset.PatientID = "BENCH%05d" % i
        dataset.SOPInstanceUID = "1.2.826.0.1.3680043.10.3000.%d" % i
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        sub = os.path.join(folder, "d%02d" % (i // 100))
        os.makedirs(sub, exist_ok=True)
        dataset.save_as(os.path.join(sub, "f%05d.dcm" % i))
    open(stamp, "w").close()


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    def __init__(self, pid, every):
        super().__init__(daemon=True)
        self.pid, self.every, self.samples, self.stop = pid, every, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples.append(rss_mib(self.pid))
            self.stop.wait(self.every)


def request(port, token, method, path, body=None, timeout=7200):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request(method, path, body=json.dumps(body) if body else None,
                       headers={"Authorization": token, "Content-Type": "application/json"})
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response.status, json.loads(text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cxrd", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18350)
    parser.add_argument("--sample", type=float, default=5.0)
    parser.add_argument("--order", default="sync,async",
                        help="the runs of each round, e.g. async,sync")
    args = parser.parse_args()
    args.work = os.path.abspath(args.work)
    args.model = os.path.abspath(args.model)

    input_root = os.path.join(args.work, "in")
    output_root = os.path.join(args.work, "out")
    folder = os.path.join(input_root, "files")
    make_files(args.data, folder, args.files)
    shutil.rmtree(output_root, ignore_errors=True)
    os.makedirs(output_root)
    audit = os.path.join(args.work, "audit.sqlite")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(audit + suffix):
            os.remove(audit + suffix)
    config = os.path.join(args.work, "cxrd.ini")
    with open(config, "w") as out:
        out.write("[server]\naddress = 127.0.0.1\nport = %d\nworkers = %d\nlog_level = warn\n"
                  "[paths]\ninput_root = %s\noutput_root = %s\n[model]\npath = %s\n"
                  "[auth]\nsecret = %s\n[audit]\ndatabase = %s\n"
                  % (args.port, args.workers, input_root, output_root, args.model, SECRET,
                     audit))
    token = subprocess.run([args.cxrd, "token", "--config", config, "--subject", "bench"],
                           check=True, capture_output=True, text=True).stdout.strip()
    log = open(os.path.join(args.work, "serve.log"), "w")
    server = subprocess.Popen([args.cxrd, "serve", "--config", config], stderr=log)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and server.poll() is None:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
                connection.request("GET", "/ping")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        print("%d files, %d workers, model %s, server pid %d" %
              (args.files, args.workers, os.path.basename(args.model), server.pid))
        results = {"sync": [], "async": []}
        for round_index in range(args.rounds):
            for mode in args.order.split(","):
                out = os.path.join(output_root, "%s-%d" % (mode, round_index))
                body = {"input_folder_path": folder, "output_folder_path": out}
                sampler = Sampler(server.pid, args.sample)
                cpu_before = cpu_seconds(server.pid)
                sampler.start()
                start = time.time()
                if mode == "sync":
                    code, answer = request(args.port, token, "POST", "/bulk_inference", body)
                    assert code == 200, answer
                    done, skipped = args.files, answer["Message"]
                else:
                    body["async"] = True
                    code, answer = request(args.port, token, "POST", "/bulk_inference", body)
                    assert code == 202, answer
                    job_id = answer["Data"]["id"]
                    while True:
                        code, answer = request(args.port, token, "GET", "/jobs/" + job_id)
                        if answer["Data"]["state"] != "running":
                            break
                        time.sleep(0.5)
                    assert answer["Data"]["state"] == "done", answer
                    done, skipped = answer["Data"]["done"], answer["Data"]["skipped"]
                seconds = time.time() - start
                sampler.stop.set()
                sampler.join()
                cpu = cpu_seconds(server.pid) - cpu_before
                samples = sampler.samples + [rss_mib(server.pid)]
                results[mode].append(args.files / seconds)
                # The server's share of the cores: on a shared machine wall time follows the
                # other load, CPU time per file does not.
                print("%-5s round %d: %.1f s, %.2f files/s, %.3f CPU s/file, server used %.2f "
                      "cores, load average %.1f; done %s, skipped %s"
                      % (mode, round_index + 1, seconds, args.files / seconds, cpu / args.files,
                         cpu / seconds, os.getloadavg()[1], done,
                         skipped if mode == "async" else "(Message) " + skipped[:60]))
                print("      RSS MiB every %.0f s: %s" %
                      (args.sample, " ".join("%.0f" % s for s in samples)))
                print("      RSS first %.0f, max %.0f, last %.0f MiB" %
                      (samples[0], max(samples), samples[-1]))
        sync = sum(results["sync"]) / len(results["sync"])
        job = sum(results["async"]) / len(results["async"])
        print("mean files/s: sync %.3f, async job %.3f, ratio job/sync %.3f" %
              (sync, job, job / sync))
    finally:
        server.terminate()
        server.wait(timeout=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
