#!/usr/bin/python3
"""Parity of the shipped default model: cxrd's runtime (`cxrd model-run`) against the PyTorch
probabilities recorded by the training run on validation images (max difference <= 1e-4).

usage: check_default_model.py CXRD MODEL.onnx REFERENCE.json DATA_DIR SCRATCH_DIR"""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

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
    worst = 0.0
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
        print("%s max |cxrd - PyTorch| = %.3g" % (f, diff))
    print("%d images, max difference %.3g (tolerance %g)" % (len(ref["files"]), worst,
                                                             TOLERANCE))
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
