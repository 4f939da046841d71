#!/usr/bin/python3
"""bench/nn: median forward-pass time of cxrd (bench_nn, libcxr on XNNPACK) and of PyTorch on
the same exported models, with the same thread count, in one run; the ratio; cxrd's GFLOP/s;
the peak RSS of both processes.

    nice -n 10 /usr/bin/python3 bench/nn/run.py --bench-nn build/bench/nn/bench_nn \
        --work build/bench/nn/models [--threads 2] [--runs 10] [--models densenet121:224,...]

The runs are split into --rounds rounds that alternate cxrd and PyTorch (fresh processes each
round), so a change in machine load (a shared machine) hits both sides alike; the median is
over all runs. Each process reports its own peak RSS (VmHWM; the largest over the rounds is
shown). The PyTorch process loads the saved state dict, so its peak is model + inference, not
the export. FLOPs are counted from the ONNX graph: 2 x the multiply-adds of Conv, Gemm and
MatMul (elementwise work is ignored).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # never leave __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "export"))

DEFAULT_MODELS = ("densenet121:224,densenet121:512,resnet50:224,mobilenet_v3_large:224,"
                  "efficientnet_b0:224")
SEED = 0


def parse_pairs(text):
    """key=value pairs of every line; times_ms becomes a list of floats."""
    pairs = dict(item.split("=", 1) for item in text.split() if "=" in item)
    if "times_ms" in pairs:
        pairs["times_ms"] = [float(t) for t in pairs["times_ms"].split(",") if t]
    return pairs


def export(work, arch, size):
    """ONNX model and PyTorch state dict of the same random-weight model, cached by name."""
    base = os.path.join(work, "%s-%d" % (arch, size))
    if not (os.path.exists(base + ".onnx") and os.path.exists(base + ".pt")):
        subprocess.run([sys.executable, os.path.abspath(__file__), "--export-worker",
                        "--arch", arch, "--size", str(size), "--work", work], check=True)
    return base + ".onnx", base + ".pt"


def export_worker(args):
    import torch
    import export_models

    os.makedirs(args.work, exist_ok=True)
    base = os.path.join(args.work, "%s-%d" % (args.arch, args.size))
    model = export_models.export(args.arch, args.size, SEED, base + ".onnx")
    export_models.save_atomic(base + ".pt", lambda tmp: torch.save(model.state_dict(), tmp))
    return 0


def peak_rss_kb():
    """VmHWM of this process: its own peak resident set (ru_maxrss would include the parent's,
    which Linux carries across fork and execve)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def torch_worker(args):
    """Times PyTorch on the saved model in this (fresh) process; prints key=value figures."""
    import torch
    import contract
    import export_models

    torch.set_num_threads(args.threads)
    backbone, channels = export_models.build_backbone(args.arch)
    model = contract.ContractModel(backbone, channels)
    model.load_state_dict(torch.load(args.state))
    model.eval()
    image = torch.from_numpy(export_models.sample_input(args.size, 1))
    times = []
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(image)
        for _ in range(args.runs):
            start = time.perf_counter()
            model(image)
            times.append((time.perf_counter() - start) * 1e3)
    print("times_ms=" + ",".join("%.3f" % t for t in times))
    print("threads=%d runs=%d median_ms=%.3f min_ms=%.3f peak_rss_kb=%d" % (
        torch.get_num_threads(), args.runs, statistics.median(times), min(times),
        peak_rss_kb()))
    return 0


