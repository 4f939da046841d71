#!/usr/bin/python3
"""End-to-end benchmark of POST /single_inference on the real `cxrd serve`: latency p50/p95/p99
and requests/s at concurrency 1, 2, 4 and 8 for a 2048x2048 chest radiograph (make_image.py),
both save modes, and the server's peak RSS (VmHWM). Prints a table; not a test.

Usage: bench_api.py --cxrd BUILD/src/cxrd --image IMAGE.dcm --model MODEL.onnx
           [--requests N] [--levels 1,2,4,8] [--workers W] [--mode save|base64|both] [--dicom]
"""
import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from cxrd_serve import Server, cpu_seconds, proc_status_mib  # noqa: E402


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cxrd", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--levels", default="1,2,4,8")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="[model] threads")
    parser.add_argument("--mode", default="both")
    parser.add_argument("--dicom", action="store_true",
                        help='save mode with "dicom_outputs": true (as the Orthanc plugin runs)')
    args = parser.parse_args()

    base = tempfile.mkdtemp(prefix="cxr-bench-api-")
    input_root = os.path.join(base, "in")
    output_root = os.path.join(base, "out")
    os.makedirs(input_root)
    os.makedirs(output_root)
    image = os.path.join(input_root, "bench.dcm")
    shutil.copyfile(args.image, image)
    server = Server(args.cxrd, args.model, base, input_root, output_root,
                    workers=args.workers, threads=args.threads)

    def one(save):
        body = {"input_image_path": image, "save_to_disk": save}
        if save:
            body["output_folder_path"] = output_root
            if args.dicom:
                body["dicom_outputs"] = True
        start = time.perf_counter()
        status, payload = server.request("POST", "/single_inference", body)
        elapsed = time.perf_counter() - start
        if status != 200:
            raise SystemExit("HTTP %d: %s" % (status, payload[:300]))
        return elapsed

    modes = {"save": [True], "base64": [False], "both": [True, False]}[args.mode]
    print("cxrd /single_inference, 2048x2048 image, %d workers, model %s, %d CPUs, load %.1f"
          % (args.workers, os.path.basename(args.model), os.cpu_count(), os.getloadavg()[0]))
    print("%-7s %5s %9s %9s %9s %9s %8s %12s" % ("mode", "conc", "p50 ms", "p95 ms", "p99 ms",
                                                 "mean ms", "req/s", "cpu ms/req"))
    for save in modes:
        one(save)  # warm-up
        for level in [int(x) for x in args.levels.split(",")]:
            latencies = []
            lock = threading.Lock()
            per_client = max(1, args.requests // level)

            def client():
                for _ in range(per_client):
                    elapsed = one(save)
                    with lock:
                        latencies.append(elapsed)

            threads = [threading.Thread(target=client) for _ in range(level)]
            cpu_start = cpu_seconds(server.pid)
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - start
            cpu = cpu_seconds(server.pid) - cpu_start
            print("%-7s %5d %9.1f %9.1f %9.1f %9.1f %8.2f %12.1f" % (
                "save" if save else "base64", level, percentile(latencies, 0.5) * 1000,
                percentile(latencies, 0.95) * 1000, percentile(latencies, 0.99) * 1000,
                sum(latencies) / len(latencies) * 1000, len(latencies) / wall,
                cpu / len(latencies) * 1000))
    _, metrics = server.request("GET", "/metrics")
    metrics = metrics.decode()
    print("peak RSS of cxrd serve: %.1f MiB" % proc_status_mib(server.pid, "VmHWM"))
    print("mean per stage (ms):", " ".join(
        "%s=%.1f" % (stage, 1000 * float(total) / max(1, float(count)))
        for stage, total, count in stage_means(metrics)))
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


def stage_means(metrics):
    sums, counts = {}, {}
    for line in metrics.splitlines():
        for prefix, target in (("cxrd_stage_duration_seconds_sum{stage=\"", sums),
                               ("cxrd_stage_duration_seconds_count{stage=\"", counts)):
            if line.startswith(prefix):
                stage = line[len(prefix):].split("\"")[0]
                target[stage] = line.split()[-1]
    return [(stage, sums[stage], counts.get(stage, "1")) for stage in sums]


if __name__ == "__main__":
    main()
