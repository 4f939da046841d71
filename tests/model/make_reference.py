#!/usr/bin/python3
"""Fixtures for test_model_predict: the test model (API label order and shuffled), models that
break the contract in one way each, two real radiographs as PGM at the network size, and
PyTorch's probabilities and class maps for them (the same seeded network, run by PyTorch on the
same preprocessed input), in reference.json.

Usage: make_reference.py TOOLS_EXPORT_DIR DATA_DIR OUT_DIR"""
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

TOOLS, DATA, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, TOOLS)
import contract  # noqa: E402
import test_model  # noqa: E402

SIZE = 256
IMAGES = ["images/nih_darkcovidnet/00000061_012.png",
          "images/covidrad_normal_256_via_lundis/Normal-10003.png"]


def export(name, *extra):
    path = os.path.join(OUT, name)
    subprocess.run(["/usr/bin/python3", os.path.join(TOOLS, "test_model.py"), "--out", path,
                    "--size", str(SIZE), *extra], check=True)
    return path


def edited(source, name, edit):
    proto = onnx.load(source)
    edit(proto)
    onnx.save(proto, os.path.join(OUT, name))


def set_meta(key, value):
    def edit(proto):
        for entry in proto.metadata_props:
            if entry.key == key:
                entry.value = value
    return edit


def drop_output(name):
    def edit(proto):
        keep = [o for o in proto.graph.output if o.name != name]
        del proto.graph.output[:]
        proto.graph.output.extend(keep)
    return edit


def main():
    os.makedirs(OUT, exist_ok=True)
    good = export("test_model.onnx")
    export("test_model_shuffled.onnx", "--labels-order", "shuffled", "--all-thresholds", "0.5")
    export("test_model_tb.onnx", "--all-thresholds", "1.01", "--threshold", "Tuberculosis=0",
           "--threshold", "Fibrosis=0")
    export("test_model_normal.onnx", "--all-thresholds", "1.01")
    edited(good, "broken_no_cam.onnx", drop_output("cam"))
    labels = list(contract.FINDINGS)
    labels[7] = "Nodule"
    edited(good, "broken_labels.onnx", set_meta("cxr.labels", json.dumps(labels)))
    edited(good, "broken_thresholds_json.onnx", set_meta("cxr.thresholds", "{\"Tuberculosis\": "))
    edited(good, "broken_preprocess.onnx", set_meta(
        "cxr.preprocess", contract.preprocess_json(224, 224, test_model.SCALE, test_model.OFFSET)))

    reference = {"images": []}
    api = test_model.build(SIZE, 5, contract.FINDINGS)
    shuffled_labels = contract.FINDINGS[5:] + contract.FINDINGS[:5]
    shuffled = test_model.build(SIZE, 5, shuffled_labels)
    for index, relative in enumerate(IMAGES):
        image = Image.open(os.path.join(DATA, "cxr", relative)).convert("L")
        assert image.size == (SIZE, SIZE), image.size
        pixels = np.asarray(image, dtype=np.uint8)
        pgm = os.path.join(OUT, f"image{index}.pgm")
        with open(pgm, "wb") as file:
            file.write(b"P5\n%d %d\n255\n" % (SIZE, SIZE) + pixels.tobytes())
        tensor = torch.from_numpy(pixels.astype(np.float32) * np.float32(test_model.SCALE)
                                  + np.float32(test_model.OFFSET))[None, None]
        entry = {"pgm": pgm}
        for key, model, order in (("api", api, contract.FINDINGS),
                                  ("shuffled", shuffled, shuffled_labels)):
            with torch.no_grad():
                probabilities, cam = model(tensor)
            by_name = {name: float(probabilities[0, i]) for i, name in enumerate(order)}
            cams = {name: cam[0, i].flatten().tolist() for i, name in enumerate(order)}
            entry[key] = {
                "probabilities": [by_name[name] for name in contract.FINDINGS],
                "cams": [cams[name] for name in contract.FINDINGS],
                "cam_size": [int(cam.shape[3]), int(cam.shape[2])],
            }
        reference["images"].append(entry)
    reference["thresholds"] = [test_model.DEFAULT_THRESHOLDS[n] for n in contract.FINDINGS]
    with open(os.path.join(OUT, "reference.json"), "w") as file:
        json.dump(reference, file)


if __name__ == "__main__":
    main()
