#!/usr/bin/python3
"""Parity of the shipped default model: cxrd's runtime (`cxrd model-run`) against the PyTorch
probabilities recorded by the training run on validation images (max difference <= 1e-4), and
its `gate_features` output against what tools/train/gate.py fitted the gate on (the mean and the
maximum of the feature map, computed by PyTorch through tools/train/onnx_torch.py).

usage: check_default_model.py CXRD MODEL.onnx REFERENCE.json DATA_DIR SCRATCH_DIR"""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tools", "train"))
import gate  # noqa: E402
import onnx_torch  # noqa: E402

TOLERANCE = 1e-4


def network_input(path, size):
    """As the training run and cxr.preprocess say: area-resize (stretch), pixel * 2/255 - 1."""
    with Image.open(path) as im:
        im = im.convert("L")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BOX)
        u8 = np.asarray(im, np.uint8)
    return (u8.astype(np.float32) * np.float32(2.0 / 255.0) + np.float32(-1.0)).reshape(
        1, 1, size, size)


def main(argv):
    cxrd, model, reference, data_dir, scratch = argv[1:6]
    ref = json.load(open(reference))
    size = ref["size"]
    os.makedirs(scratch, exist_ok=True)
    torch_model = onnx_torch.OnnxTorch(model)
    feature_map = gate.feature_tensor_name(torch_model)
    worst = worst_gate = 0.0
    for j, (f, expect) in enumerate(zip(ref["files"], ref["probabilities"])):
        inp = os.path.join(scratch, "input%d.npy" % j)
        out = os.path.join(scratch, "out%d" % j)
        os.makedirs(out, exist_ok=True)
        np.save(inp, network_input(os.path.join(data_dir, f), size))
        subprocess.run([cxrd, "model-run", model, inp, out], check=True)
        got = np.load(os.path.join(out, "probabilities.npy"))
        cam = np.load(os.path.join(out, "cam.npy"))
        if got.shape != (1, len(expect)) or cam.shape[:2] != (1, len(expect)):
            print("FAIL %s: shapes %s %s" % (f, got.shape, cam.shape))
            return 1
        diff = float(np.abs(got[0].astype(np.float64) - np.array(expect)).max())
        worst = max(worst, diff)
        pooled = gate.pooled_features(torch_model.run(np.load(inp), [feature_map])[feature_map])
        gate_got = np.load(os.path.join(out, "gate_features.npy"))
        if gate_got.shape != pooled.shape:
            print("FAIL %s: gate_features %s, expected %s" % (f, gate_got.shape, pooled.shape))
            return 1
        gate_diff = float(np.abs(gate_got.astype(np.float64) - pooled).max())
        worst_gate = max(worst_gate, gate_diff)
        print("%s max |cxrd - PyTorch| = %.3g, gate features %.3g" % (f, diff, gate_diff))
    print("%d images, max difference %.3g, gate features %.3g (tolerance %g)" % (
        len(ref["files"]), worst, worst_gate, TOLERANCE))
    return 0 if max(worst, worst_gate) <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
