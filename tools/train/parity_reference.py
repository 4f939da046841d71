"""The PyTorch reference of tests/tools/check_default_model.py for a contract model: its
probabilities (run by tools/train/onnx_torch.py) on the images the reference lists, from the
inputs cxrd builds (tools/train/data.py network_input). The training run
writes the same file for the model it trains; this rewrites it for a model changed afterwards,
or when the tools' preprocessing is corrected.

    /usr/bin/python3 tools/train/parity_reference.py models/cxr-default.onnx \\
        tests/tools/default_model_reference.json [--data ../shared/data/cxr]
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data as D  # noqa: E402
import onnx_torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("reference", help="rewritten in place; its file list is kept")
    ap.add_argument("--data", default="../shared/data/cxr")
    args = ap.parse_args()
    model = onnx_torch.OnnxTorch(args.model)
    preprocess = json.loads(model.metadata["cxr.preprocess"])
    with open(args.reference) as fh:
        files = json.load(fh)["files"]
    x = np.stack([D.model_input(os.path.join(args.data, f), preprocess) for f in files])[:, None]
    probabilities = model.run(x, ["probabilities"])["probabilities"]
    reference = {"model_version": model.metadata["cxr.model_version"], "size": preprocess["width"],
                 "files": files,
                 "probabilities": [[float(v) for v in row] for row in probabilities]}
    with open(args.reference + ".tmp", "w") as fh:
        json.dump(reference, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(args.reference + ".tmp", args.reference)


if __name__ == "__main__":
    main()
