#!/usr/bin/python3
"""Runs the ONNX backend node tests shipped in Debian's libonnx-testdata through
`cxrd model-run` and compares every output with the expected output_*.pb.

    /usr/bin/python3 tests/nn_reference/node_tests.py --cxrd build/cxrd --work build/nodetests \
        [--data /usr/share/libonnx-testdata/data] [--suite node] [--only REGEX] [--verbose]

A case is selected when one of its nodes is an operator the runtime supports (SUPPORTED). It is
then either out of scope (a rule in classify() or an entry in OUT_OF_SCOPE, each with its
reason, printed with --verbose and listed in docs/nn_reference.md), a known gap of the runtime
(KNOWN_GAPS: in scope, failing today, reported on every run) or in scope. Exit status 1 when
any in-scope case fails, or when a name in OUT_OF_SCOPE / KNOWN_GAPS matches no case.

Before running, each model is rewritten as a CNN runtime sees models: graph inputs that feed a
weight slot (Conv W and B, BatchNormalization scale/bias/mean/var, Gemm B and C, MatMul B,
Reshape shape, Pad pads and value, Resize roi/scales/sizes, Clip min/max) become initializers
holding the test's input values; the data inputs stay graph inputs, fed as .npy files in order.
Graph inputs that duplicate initializers (IR < 4) are dropped.
"""
import argparse
import collections
import glob
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper

DEFAULT_DATA = "/usr/share/libonnx-testdata/data"
SUITES = ("node", "pytorch-converted", "pytorch-operator")

SUPPORTED = {
    "Conv", "BatchNormalization", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool",
    "Concat", "Add", "Mul", "Sigmoid", "HardSigmoid", "HardSwish", "Gemm", "MatMul", "Flatten",
    "Reshape", "Transpose", "Resize", "Pad", "Constant", "Identity",
}

# Input positions that hold parameters in a CNN (turned into initializers before running).
WEIGHT_SLOTS = {
    "Conv": {1, 2},
    "BatchNormalization": {1, 2, 3, 4},
    "Gemm": {1, 2},
    "MatMul": {1},
    "Reshape": {1},
    "Pad": {1, 2},
    "Resize": {1, 2, 3},
    "Clip": {1, 2},
}

# Operators whose data input must be an image batch [N,C,H,W] for this runtime.
IMAGE_OPS = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization",
             "Resize"}

# Cases of supported operators that the runtime deliberately does not handle. The runtime
# runs inference of 2-D image CNNs (DESIGN.md, issue 4); these need something else.
OUT_OF_SCOPE = {
    "test_batchnorm_epsilon_training_mode": "training mode (outputs updated running statistics)",
    "test_batchnorm_example_training_mode": "training mode (outputs updated running statistics)",
    "test_maxpool_with_argmax_2d_precomputed_pads": "second output Indices (int64)",
    "test_maxpool_with_argmax_2d_precomputed_strides": "second output Indices (int64)",
    "test_reshape_allowzero_reordered": "empty tensor (a zero dimension) with allowzero=1",
    "test_resize_downsample_scales_cubic": "cubic interpolation (runtime: bilinear, nearest)",
    "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside": "cubic interpolation",
    "test_resize_downsample_scales_cubic_align_corners": "cubic interpolation",
    "test_resize_downsample_sizes_cubic": "cubic interpolation",
    "test_resize_upsample_scales_cubic": "cubic interpolation",
    "test_resize_upsample_scales_cubic_A_n0p5_exclude_outside": "cubic interpolation",
    "test_resize_upsample_scales_cubic_align_corners": "cubic interpolation",
    "test_resize_upsample_scales_cubic_asymmetric": "cubic interpolation",
    "test_resize_upsample_sizes_cubic": "cubic interpolation",
    "test_resize_tf_crop_and_resize": "tf_crop_and_resize with a region of interest",
    "test_matmul_3d": "batched MatMul of two activations (CNN heads: MatMul by a 2-D weight)",
    "test_matmul_4d": "batched MatMul of two activations (CNN heads: MatMul by a 2-D weight)",
    "test_constant": "a graph without inputs (model-run runs a model on input files)",
    # pytorch-converted and pytorch-operator suites (opset 6 exports of old PyTorch):
    "test_BatchNorm2d_eval": "legacy opset-6 attribute is_test (exports use opset >= 11)",
    "test_BatchNorm2d_momentum_eval": "legacy opset-6 attribute is_test",
    "test_Linear": "legacy opset-6 Gemm attribute broadcast",
    "test_operator_addmm": "legacy opset-6 Gemm attribute broadcast",
    "test_operator_mm": "legacy opset-6 Gemm attribute broadcast",
    "test_ReflectionPad2d": "Pad mode reflect (CNN classifiers pad with zeros)",
    "test_ReplicationPad2d": "Pad mode edge (CNN classifiers pad with zeros)",
    "test_operator_pad": "Pad mode reflect (CNN classifiers pad with zeros)",
}

