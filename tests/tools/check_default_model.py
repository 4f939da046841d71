#!/usr/bin/python3
"""Parity of the shipped default model: cxrd's runtime (`cxrd model-run`) against the PyTorch
probabilities recorded by the training run on validation images (max difference <= 1e-4), and
its `gate_features` output against what tools/train/gate.py fitted the gate on (the mean and the
maximum of the feature map, computed by PyTorch through tools/train/onnx_torch.py; the same
tolerance, relative where a feature exceeds 1). Then the
whole path: `cxrd infer` on DICOM copies of the images (its own rendering, resize and, when
cxr.preprocess asks, histogram equalisation) against PyTorch on the training tools' inputs, and
the same with the model's cxr.preprocess set to each equalisation cxrd implements.

usage: check_default_model.py CXRD MODEL.onnx REFERENCE.json DATA_DIR SCRATCH_DIR"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tools", "train"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import data as D  # noqa: E402
import gate  # noqa: E402
import onnx_torch  # noqa: E402
from png_dicom import make_dicom  # noqa: E402

TOLERANCE = 1e-4
PIPELINE_IMAGES = 8


def pipeline_difference(cxrd, model, torch_model, preprocess, paths, scratch):
    """Largest |confidence from `cxrd infer` - PyTorch probability| over the images the gate
    accepts, and how many those are."""
    labels = json.loads(torch_model.metadata["cxr.labels"])
    folder = os.path.join(scratch, "pipeline")
    shutil.rmtree(folder, ignore_errors=True)  # no result of an earlier run may count
    os.makedirs(folder)
    dicoms = []
    for j, path in enumerate(paths):
        dicoms.append(os.path.join(folder, "p%d.dcm" % j))
        make_dicom(path, dicoms[-1], "P%d" % j, "Parity^Image", "A%d" % j, j)
    results = os.path.join(folder, "results")
    subprocess.run([cxrd, "infer", *dicoms, "--output", results, "--model", model], check=True,
                   capture_output=True)
    worst, compared = 0.0, 0
    for j, path in enumerate(paths):
        predictions = os.path.join(results, "P%d" % j, "P%d_predictions.json" % j)
        if not os.path.exists(predictions):  # refused by the input gate
            continue
        with open(predictions) as fh:
            got = {f["name"]: f["confidence"] for f in json.load(fh)["findings"]}
        expect = torch_model.run(D.model_input(path, preprocess)[None, None], ["probabilities"])
        expect = expect["probabilities"][0]
        worst = max(worst, max(abs(got[name] - float(expect[k]))
                               for k, name in enumerate(labels)))
        compared += 1
    return worst, compared


def equalized_pipeline_difference(cxrd, model, paths, scratch):
    """The same through an equalised input: the model served with cxr.preprocess "equalize"
    set ("histogram", then "clahe"), on copies of the images enlarged to 1536 pixels (six times
    a 256-pixel network's side, so area averages of 36 pixels land on exact halves, where float
    sums round either way). Returns {mode: (largest difference, images compared)}."""
    import onnx
    from PIL import Image
    folder = os.path.join(scratch, "equalized")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    enlarged = []
    for j, path in enumerate(paths):
        enlarged.append(os.path.join(folder, "e%d.png" % j))
        with Image.open(path) as im:
            im.convert("L").resize((1536, 1536), Image.BILINEAR).save(enlarged[-1])
    found = {}
    for mode in ("histogram", "clahe"):
        proto = onnx.load(model)
        entry = next(p for p in proto.metadata_props if p.key == "cxr.preprocess")
        preprocess = dict(json.loads(entry.value), equalize=mode)
        if mode == "clahe":
            preprocess.update(clahe_tiles=D.CLAHE_TILES, clahe_clip=D.CLAHE_CLIP)
        entry.value = json.dumps(preprocess)
        served = os.path.join(folder, "model-%s.onnx" % mode)
        onnx.save(proto, served)
        found[mode] = pipeline_difference(cxrd, served, onnx_torch.OnnxTorch(served), preprocess,
                                          enlarged, os.path.join(folder, mode))
    return found


def main(argv):
    cxrd, model, reference, data_dir, scratch = argv[1:6]
    ref = json.load(open(reference))
    os.makedirs(scratch, exist_ok=True)
    torch_model = onnx_torch.OnnxTorch(model)
    preprocess = json.loads(torch_model.metadata["cxr.preprocess"])
    feature_map = gate.feature_tensor_name(torch_model)
    worst = worst_gate = 0.0
    for j, (f, expect) in enumerate(zip(ref["files"], ref["probabilities"])):
        inp = os.path.join(scratch, "input%d.npy" % j)
        out = os.path.join(scratch, "out%d" % j)
        os.makedirs(out, exist_ok=True)
        np.save(inp, D.model_input(os.path.join(data_dir, f), preprocess)[None, None])
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
        # relative above 1: the features are ReLU6 outputs up to 6, and float32 rounding over
        # the network's 50-odd layers grows with them (2.3: 1.02e-4 at a feature of 5.87)
        gate_diff = float((np.abs(gate_got.astype(np.float64) - pooled) /
                           np.maximum(1.0, np.abs(pooled))).max())
        worst_gate = max(worst_gate, gate_diff)
        print("%s max |cxrd - PyTorch| = %.3g, gate features %.3g (relative above 1)" % (
            f, diff, gate_diff))
    print("%d images, max difference %.3g, gate features %.3g relative above 1 (tolerance %g)" % (
        len(ref["files"]), worst, worst_gate, TOLERANCE))
    paths = [os.path.join(data_dir, f) for f in ref["files"][:PIPELINE_IMAGES]]
    worst_pipeline, compared = pipeline_difference(cxrd, model, torch_model, preprocess, paths,
                                                   scratch)
    print("cxrd infer on %d DICOM copies (%d accepted): max |confidence - PyTorch| = %.3g "
          "(tolerance %g)" % (len(paths), compared, worst_pipeline, TOLERANCE))
    if compared < len(paths) // 2:
        print("FAIL: too few images accepted to compare the pipeline")
        return 1
    for mode, (difference, accepted) in equalized_pipeline_difference(cxrd, model, paths,
                                                                       scratch).items():
        print("served with \"equalize\": \"%s\", on %d copies enlarged to 1536 px (%d accepted): "
              "max |confidence - PyTorch| = %.3g" % (mode, len(paths), accepted, difference))
        if accepted < len(paths) // 2:
            print("FAIL: too few images accepted to compare the equalised pipeline")
            return 1
        worst_pipeline = max(worst_pipeline, difference)
    return 0 if max(worst, worst_gate, worst_pipeline) <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
