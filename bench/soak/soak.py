#!/usr/bin/python3
"""Soak run of the real `cxrd serve`: mixed requests at a fixed concurrency for a given time
(POST /single_inference in save mode and in base64 mode, POST /bulk_inference over a small
folder of copies of the bench image, each its own patient), sampling the server's RSS (VmRSS)
and open descriptors (/proc/PID/fd) every --interval seconds. Prints a table as it goes and a
summary, writes a CSV and a PNG plot of RSS and descriptors over time. Exit status 1 if any
request got an unexpected status (anything but 200) or could not be sent, or the server died.
A benchmark, not a test.

Usage: soak.py --cxrd BUILD/src/cxrd --image IMAGE.dcm --model MODEL.onnx
           [--minutes 30] [--concurrency 4] [--interval 10] [--bulk-files 3] [--workers 2]
           [--csv soak.csv] [--png soak.png]
"""
import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from cxrd_serve import Server, proc_status_mib  # noqa: E402

KINDS = ("save", "base64", "bulk")


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def mean(samples, field):
    return sum(s[field] for s in samples) / len(samples)


def make_bulk_folder(image, folder, count):
    """Copies of the image, each its own patient and instance: bulk results are then Success
    (copies sharing a patient ID would each answer Warning, "studies share a patient ID")."""
    import pydicom
    from pydicom.uid import generate_uid
    dataset = pydicom.dcmread(image)
    for i in range(count):
        dataset.PatientID = "SOAK%02d" % i
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.save_as(os.path.join(folder, "study%02d.dcm" % i))