# In scope but failing with today's runtime: reported on every run, not counted as failures.
# Each entry names what is missing; remove it when the runtime gains the feature (a case listed
# here that passes is reported as "now passes" so the list can shrink).
KNOWN_GAPS = {
}


class Case:
    def __init__(self, suite, name, folder):
        self.suite = suite
        self.name = name
        self.folder = folder
        self.model = onnx.load(os.path.join(folder, "model.onnx"))
        self.ops = [node.op_type for node in self.model.graph.node]

    @property
    def operator(self):
        """The operator a case is about: its nodes' supported operators other than the
        Constant/Identity plumbing (so test_constant counts under Constant)."""
        if any(op not in SUPPORTED for op in self.ops):
            return "(composite, other operators)"
        main = list(dict.fromkeys(self.ops))
        core = [op for op in main if op not in ("Constant", "Identity")]
        return "+".join(core or main)

    def data_sets(self):
        return sorted(glob.glob(os.path.join(self.folder, "test_data_set_*")))


def load_tensor(path):
    proto = onnx.TensorProto()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    return proto


def runtime_inputs(model):
    initializers = {tensor.name for tensor in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in initializers]


def weight_inputs(model):
    """Names of graph inputs that feed a weight slot of some node."""
    names = {value.name for value in runtime_inputs(model)}
    found = set()
    for node in model.graph.node:
        for slot in WEIGHT_SLOTS.get(node.op_type, ()):
            if slot < len(node.input) and node.input[slot] in names:
                found.add(node.input[slot])
    return found


def elem_type_name(value):
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return kind or "undefined"
    return onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type)


def classify(case):
    """None when the case is in scope, otherwise the reason it is not."""
    if case.name in OUT_OF_SCOPE:
        return OUT_OF_SCOPE[case.name]
    others = sorted({op for op in case.ops if op not in SUPPORTED})
    if others:
        return "needs operators outside the runtime's set: " + ", ".join(others)
    weights = weight_inputs(case.model)
    for value in list(case.model.graph.input) + list(case.model.graph.output):
        kind = elem_type_name(value)
        if value.name in weights and kind in ("FLOAT", "INT64"):
            continue  # becomes an initializer (shape, pads, sizes are int64 by definition)
        if kind != "FLOAT":
            return "tensor type %s (runtime: float32 activations)" % kind.lower()
    ranks = {value.name: len(value.type.tensor_type.shape.dim) for value in case.model.graph.input}
    for node in case.model.graph.node:
        if node.op_type in IMAGE_OPS and node.input and node.input[0] in ranks:
            rank = ranks[node.input[0]]
            if rank != 4:
                return "%d-D data for %s (runtime: 2-D images, [N,C,H,W])" % (rank - 2,
                                                                              node.op_type)
    return None


