#!/usr/bin/python3
"""Checks that tools/export/test_model.py writes models that meet the cxrd model contract
(DESIGN.md), independently of the C loader: ONNX checker, input/output names and shapes,
metadata keys and JSON, threshold overrides, and probabilities/cam consistency computed by
PyTorch from the same seed (probabilities = sigmoid((mean(cam) + bias) * a + c)).

Usage: check_test_model.py TOOLS_EXPORT_DIR SCRATCH_DIR"""
import json
import os
import sys

import numpy as np
import onnx
import torch

sys.dont_write_bytecode = True  # never leave __pycache__ in the source tree
sys.path.insert(0, sys.argv[1])
import contract  # noqa: E402
import test_model  # noqa: E402


def shape(value):
    return [d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in value.type.tensor_type.shape.dim]


def main():
    scratch = sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    tool = os.path.join(sys.argv[1], "test_model.py")
    path = os.path.join(scratch, "check_default.onnx")
    rc = os.system(f"/usr/bin/python3 {tool} --out {path} --size 128")
    assert rc == 0, rc
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == ["image"]
    assert shape(proto.graph.input[0]) == [1, 1, 128, 128], shape(proto.graph.input[0])
    outputs = {o.name: shape(o) for o in proto.graph.output}
    assert outputs == {"probabilities": [1, 11], "cam": [1, 11, 8, 8]}, outputs
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["cxr.labels"]) == contract.FINDINGS
    thresholds = json.loads(meta["cxr.thresholds"])
    assert thresholds == test_model.DEFAULT_THRESHOLDS, thresholds
    pre = json.loads(meta["cxr.preprocess"])
    assert pre["height"] == 128 and pre["width"] == 128, pre
    assert abs(pre["scale"] * 255 + pre["offset"] - 1.0) < 1e-9 and pre["offset"] == -1.0
    assert meta["cxr.model_version"] == "test-untrained"
    assert "Not a medical device" in meta["cxr.model_card"]

    # Overrides and shuffled label order.
    path2 = os.path.join(scratch, "check_override.onnx")
    rc = os.system(f"/usr/bin/python3 {tool} --out {path2} --size 64 --labels-order shuffled "
                   f"--all-thresholds 1.01 --threshold 'Tuberculosis=0' --model-version v9")
    assert rc == 0, rc
    meta2 = {p.key: p.value for p in onnx.load(path2).metadata_props}
    labels2 = json.loads(meta2["cxr.labels"])
    assert sorted(labels2) == sorted(contract.FINDINGS) and labels2 != contract.FINDINGS
    t2 = json.loads(meta2["cxr.thresholds"])
    assert t2["Tuberculosis"] == 0.0 and all(t2[n] == 1.01 for n in contract.FINDINGS[1:])
    assert meta2["cxr.model_version"] == "v9"
    bad = os.system(f"/usr/bin/python3 {tool} --out {path2} --threshold Nodule=0.3 2>/dev/null")
    assert bad != 0

    # The head computes what the contract says, on a seeded image.
    model = test_model.build(128, 5, contract.FINDINGS)
    image = torch.rand(1, 1, 128, 128) * 2 - 1
    with torch.no_grad():
        probabilities, cam = model(image)
        logits = cam.mean(dim=(2, 3)) + model.bias
        expected = torch.sigmoid(logits * model.platt_scale + model.platt_offset)
    assert np.allclose(probabilities.numpy(), expected.numpy(), atol=1e-6)
    spread = probabilities.max() - probabilities.min()
    assert spread > 0.05, f"outputs should differ between findings, spread {spread}"
    print("test model meets the contract")


if __name__ == "__main__":
    main()
