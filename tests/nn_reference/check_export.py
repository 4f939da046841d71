#!/usr/bin/python3
"""Checks tools/export/export_models.py on its own: the ONNX file it writes meets the model
contract (input image [1,1,S,S], outputs probabilities [1,11] and cam [1,11,h,w], the cxr.*
metadata), uses only operators of the runtime's set, is reproducible for a seed, and PyTorch's
reference outputs are well-conditioned (probabilities not saturated, so parity tests that use
them are sensitive).

    /usr/bin/python3 tests/nn_reference/check_export.py --arch mobilenet_v3_large --size 224 \
        --work build/tests/nn_reference/export
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnx

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
EXPORT_DIR = os.path.join(HERE, "..", "..", "tools", "export")
sys.path.insert(0, EXPORT_DIR)
sys.path.insert(0, HERE)
import contract  # noqa: E402
from node_tests import SUPPORTED  # noqa: E402


def dims(value):
    return [d.dim_value for d in value.type.tensor_type.shape.dim]


def export(work, arch, size, seed):
    out = os.path.join(work, "%s-%d.onnx" % (arch, size))
    image = os.path.join(work, "%s-%d-input.npy" % (arch, size))
    reference = os.path.join(work, "%s-%d-torch" % (arch, size))
    subprocess.run([sys.executable, os.path.join(EXPORT_DIR, "export_models.py"), "--arch", arch,
                    "--size", str(size), "--seed", str(seed), "--out", out, "--write-input",
                    image, "--reference-input", image, "--reference-out", reference],
                   check=True)
    return out, reference


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--work", required=True)
    args = parser.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    problems = []

    path, reference = export(args.work, args.arch, args.size, 0)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    k = len(contract.FINDINGS)
    inputs = [(v.name, dims(v)) for v in model.graph.input]
    if inputs != [("image", [1, 1, args.size, args.size])]:
        problems.append("inputs %s" % inputs)
    outputs = {v.name: dims(v) for v in model.graph.output}
    if sorted(outputs) != ["cam", "probabilities"]:
        problems.append("outputs %s" % sorted(outputs))
    elif outputs["probabilities"] != [1, k] or len(outputs["cam"]) != 4 or \
            outputs["cam"][:2] != [1, k]:
        problems.append("output shapes %s" % outputs)
    meta = {p.key: p.value for p in model.metadata_props}
    for key in ("cxr.labels", "cxr.thresholds", "cxr.preprocess", "cxr.model_version",
                "cxr.model_card"):
        if key not in meta:
            problems.append("metadata %s missing" % key)
    if "cxr.labels" in meta and json.loads(meta["cxr.labels"]) != contract.FINDINGS:
        problems.append("cxr.labels %s" % meta["cxr.labels"])
    if "cxr.preprocess" in meta:
        preprocess = json.loads(meta["cxr.preprocess"])
        if (preprocess.get("height"), preprocess.get("width")) != (args.size, args.size):
            problems.append("cxr.preprocess %s" % meta["cxr.preprocess"])
    others = sorted({n.op_type for n in model.graph.node} - SUPPORTED)
    if others:
        problems.append("operators outside the runtime's set: %s" % others)

    probabilities = np.load(os.path.join(reference, "probabilities.npy"))
    cam = np.load(os.path.join(reference, "cam.npy"))
    if probabilities.shape != (1, k) or cam.shape != tuple(outputs.get("cam", [])):
        problems.append("reference shapes %s %s" % (probabilities.shape, cam.shape))
    if not (0.02 < probabilities.min() and probabilities.max() < 0.98):
        problems.append("reference probabilities saturated: %s" % probabilities)
    if not np.ptp(cam) > 0:
        problems.append("reference cam is constant")

    # Same seed, same weights (tests and benchmarks rely on it); another seed, other weights.
    # Checked in process at a small size: the ONNX export itself is a pure function of them.
    import export_models
    first = export_models.build_model(args.arch, 64, 0).state_dict()
    second = export_models.build_model(args.arch, 64, 0).state_dict()
    third = export_models.build_model(args.arch, 64, 1).state_dict()
    if any(not bool((first[name] == second[name]).all()) for name in first):
        problems.append("seed 0 built twice gives different weights")
    if all(bool((first[name] == third[name]).all()) for name in first):
        problems.append("seeds 0 and 1 give the same weights")

    print("%s %d: ops %s; probabilities [%.3f, %.3f]; cam %s range %.4g" % (
        args.arch, args.size, sorted({n.op_type for n in model.graph.node}),
        probabilities.min(), probabilities.max(), list(cam.shape), np.ptp(cam)))
    for problem in problems:
        print("FAIL: " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
