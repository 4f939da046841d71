#!/usr/bin/python3
"""A first look, not a recipe: do the frozen nsfwjs MobileNetV2 features separate TB from normal
within one machine? Cross-validated logistic regression within `da` and within `db`
(../shared/data/cxr-tb-samesource) on the globally pooled features of tools/train/pretrained.py
(224x224, output stride 32; at the end and after block_10, the last block Keras marked not
trainable), beside the same on the issue's trivial baseline (16x16 thumbnail + 32-bin
histogram) and on the same network with random weights.

    /usr/bin/python3 tools/pretrained/probe_samesource.py --pt build/pretrained/mobilenet_v2.pt \
        --data ../shared/data/cxr-tb-samesource --c 0.001 0.01 0.1 1"""
import argparse
import csv
import os
import sys

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.dont_write_bytecode = True
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
import data as D  # noqa: E402
import pretrained as P  # noqa: E402

SIZE = 224


def baseline_features(u8):
    """16x16 cell means / 255 and the share of pixels in 32 grey bins."""
    n = len(u8)
    thumb = u8.reshape(n, 16, SIZE // 16, 16, SIZE // 16).mean((2, 4)).reshape(n, -1) / 255.0
    hist = np.stack([np.bincount(x.ravel() // 8, minlength=32) for x in u8]) / u8[0].size
    return np.concatenate([thumb, hist], 1)


def network_features(model, u8):
    x = torch.from_numpy(u8[:, None].astype(np.float32) * D.PIXEL_SCALE + D.PIXEL_OFFSET)
    with torch.no_grad():
        return torch.cat([model(x[i:i + 16]).mean((2, 3)) for i in range(0, len(x), 16)]).numpy()


def cv_auc(features, y, c):
    """Mean over 20 repeats of the AUC of out-of-fold predictions (5 stratified folds)."""
    aucs = []
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=20, random_state=0)
    scores = np.zeros(len(y))
    for k, (train, test) in enumerate(cv.split(features, y)):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        clf.fit(features[train], y[train])
        scores[test] = clf.decision_function(features[test])
        if k % 5 == 4:
            aucs.append(roc_auc_score(y, scores))
    return float(np.mean(aucs)), float(np.std(aucs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pt", default=P.DEFAULT_OUT)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data",
                                                   "cxr-tb-samesource"))
    ap.add_argument("--c", type=float, nargs="+", default=[0.01],
                    help="inverse L2 strengths (each reported: not a choice made on the data)")
    args = ap.parse_args()
    torch.manual_seed(0)
    pretrained = P.load_features(args.pt).eval()
    random = P.MobileNetV2Features().eval()
    block10 = P.load_features(args.pt, last="block_10").eval()
    with open(os.path.join(args.data, "labels.csv")) as f:
        rows = list(csv.DictReader(f))
    for name in ("da", "db"):
        sel = [r for r in rows if r["dataset"] == name]
        y = np.array([int(r["tb"]) for r in sel])
        u8 = np.stack([D.load_grey(os.path.join(args.data, r["file"]), SIZE, SIZE)
                       for r in sel])
        for label, feats in (("thumbnail+histogram", baseline_features(u8)),
                             ("nsfwjs Conv_1 (1280)", network_features(pretrained, u8)),
                             # the last block Keras marked not trainable: likely ImageNet's
                             ("nsfwjs block_10 (96)", network_features(block10, u8)),
                             ("random Conv_1 (1280)", network_features(random, u8))):
            for c in args.c:
                mean, sd = cv_auc(feats, y, c)
                print("%s (%d TB, %d normal) %-21s C=%-6g TB AUC %.3f (sd over repeats "
                      "%.3f)" % (name, y.sum(), len(y) - y.sum(), label, c, mean, sd))


if __name__ == "__main__":
    main()
