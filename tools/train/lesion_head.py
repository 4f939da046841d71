"""A tuberculosis output that looks for lesions rather than for the source (issue 18).

The TB output of a contract model is replaced, without retraining its backbone: its class-map
row becomes a logistic regression on the frozen feature map's cells, trained within TBX11K TB
images (cells inside a lesion box against cells outside every box of the same image: one image,
one source, so the source cannot separate them), and the TB logit becomes the map's maximum
(the most lesion-like cell) instead of its mean. Everything else stays as it was.

The TB probability is then calibrated (Platt) and thresholded (>= 90% sensitivity) on the select
halves of the same-source sets `da` and `db` only (tools/train/splits.py); their report halves
stay untouched for the card.

    /usr/bin/python3 tools/train/lesion_head.py --model models/cxr-default.onnx \\
        --out models/cxr-default.onnx --version cxr-default-1.5 [--work build/lesion]
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "export"))
import data as D  # noqa: E402
import evaluate as E  # noqa: E402
import evidence as V  # noqa: E402
import onnx_torch  # noqa: E402

TB = 0
INSIDE = 0.25  # a cell at least this much covered by a box is lesion
REGULARISATION = 0.05  # LogisticRegression C


def classifier_node(proto):
    """The 1x1 Conv that makes `cam` from the feature map."""
    node = next(n for n in proto.graph.node if "cam" in n.output)
    if node.op_type != "Conv":
        raise SystemExit("the model's cam does not come from a Conv")
    return node


def feature_maps(model, feature, root, files, preprocess):
    x = V.network_inputs(root, files, preprocess)
    return model(x, [feature], batch=32)[feature]


def box_cover(boxes, h, w):
    m = torch.from_numpy(D.box_mask(boxes))[None, None]
    return F.adaptive_avg_pool2d(m, (h, w))[0, 0].numpy().ravel()


def fit_cells(maps, boxes):
    """Logistic regression of lesion cells (>= INSIDE covered) against cells outside every box,
    folded back to raw features: returns (weights [C], constant)."""
    n, c, h, w = maps.shape
    xs, ys = [], []
    for fm, b in zip(maps, boxes):
        cover = box_cover(b, h, w)
        cells = fm.reshape(c, -1).T
        xs += [cells[cover >= INSIDE], cells[cover == 0]]
        ys += [np.ones(int((cover >= INSIDE).sum())), np.zeros(int((cover == 0).sum()))]
    x, y = np.concatenate(xs), np.concatenate(ys)
    scaler = StandardScaler().fit(x)
    lr = LogisticRegression(C=REGULARISATION, max_iter=5000).fit(scaler.transform(x), y)
    wz = lr.coef_[0] / scaler.scale_
    return wz.astype(np.float32), float(lr.intercept_[0] - (wz * scaler.mean_).sum()), {
        "cells_inside": int(y.sum()), "cells_outside": int((1 - y).sum()), "images": n}


def max_logit(maps, weights, constant):
    return np.einsum("nchw,c->nhw", maps, weights).reshape(len(maps), -1).max(1) + constant


def rewrite(proto, weights, constant, scale, offset):
    """TB row of the classifier <- weights; TB logit <- max of its map + constant; TB Platt."""
    init = {t.name: t for t in proto.graph.initializer}
    conv = classifier_node(proto)

    def set_array(name, fn):
        arr = numpy_helper.to_array(init[name]).copy()
        fn(arr)
        init[name].CopyFrom(numpy_helper.from_array(arr, name))

    def set_tb(name, value):
        set_array(name, lambda a: a.__setitem__(TB, value))

    set_array(conv.input[1], lambda a: a.__setitem__(TB, weights.reshape(a[TB].shape)))
    set_tb("bias", constant)
    set_tb("platt_scale", scale)
    set_tb("platt_offset", offset)
    nodes = list(proto.graph.node)
    gap = next(n for n in nodes if n.op_type == "GlobalAveragePool" and n.input[0] == "cam")
    flat = next(n for n in nodes if n.op_type == "Flatten" and n.input[0] == gap.output[0])
    add_bias = next(n for n in nodes if n.op_type == "Add" and flat.output[0] in n.input)
    k = numpy_helper.to_array(init["bias"]).shape[0]
    shape = [d.dim_value for d in next(o for o in proto.graph.output
                                       if o.name == "cam").type.tensor_type.shape.dim]
    mean_mask = np.ones(k, np.float32)
    mean_mask[TB] = 0
    proto.graph.initializer.extend([
        numpy_helper.from_array(mean_mask, "pool_mean_mask"),
        numpy_helper.from_array(1 - mean_mask, "pool_max_mask")])
    new = [
        helper.make_node("MaxPool", ["cam"], ["cam_max"], kernel_shape=shape[2:4]),
        helper.make_node("Flatten", ["cam_max"], ["cam_max_flat"], axis=1),
        helper.make_node("Mul", [flat.output[0], "pool_mean_mask"], ["pooled_mean_part"]),
        helper.make_node("Mul", ["cam_max_flat", "pool_max_mask"], ["pooled_max_part"]),
        helper.make_node("Add", ["pooled_mean_part", "pooled_max_part"], ["pooled"])]
    # before the list is rebuilt: extend() copies the messages
    add_bias.input[list(add_bias.input).index(flat.output[0])] = "pooled"
    at = nodes.index(flat) + 1
    del proto.graph.node[:]
    proto.graph.node.extend(nodes[:at] + new + nodes[at:])


def platt(logit, y):
    lr = LogisticRegression(C=1e6, max_iter=5000).fit(logit[:, None], y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def parity_reference(model, feature, root, reference, weights, constant, scale, offset):
    """The parity test's probabilities for the rewritten model, computed here without the
    rewritten graph: the old model's probabilities, with TB from the head's own arithmetic on
    the old model's feature maps (tests/tools/check_default_model.py runs cxrd against them)."""
    preprocess = json.loads(model.metadata["cxr.preprocess"])
    x = V.network_inputs(root, reference["files"], preprocess)
    out = model(x, ["probabilities", feature], batch=32)
    probs = out["probabilities"].astype(np.float64)
    logit = max_logit(out[feature].astype(np.float64), weights.astype(np.float64), constant)
    probs[:, TB] = 1 / (1 + np.exp(-(logit * scale + offset)))
    return dict(reference, probabilities=probs.tolist())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/cxr")
    ap.add_argument("--samesource", default="../shared/data/cxr-tb-samesource")
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--work", default="build/lesion")
    ap.add_argument("--reference", help="the parity test's reference JSON (files, size): "
                    "rewritten for the new model")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    model = onnx_torch.OnnxTorch(args.model)
    preprocess = json.loads(model.metadata["cxr.preprocess"])
    feature = classifier_node(model.proto).input[0]
    folder = D.Folder(args.data, os.path.join(args.work, "cache"), split="v2")
    ss = V.SameSource(args.samesource)
    boxed = [i for i in np.flatnonzero(folder.role == "train")
             if folder.files[i] in folder.boxes and folder.targets[i, TB] == 1]
    maps = feature_maps(model, feature, folder.root, [folder.files[i] for i in boxed], preprocess)
    weights, constant, fit = fit_cells(maps, [folder.boxes[folder.files[i]] for i in boxed])
    ss_logit = max_logit(feature_maps(model, feature, ss.root, ss.files, preprocess),
                         weights, constant)
    sel = ss.role == "select"
    scale, offset = platt(ss_logit[sel], ss.tb[sel])
    prob = 1 / (1 + np.exp(-(ss_logit * scale + offset)))
    threshold = V.tb_threshold(prob[sel], ss.tb[sel])
    if args.reference:
        with open(args.reference) as fh:
            ref = parity_reference(model, feature, folder.root, json.load(fh), weights,
                                   constant, scale, offset)
        ref["model_version"] = args.version
        E.write_json(args.reference, ref)
    rewrite(model.proto, weights, constant, scale, offset)
    meta = {p.key: p for p in model.proto.metadata_props}
    thresholds = json.loads(meta["cxr.thresholds"].value)
    thresholds["Tuberculosis"] = threshold
    meta["cxr.thresholds"].value = json.dumps(thresholds)
    meta["cxr.model_version"].value = args.version
    calibration = json.loads(meta["cxr.calibration"].value)
    calibration["Tuberculosis"] = {"platt_scale": scale, "platt_offset": offset,
                                   "fitted_on": "same-source select halves (da, db)"}
    meta["cxr.calibration"].value = json.dumps(calibration)
    os.makedirs(args.work, exist_ok=True)
    tmp = args.out + ".tmp"
    onnx.save(model.proto, tmp)
    os.replace(tmp, args.out)
    summary = dict(fit, threshold=threshold, platt=[scale, offset], feature=feature,
                   inside=INSIDE, regularisation=REGULARISATION,
                   select_auc={ds: E.rank_auc(ss_logit[sel & (ss.dataset == ds) & (ss.tb == 1)],
                                              ss_logit[sel & (ss.dataset == ds) &
                                                       (ss.tb == 0)])[0]
                               for ds in ("da", "db")})
    E.write_json(os.path.join(args.work, "lesion_head.json"), summary)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
