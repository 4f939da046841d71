#!/usr/bin/python3
"""Parity of `cxrd model-run` with PyTorch on one exported contract model: same random-weight
model (tools/export/export_models.py), same input, compare `probabilities` and `cam`.

    /usr/bin/python3 tests/nn_reference/parity.py --cxrd build/cxrd --arch densenet121 \
        --size 224 --work build/tests/nn_reference/models

Passes when max |probabilities - torch| <= 1e-4 and max |cam - torch| <= 1e-3 * range(torch's
cam) (issue 4), and `cxrd model-info` reports the FLOPs and parameter count that
tools/export/onnx_stats.py computes from the ONNX graph. The model, input and PyTorch outputs are generated once into --work and reused
while tools/export/ is unchanged (a stamp holds the hash of the export scripts).
"""
import argparse
import hashlib
import os
import subprocess
import sys
import time

import numpy as np

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
EXPORT_DIR = os.path.join(HERE, "..", "..", "tools", "export")
sys.path.insert(0, EXPORT_DIR)
import onnx_stats  # noqa: E402
EXPORT_SCRIPT = os.path.join(EXPORT_DIR, "export_models.py")
PROBABILITY_TOLERANCE = 1e-4
CAM_RELATIVE_TOLERANCE = 1e-3


def export_stamp(arch, size, seed):
    digest = hashlib.sha256()
    for name in ("export_models.py", "contract.py", "../train/pretrained.py"):
        with open(os.path.join(EXPORT_DIR, name), "rb") as f:
            digest.update(f.read())
    digest.update(("%s %d %d" % (arch, size, seed)).encode())
    return digest.hexdigest()


def ensure_exported(work, arch, size, seed):
    """Paths (model, input, reference folder), exporting when missing or stale."""
    base = os.path.join(work, "%s-%d" % (arch, size))
    model, image, reference = base + ".onnx", base + "-input.npy", base + "-torch"
    stamp_path = base + ".stamp"
    stamp = export_stamp(arch, size, seed)
    outputs = [model, image, os.path.join(reference, "probabilities.npy"),
               os.path.join(reference, "cam.npy")]
    if os.path.exists(stamp_path) and all(os.path.exists(p) for p in outputs):
        with open(stamp_path) as f:
            if f.read().strip() == stamp:
                return model, image, reference
    os.makedirs(work, exist_ok=True)
    start = time.monotonic()
    # Two steps so the reference runs on the input file exactly as cxrd reads it.
    subprocess.run([sys.executable, EXPORT_SCRIPT, "--arch", arch, "--size", str(size),
                    "--seed", str(seed), "--out", model, "--write-input", image,
                    "--reference-input", image, "--reference-out", reference], check=True)
    print("exported %s in %.1f s" % (os.path.basename(model), time.monotonic() - start))
    with open(stamp_path, "w") as f:
        f.write(stamp + "\n")
    return model, image, reference


def check_model_info(cxrd, model):
    """cxrd model-info's flops and parameters against the Python count."""
    proc = subprocess.run([cxrd, "model-info", model], capture_output=True, text=True)
    if proc.returncode != 0:
        print("FAIL: cxrd model-info exited with %d: %s" % (proc.returncode, proc.stderr))
        return False
    reported = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(":")
        if key in ("flops", "parameters", "peak activation memory") and value.split():
            reported[key] = int(value.split()[0])
    expected = {"flops": onnx_stats.count_flops(model),
                "parameters": onnx_stats.count_parameters(model)}
    ok = True
    for key, value in expected.items():
        if reported.get(key) != value:
            print("FAIL: model-info %s %s, counted from the ONNX graph %d" % (
                key, reported.get(key), value))
            ok = False
    print("model-info: %.3f GFLOP, %d parameters (both as counted in Python), peak activation "
          "memory %.1f MiB" % (expected["flops"] / 1e9, expected["parameters"],
                               reported.get("peak activation memory", -1) / 2**20))
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cxrd", required=True)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", required=True, help="cache folder in the build tree")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    model, image, reference = ensure_exported(args.work, args.arch, args.size, args.seed)
    out = os.path.join(args.work, "%s-%d-cxrd" % (args.arch, args.size))
    os.makedirs(out, exist_ok=True)
    for name in ("probabilities.npy", "cam.npy"):
        if os.path.exists(os.path.join(out, name)):
            os.unlink(os.path.join(out, name))
    start = time.monotonic()
    proc = subprocess.run([args.cxrd, "model-run", model, image, out, "--threads",
                           str(args.threads)], capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr)
        print("FAIL: cxrd model-run exited with %d" % proc.returncode)
        return 1

    ok = True
    results = {}
    for name in ("probabilities", "cam"):
        want = np.load(os.path.join(reference, name + ".npy"))
        path = os.path.join(out, name + ".npy")
        if not os.path.exists(path):
            print("FAIL: cxrd wrote no %s.npy" % name)
            return 1
        got = np.load(path)
        if got.dtype != np.float32 or got.shape != want.shape:
            print("FAIL: %s is %s %s, PyTorch gives float32 %s" % (name, got.dtype,
                                                                   list(got.shape),
                                                                   list(want.shape)))
            return 1
        if not np.all(np.isfinite(got)):
            print("FAIL: %s has non-finite values" % name)
            return 1
        results[name] = (got, want, float(np.max(np.abs(got.astype(np.float64) - want))))

    got, want, diff = results["probabilities"]
    limit = PROBABILITY_TOLERANCE
    print("%s %dx%d probabilities: max |diff| %.3g (limit %.3g); torch range [%.4f, %.4f]" % (
        args.arch, args.size, args.size, diff, limit, want.min(), want.max()))
    ok &= diff <= limit
    got, want, diff = results["cam"]
    cam_range = float(want.max() - want.min())
    limit = CAM_RELATIVE_TOLERANCE * cam_range
    print("%s %dx%d cam %s: max |diff| %.3g (limit %.3g = 1e-3 x range %.4g)" % (
        args.arch, args.size, args.size, list(want.shape), diff, limit, cam_range))
    ok &= cam_range > 0 and diff <= limit
    print("cxrd model-run: %.2f s (load + one forward + writing)" % seconds)
    ok &= check_model_info(args.cxrd, model)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
