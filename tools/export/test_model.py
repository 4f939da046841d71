#!/usr/bin/python3
"""Writes a small ONNX model that meets the cxrd model contract (tools/export/contract.py) but
has untrained, seeded weights: tests and development use it until the trained default model
exists, and tests use it to check the runtime against PyTorch. Its outputs mean nothing.

Network (for --size 256): 4 x (Conv3x3 + BatchNorm + ReLU), the first three followed by
MaxPool 2x2, the first conv with stride 2 -> features [1,32,16,16]; the contract head gives
probabilities [1,11] and cam [1,11,16,16]. BatchNorm running statistics are estimated on
seeded noise images so activations stay in a sane range; the exporter folds BatchNorm into
the convolutions. Preprocessing: 8-bit grey * 2/255 - 1.

Default thresholds (documented in docs/report.md): chosen once near the median probability
that this seeded network (seed 5, size 256) gives on real radiographs of ../shared/data for
Tuberculosis (0.2), Cardiomegaly (0.12), Pleural Effusion (0.87) and Consolidation (0.8), so
the overall result varies with the image: on 300 random images of that folder 45% came out
TB Presumptive, 42% Abnormal and 13% Normal. The other findings use 0.995 (practically never
present). --threshold NAME=VALUE overrides one finding and
--all-thresholds VALUE all of them before the overrides; a threshold of 0 makes a finding
always present and 1.01 never, which is how tests pin the overall result (Normal, Abnormal,
TB Presumptive) regardless of the image.

Usage: /usr/bin/python3 tools/export/test_model.py --out PATH [--size N] [--seed S]
           [--labels-order api|shuffled] [--all-thresholds V] [--threshold NAME=V ...]
           [--model-version STR]
"""
import argparse
import json
import os
import sys

import torch
from torch import nn

sys.dont_write_bytecode = True  # never leave __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contract  # noqa: E402

DEFAULT_THRESHOLDS = {name: 0.995 for name in contract.FINDINGS}
DEFAULT_THRESHOLDS.update({"Tuberculosis": 0.2, "Cardiomegaly": 0.12, "Pleural Effusion": 0.87,
                           "Consolidation": 0.8})

# Preprocessing: 8-bit grey to [-1, 1].
SCALE = 2.0 / 255.0
OFFSET = -1.0


def conv_block(in_channels, out_channels, stride, pool):
    layers = [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
              nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return layers


def build(size, seed, labels):
    torch.manual_seed(seed)
    backbone = nn.Sequential(*conv_block(1, 8, 2, True), *conv_block(8, 16, 1, True),
                             *conv_block(16, 32, 1, True), *conv_block(32, 32, 1, False))
    model = contract.ContractModel(backbone, 32, labels)
    with torch.no_grad():
        # Non-trivial head: per-class bias and Platt terms so every output path is exercised.
        model.classifier.weight.mul_(4.0)
        model.bias.copy_(torch.linspace(-0.2, 0.2, len(labels)))
        model.platt_scale.copy_(torch.linspace(0.8, 1.2, len(labels)))
        model.platt_offset.copy_(torch.linspace(0.05, -0.05, len(labels)))
    # BatchNorm statistics from seeded smooth noise in the preprocessed range.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(4):
            noise = torch.rand(8, 1, size // 8, size // 8)
            batch = nn.functional.interpolate(noise, size=(size, size), mode="bilinear",
                                              align_corners=False) * 2.0 - 1.0
            model.backbone(batch)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                # Random affine so BatchNorm is not the identity after normalisation.
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
    model.eval()
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--size", type=int, default=256, help="input height and width (x16)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--labels-order", choices=["api", "shuffled"], default="api",
                        help="order of cxr.labels and of the output channels")
    parser.add_argument("--all-thresholds", type=float, default=None)
    parser.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--model-version", default="test-untrained")
    args = parser.parse_args()
    if args.size < 16 or args.size % 16:
        parser.error("--size must be a positive multiple of 16")

    thresholds = dict(DEFAULT_THRESHOLDS)
    if args.all_thresholds is not None:
        thresholds = {name: args.all_thresholds for name in contract.FINDINGS}
    for item in args.threshold:
        name, _, value = item.partition("=")
        if name not in thresholds or not value:
            parser.error(f"--threshold {item!r}: expected one of the 11 findings =VALUE")
        thresholds[name] = float(value)

    labels = list(contract.FINDINGS)
    if args.labels_order == "shuffled":
        labels = labels[5:] + labels[:5]
    model = build(args.size, args.seed, labels)
    card = ("Test model with untrained, seeded weights (tools/export/test_model.py). "
            "Its outputs are meaningless; for software tests only. Not a medical device.")
    metadata = contract.default_metadata(
        labels, thresholds, contract.preprocess_json(args.size, args.size, SCALE, OFFSET),
        args.model_version, card)
    directory = os.path.dirname(os.path.abspath(args.out))
    temp = os.path.join(directory, f".{os.path.basename(args.out)}.{os.getpid()}.tmp")
    try:
        contract.export_onnx(model, temp, args.size, args.size, metadata)
        os.replace(temp, args.out)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


if __name__ == "__main__":
    main()