def rewrite(case, inputs):
    """The model with weight inputs turned into initializers; inputs maps every runtime input
    name to its TensorProto. Returns (model, names of the inputs still fed at run time)."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    initializers = {tensor.name for tensor in model.graph.initializer}
    weights = weight_inputs(model)
    keep = []
    for value in list(model.graph.input):
        if value.name in initializers:
            model.graph.input.remove(value)
        elif value.name in weights:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(inputs[value.name])
            tensor.name = value.name
            model.graph.initializer.append(tensor)
            model.graph.input.remove(value)
        else:
            keep.append(value.name)
    return model, keep


def compare(name, got, want, rtol, atol):
    """None when got matches want, else a one-line description of the difference."""
    if got.shape != want.shape:
        return "%s: shape %s, expected %s" % (name, list(got.shape), list(want.shape))
    want = want.astype(np.float64)
    got = got.astype(np.float64)
    if not np.array_equal(np.isnan(got), np.isnan(want)):
        return "%s: NaN where the reference has none, or the reverse" % name
    diff = np.abs(np.nan_to_num(got) - np.nan_to_num(want))
    bound = atol + rtol * np.abs(np.nan_to_num(want))
    if np.any(diff > bound):
        worst = int(np.argmax(diff - bound))
        return "%s: max |diff| %.3g (at flat index %d: %.7g vs %.7g)" % (
            name, float(diff.max()), worst, got.ravel()[worst], want.ravel()[worst])
    return None


def run_case(case, cxrd, work, rtol, atol, threads, timeout):
    """None on success, else the failure's description."""
    folder = os.path.join(work, case.suite, case.name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for data_set in case.data_sets():
        runtime = runtime_inputs(case.model)
        tensors = {}
        for i, value in enumerate(runtime):
            path = os.path.join(data_set, "input_%d.pb" % i)
            if not os.path.exists(path):
                return "missing %s" % path
            tensors[value.name] = load_tensor(path)
        model, feed = rewrite(case, tensors)
        model_path = os.path.join(folder, "model.onnx")
        onnx.save(model, model_path)
        args = [cxrd, "model-run", model_path]
        for i, name in enumerate(feed):
            array = numpy_helper.to_array(tensors[name])
            if array.dtype != np.float32:
                return "input %s is %s, not float32" % (name, array.dtype)
            path = os.path.join(folder, "input_%d.npy" % i)
            np.save(path, np.ascontiguousarray(array))
            args.append(path)
        out = os.path.join(folder, "out-" + os.path.basename(data_set))
        os.makedirs(out)
        args += [out, "--threads", str(threads)]
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "cxrd model-run timed out after %d s" % timeout
        if proc.returncode != 0:
            lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            return "cxrd model-run exit %d: %s" % (proc.returncode, " | ".join(lines[-3:]))
        for i, value in enumerate(model.graph.output):
            want = numpy_helper.to_array(load_tensor(os.path.join(data_set,
                                                                  "output_%d.pb" % i)))
            path = os.path.join(out, value.name + ".npy")
            if not os.path.exists(path):
                return "no %s.npy written" % value.name
            got = np.load(path)
            if got.dtype != np.float32:
                return "%s.npy is %s, not float32" % (value.name, got.dtype)
            problem = compare(value.name, got, want, rtol, atol)
            if problem:
                return problem
    shutil.rmtree(folder, ignore_errors=True)
    return None


def collect(data, suites):
    cases = []
    for suite in suites:
        root = os.path.join(data, suite)
        if not os.path.isdir(root):
            raise SystemExit("node_tests: no test data in %s (install libonnx-testdata)" % root)
        for name in sorted(os.listdir(root)):
            folder = os.path.join(root, name)
            if not os.path.exists(os.path.join(folder, "model.onnx")):
                continue
            case = Case(suite, name, folder)
            if any(op in SUPPORTED for op in case.ops):
                cases.append(case)
    return cases


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cxrd", required=True, help="the cxrd binary")
    parser.add_argument("--work", required=True, help="scratch folder (inside the build tree)")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--suite", action="append", choices=SUITES,
                        help="test-data folder, repeatable (default: node)")
    parser.add_argument("--only", help="run only cases whose name matches this regex")
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--atol", type=float, default=1e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=60, help="seconds per model-run")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args(argv)
    suites = args.suite or ["node"]
    cases = collect(args.data, suites)
    names = set()
    for suite in SUITES:
        if os.path.isdir(os.path.join(args.data, suite)):
            names.update(os.listdir(os.path.join(args.data, suite)))
    stale = sorted(n for n in list(OUT_OF_SCOPE) + list(KNOWN_GAPS) if n not in names)
    if args.only:
        cases = [case for case in cases if re.search(args.only, case.name)]

    counts = collections.OrderedDict()
    failures, gaps, fixed = [], [], []
    for case in cases:
        row = counts.setdefault(case.operator, collections.Counter())
        reason = classify(case)
        if reason:
            row["out of scope"] += 1
            if args.verbose:
                print("SKIP %-60s %s" % (case.name, reason))
            continue
        problem = run_case(case, args.cxrd, args.work, args.rtol, args.atol, args.threads,
                           args.timeout)
        if case.name in KNOWN_GAPS:
            if problem:
                row["known gap"] += 1
                gaps.append((case.name, KNOWN_GAPS[case.name], problem))
            else:
                row["pass"] += 1
                fixed.append(case.name)
        elif problem:
            row["FAIL"] += 1
            failures.append((case.name, problem))
        else:
            row["pass"] += 1
        if args.verbose:
            print("%-4s %-60s %s" % ("FAIL" if problem else "ok", case.name, problem or ""))

    print("ONNX backend tests (%s), rtol %g atol %g, cxrd --threads %d" % (
        ", ".join(suites), args.rtol, args.atol, args.threads))
    print("%-28s %5s %5s %9s %12s" % ("operator", "pass", "FAIL", "known gap", "out of scope"))
    total = collections.Counter()
    for operator in sorted(counts):
        row = counts[operator]
        total.update(row)
        print("%-28s %5d %5d %9d %12d" % (operator, row["pass"], row["FAIL"], row["known gap"],
                                         row["out of scope"]))
    print("%-28s %5d %5d %9d %12d" % ("total", total["pass"], total["FAIL"], total["known gap"],
                                     total["out of scope"]))
    for name, what, problem in gaps:
        print("known gap %s (%s): %s" % (name, what, problem))
    for name in fixed:
        print("now passes, remove from KNOWN_GAPS: %s" % name)
    for name, problem in failures:
        print("FAIL %s: %s" % (name, problem))
    if stale and not args.only:
        print("names in OUT_OF_SCOPE/KNOWN_GAPS that match no case: " + ", ".join(stale))
        return 1
    if failures:
        return 1
    if total["pass"] == 0:
        print("no case ran")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