def run_cxrd(args, onnx_path, runs):
    proc = subprocess.run([args.bench_nn, onnx_path, "--threads", str(args.threads), "--runs",
                           str(runs), "--warmup", str(args.warmup)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit("bench_nn failed on %s: %s" % (onnx_path, proc.stderr.strip()))
    return parse_pairs(proc.stdout)


def run_torch(args, arch, size, state, runs):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker",
                           "--arch", arch, "--size", str(size), "--state", state,
                           "--threads", str(args.threads), "--runs", str(runs),
                           "--warmup", str(args.warmup)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit("PyTorch worker failed: %s" % proc.stderr.strip()[-2000:])
    return parse_pairs(proc.stdout)


def run_rounds(args, arch, size, onnx_path, state):
    """Alternates cxrd and PyTorch for args.rounds rounds; returns (cxrd, torch) with all
    pass times and the largest peak RSS of each side."""
    sides = {"cxrd": {"times_ms": [], "peak_rss_kb": 0}, "torch": {"times_ms": [],
                                                                   "peak_rss_kb": 0}}
    rounds = max(1, min(args.rounds, args.runs))
    for r in range(rounds):
        runs = args.runs // rounds + (1 if r < args.runs % rounds else 0)
        for name, result in (("cxrd", run_cxrd(args, onnx_path, runs)),
                             ("torch", run_torch(args, arch, size, state, runs))):
            sides[name]["times_ms"] += result["times_ms"]
            sides[name]["peak_rss_kb"] = max(sides[name]["peak_rss_kb"],
                                             int(result["peak_rss_kb"]))
    return sides["cxrd"], sides["torch"]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench-nn", help="the bench_nn binary")
    parser.add_argument("--cxrd", help="unused; kept so the CMake target can pass it")
    parser.add_argument("--work", help="model cache folder (required)")
    parser.add_argument("--models", default=DEFAULT_MODELS, help="arch:size,...")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2, help="untimed passes per process")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternate cxrd and PyTorch this many times (runs split)")
    parser.add_argument("--export-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--arch", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_worker:
        return export_worker(args)
    if args.torch_worker:
        return torch_worker(args)
    if not args.bench_nn or not args.work:
        parser.error("--bench-nn and --work are required")

    import onnx_stats
    import torch
    print("bench/nn on %s, %d online CPUs, %d threads each side; torch %s; %d timed runs "
          "in %d alternating rounds, %d warm-up per process; load average %.1f" % (
              cpu_name(), os.cpu_count() or 0, args.threads, torch.__version__, args.runs,
              args.rounds, args.warmup, os.getloadavg()[0]))
    header = "%-20s %5s %10s %10s %8s %7s %9s %9s %10s %10s" % (
        "model", "size", "cxrd ms", "torch ms", "speedup", "GFLOP", "cxrd GF/s", "torch GF/s",
        "cxrd RSS", "torch RSS")
    print(header)
    goal_ok = None
    rss_ok = True
    for entry in args.models.split(","):
        arch, size = entry.split(":")
        size = int(size)
        onnx_path, state = export(args.work, arch, size)
        flops = onnx_stats.count_flops(onnx_path)
        cxrd, reference = run_rounds(args, arch, size, onnx_path, state)
        cxrd_ms = statistics.median(cxrd["times_ms"])
        torch_ms = statistics.median(reference["times_ms"])
        speedup = torch_ms / cxrd_ms
        print("%-20s %5d %10.1f %10.1f %7.2fx %7.2f %9.1f %9.1f %7.0f MB %7.0f MB" % (
            arch, size, cxrd_ms, torch_ms, speedup, flops / 1e9, flops / cxrd_ms / 1e6,
            flops / torch_ms / 1e6, int(cxrd["peak_rss_kb"]) / 1024.0,
            int(reference["peak_rss_kb"]) / 1024.0))
        sys.stdout.flush()
        if arch == "densenet121":
            goal_ok = (goal_ok is not False) and speedup >= 3.0
        rss_ok &= int(cxrd["peak_rss_kb"]) < int(reference["peak_rss_kb"])
    print("goal (DenseNet-121 >= 3x faster than PyTorch at every size run): %s"
          % ({None: "not measured", True: "met", False: "NOT met"}[goal_ok]))
    print("goal (cxrd peak RSS below PyTorch's for every model): %s"
          % ("met" if rss_ok else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