def plot(samples, path, title):
    import matplotlib
    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt
    minutes = [s["elapsed_s"] / 60.0 for s in samples]
    figure, rss_axis = plt.subplots(figsize=(9, 4.5))
    rss_axis.plot(minutes, [s["rss_mib"] for s in samples], color="tab:blue", marker=".")
    rss_axis.set_xlabel("minutes")
    rss_axis.set_ylabel("VmRSS (MiB)", color="tab:blue")
    rss_axis.set_ylim(bottom=0)
    fd_axis = rss_axis.twinx()
    fd_axis.plot(minutes, [s["fds"] for s in samples], color="tab:orange", marker=".")
    fd_axis.set_ylabel("open file descriptors", color="tab:orange")
    fd_axis.set_ylim(bottom=0)
    rss_axis.set_title(title)
    rss_axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cxrd", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--bulk-files", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="[model] threads")
    parser.add_argument("--csv", default="soak.csv")
    parser.add_argument("--png", default="soak.png")
    args = parser.parse_args()

    base = tempfile.mkdtemp(prefix="cxr-soak-")
    input_root = os.path.join(base, "in")
    output_root = os.path.join(base, "out")
    bulk_input = os.path.join(input_root, "bulk")
    os.makedirs(bulk_input)
    os.makedirs(output_root)
    image = os.path.join(input_root, "single.dcm")
    shutil.copyfile(args.image, image)
    make_bulk_folder(args.image, bulk_input, args.bulk_files)
    server = Server(args.cxrd, args.model, base, input_root, output_root,
                    workers=args.workers, threads=args.threads)
    bodies = {
        "save": ("/single_inference", {"input_image_path": image, "save_to_disk": True,
                                       "output_folder_path": os.path.join(output_root, "single")}),
        "base64": ("/single_inference", {"input_image_path": image, "save_to_disk": False}),
        # A fresh output folder per bulk request would grow the disk; one folder is rewritten.
        "bulk": ("/bulk_inference", {"input_folder_path": bulk_input,
                                     "output_folder_path": os.path.join(output_root, "bulk")}),
    }

    lock = threading.Lock()
    counts = {kind: 0 for kind in KINDS}
    results = {}  # (kind, Result) -> count: Warning is a 200 too (e.g. bulk's shared IDs)
    latencies = {kind: [] for kind in KINDS}
    failures = []
    stop = threading.Event()

    def client(index):
        turn = index
        while not stop.is_set():
            kind = KINDS[turn % len(KINDS)]
            turn += 1
            route, body = bodies[kind]
            start = time.perf_counter()
            try:
                status, payload = server.request("POST", route, body)
            except OSError as error:
                status, payload = None, str(error).encode()
            elapsed = time.perf_counter() - start
            with lock:
                if status != 200:
                    failures.append((kind, status, payload[:300]))
                    stop.set()
                    return
                counts[kind] += 1
                latencies[kind].append(elapsed)
                try:
                    result = json.loads(payload).get("Result")
                except ValueError:
                    result = "(not JSON)"
                results[(kind, result)] = results.get((kind, result), 0) + 1

    samples = []
    started = time.monotonic()

    def sample():
        row = {"elapsed_s": round(time.monotonic() - started, 1),
               "rss_mib": round(proc_status_mib(server.pid, "VmRSS"), 1),
               "fds": open_fds(server.pid)}
        with lock:
            row.update({kind: counts[kind] for kind in KINDS})
        samples.append(row)
        print("%8.0f %9.1f %5d %7d %7d %7d" % (row["elapsed_s"], row["rss_mib"], row["fds"],
                                              row["save"], row["base64"], row["bulk"]),
              flush=True)

    print("cxrd soak: %.1f min, concurrency %d, %d workers, bulk of %d files, model %s, %d CPUs,"
          " load %.1f" % (args.minutes, args.concurrency, args.workers, args.bulk_files,
                          os.path.basename(args.model), os.cpu_count(), os.getloadavg()[0]))
    print("%8s %9s %5s %7s %7s %7s" % ("time s", "RSS MiB", "fds", "save", "base64", "bulk"))
    sample()  # the idle server, before the first request
    threads = [threading.Thread(target=client, args=(i,), daemon=True)
               for i in range(args.concurrency)]
    for thread in threads:
        thread.start()
    deadline = started + args.minutes * 60.0
    next_sample = started + args.interval
    died = False
    while not stop.is_set() and time.monotonic() < deadline:
        stop.wait(max(0.0, min(next_sample, deadline) - time.monotonic()))
        if not server.alive():
            died = True
            break
        if time.monotonic() >= next_sample:
            sample()
            next_sample += args.interval
    stop.set()
    for thread in threads:
        thread.join(timeout=600)  # requests in flight finish; none is started after stop
    if server.alive():
        sample()  # after the last request: what the server keeps once idle
    else:
        died = True
    server.stop()

    with open(args.csv, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["elapsed_s", "rss_mib", "fds"] + list(KINDS))
        writer.writeheader()
        writer.writerows(samples)
    plot(samples, args.png, "cxrd serve soak: %d clients, save/base64/bulk mixed"
         % args.concurrency)

    print("requests (200):", ", ".join(
        "%s %d (p50 %.0f ms, max %.0f ms)" % (
            kind, counts[kind],
            1000 * sorted(latencies[kind])[len(latencies[kind]) // 2] if latencies[kind] else 0,
            1000 * max(latencies[kind], default=0)) for kind in KINDS))
    print("results:", ", ".join("%s %s %d" % (kind, result, n)
                                for (kind, result), n in sorted(results.items())))
    # Under load: without the idle first sample and the idle last one (none if the server died).
    busy = (samples[1:] if died else samples[1:-1]) or samples
    # Growth shows as a second half above the first (single samples swing with the requests
    # in flight at that instant; the means of each half do not).
    first, second = busy[:max(1, len(busy) // 2)], busy[len(busy) // 2:]
    end = "last sample" if died else "idle end"
    for field, unit in (("rss_mib", "RSS MiB"), ("fds", "open fds")):
        print("%s: idle start %g, under load min %g max %g, mean of first half %.1f, of second "
              "half %.1f, %s %g" % (unit, samples[0][field], min(s[field] for s in busy),
                                    max(s[field] for s in busy), mean(first, field),
                                    mean(second, field), end, samples[-1][field]))
    print("CSV %s, plot %s" % (os.path.abspath(args.csv), os.path.abspath(args.png)))
    if failures or died:
        for kind, status, payload in failures:
            print("FAILED: %s request got %s: %s" % (kind, status, payload), file=sys.stderr)
        if died:
            print("FAILED: the server died (exit status %s)" % server.process.returncode,
                  file=sys.stderr)
        print("server log kept in %s" % server.log_path, file=sys.stderr)
        return 1
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
