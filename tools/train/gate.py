"""Fits and measures the input gate's image layer and writes it into a contract model.

The gate is a logistic classifier "frontal chest radiograph or not" over the network's pooled
features (the feature map under the class-map classifier, its mean and its maximum over space: a
new graph output `gate_features`) plus a 16x16 thumbnail and a 32-bin histogram of the network
input; cxrd computes the same in C (src/model/model_gate.c) and reads the weights from `cxr.gate`.

Positives: the chest radiographs of the labelled folder (training split). Negatives: the same
images rotated by 90/180/270 degrees, inverted, or cropped to a small window, and the non-chest
images of the DICOM corpus (rendered by `cxrd render`). The threshold is the 0.01th percentile of
the training chest scores (with 2.0's features, the choice that keeps acceptance of held-out
radiographs >= 99.5%; 1.4's mean-only gate used 0.03; docs/gate.md compares others); acceptance
is then measured on the validation split, transforms on validation images, and the corpus by
two-fold cross-fitting (each file scored by a gate fitted without its fold).

    /usr/bin/python3 tools/train/gate.py --data ../shared/data/cxr --dicom ../shared/data/dicom \\
        --cxrd build/src/cxrd --model models/cxr-default.onnx --work /tmp/gate --out OUT.onnx
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import helper
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data as D  # noqa: E402
import gate_data as G  # noqa: E402
import onnx_torch  # noqa: E402

FEATURES_OUTPUT = "gate_features"
THUMB, BINS = 16, 32
ACCEPT_PERCENTILE = 0.01  # of the training chest scores: the gate's threshold
DICOM_WEIGHT = 20.0  # corpus images are few; each counts as this many transformed images
C_REGULARISATION = 1.0
CROP_WEIGHT = 6.0  # crops are the hardest negatives: each counts as six (docs/gate.md)
EXTRA_TRANSFORMS = 2  # per training image, beside the one every image gets


def feature_tensor_name(model):
    """The feature map under the classifier: the input of the Conv that writes `cam`."""
    for node in model.nodes:
        if "cam" in node.output and node.op_type == "Conv":
            return node.input[0]
    raise ValueError("no Conv node writes `cam`")


def image_features(x):
    """What model_gate.c computes from the network input x [N,1,H,W] (network units):
    16x16 cell means of the grey level / 255 and the share of pixels in 32 grey bins."""
    n, _, h, w = x.shape
    grey = np.clip((x[:, 0].astype(np.float64) - D.PIXEL_OFFSET) / D.PIXEL_SCALE, 0, 255)
    rows = np.arange(h) * THUMB // h
    cols = np.arange(w) * THUMB // w
    cell = (rows[:, None] * THUMB + cols[None, :]).ravel()
    counts = np.bincount(cell, minlength=THUMB * THUMB)
    flat = grey.reshape(n, -1)
    thumb = np.stack([np.bincount(cell, f, THUMB * THUMB) for f in flat]) / counts / 255.0
    bins = np.minimum((flat / 8.0).astype(int), BINS - 1)
    hist = np.stack([np.bincount(b, minlength=BINS) for b in bins]) / float(h * w)
    return np.concatenate([thumb, hist], 1)


def pooled_features(fmap):
    """What the graph output `gate_features` holds for a feature map [N,C,H,W]: each channel's
    mean, then its maximum. The maximum keeps local patterns (text, edges, colour seams) that
    the mean of ImageNet-trained features washes out (docs/gate.md, "Refitted for 2.0")."""
    return np.concatenate([fmap.mean((2, 3)), fmap.max((2, 3))], 1)


def features(model, u8, size, name, equalized=False, batch=64):
    """[pooled features, image features] of uint8 images [N,S,S]."""
    out = []
    for i in range(0, len(u8), batch):
        x = np.stack([D.network_input(u, size, size, equalized=equalized)
                      for u in u8[i:i + batch]])[:, None]
        pooled = pooled_features(model.run(x, [name])[name])
        out.append(np.concatenate([pooled, image_features(x)], 1))
    return np.concatenate(out)


def build_sets(args, model, preprocess):
    """Features of every image; the labelled folder's are cached in the work folder by model."""
    with open(args.model, "rb") as fh:
        key = hashlib.sha1(fh.read()).hexdigest()[:12]
    # (named for the features: mean and max, on inputs resized as cxrd resizes them)
    cache = os.path.join(args.work, "gate-features-meanmax-area-%s.npz" % key)
    folder = D.Folder(args.data, os.path.join(args.work, "cache"))
    corpus = G.corpus_images(args.dicom, args.cxrd, args.work, D.CACHE_SIDE)
    name = feature_tensor_name(model)

    def feats(u8):
        return features(model, u8, preprocess["width"], name, D.input_equalized(preprocess))

    if os.path.exists(cache):  # the corpus is small: scored afresh, as this cxrd renders it
        sets = dict(np.load(cache))
        sets["corpus"] = feats(np.stack([c["image"] for c in corpus]))
        return folder, corpus, sets
    rng = np.random.RandomState(1)
    chest = folder.images
    kinds = rng.randint(0, len(G.TRANSFORMS), len(chest))
    neg = np.stack([G.transform(u, G.TRANSFORMS[k], rng) for u, k in zip(chest, kinds)])
    extra_idx, extra_kinds, extra = [], [], []
    for i in np.flatnonzero(~folder.is_val):
        others = [k for k in range(len(G.TRANSFORMS)) if k != kinds[i]]
        for k in rng.choice(others, EXTRA_TRANSFORMS, replace=False):
            extra_idx.append(i)
            extra_kinds.append(k)
            extra.append(G.transform(chest[i], G.TRANSFORMS[k], rng))
    sets = {"chest": feats(chest),
            "transformed": feats(neg), "kinds": kinds,
            "extra": feats(np.stack(extra)),
            "extra_idx": np.array(extra_idx), "extra_kinds": np.array(extra_kinds),
            "corpus": feats(np.stack([c["image"] for c in corpus]))}
    np.savez(cache + ".tmp.npz", **sets)
    os.replace(cache + ".tmp.npz", cache)
    return folder, corpus, sets


def fit(x, y, weight):
    """Logistic regression on standardised features, folded back into raw-feature weights."""
    scaler = StandardScaler().fit(x)
    lr = LogisticRegression(C=C_REGULARISATION, max_iter=5000)
    lr.fit(scaler.transform(x), y, sample_weight=weight)
    w = lr.coef_[0] / scaler.scale_
    b = float(lr.intercept_[0] - (lr.coef_[0] * scaler.mean_ / scaler.scale_).sum())
    return w, b


def training_rows(folder, sets, corpus_mask, corpus_chest):
    tr = ~folder.is_val
    neg = np.concatenate([sets["transformed"][tr], sets["extra"]])
    kinds = np.concatenate([sets["kinds"][tr], sets["extra_kinds"]])
    x = np.concatenate([sets["chest"][tr], neg, sets["corpus"][corpus_mask]])
    y = np.concatenate([np.ones(tr.sum()), np.zeros(len(neg)), corpus_chest[corpus_mask]])
    crop = G.TRANSFORMS.index("crop")
    weight = np.concatenate([np.ones(tr.sum()), np.where(kinds == crop, CROP_WEIGHT, 1.0),
                             np.full(corpus_mask.sum(), DICOM_WEIGHT)])
    return x, y, weight


def score(x, w, b):
    return 1.0 / (1.0 + np.exp(-(x @ w + b)))


def measure(folder, corpus, sets):
    """The gate fitted on everything, with its cross-fitted figures."""
    chest_flag = np.array([c["chest"] for c in corpus], float)
    folds = np.array([c["fold"] for c in corpus])
    held_out = np.zeros(len(corpus))
    for f in sorted(set(folds)):
        w, b = fit(*training_rows(folder, sets, folds != f, chest_flag))
        held_out[folds == f] = score(sets["corpus"][folds == f], w, b)
    w, b = fit(*training_rows(folder, sets, np.ones(len(corpus), bool), chest_flag))
    chest_scores = score(sets["chest"], w, b)
    threshold = float(np.percentile(chest_scores[~folder.is_val], ACCEPT_PERCENTILE))
    val = folder.is_val
    report = {"threshold": threshold, "accept_validation": {}, "refuse_transformed": {},
              "corpus": []}
    for d in sorted(set(folder.dataset)):
        sel = val & (folder.dataset == d)
        report["accept_validation"][d] = {"n": int(sel.sum()),
                                          "accepted": int((chest_scores[sel] >= threshold).sum())}
    t_scores = score(sets["transformed"], w, b)
    for k, kind in enumerate(G.TRANSFORMS):
        sel = val & (sets["kinds"] == k)
        report["refuse_transformed"][kind] = {"n": int(sel.sum()),
                                              "refused": int((t_scores[sel] < threshold).sum())}
    for c, s in zip(corpus, held_out):
        report["corpus"].append({"name": c["name"], "modality": c["modality"],
                                 "chest": bool(c["chest"]), "rows": int(c["rows"]),
                                 "columns": int(c["columns"]), "held_out_score": float(s),
                                 "accepted": bool(s >= threshold)})
    return w, b, threshold, report


def export(src, dst, w, b, threshold, name, map_shape):
    """Adds the pooled-feature output (mean and maximum of the map: GlobalAveragePool, and a
    MaxPool whose kernel is the whole map) and cxr.gate to a copy of the model."""
    m = onnx.load(src)
    g = m.graph
    for out in list(g.output):
        if out.name == FEATURES_OUTPUT:
            raise ValueError("the model already has a gate")
    mean, peak = FEATURES_OUTPUT + "_mean", FEATURES_OUTPUT + "_max"
    g.node.extend([helper.make_node("GlobalAveragePool", [name], [mean + "_4d"]),
                   helper.make_node("Flatten", [mean + "_4d"], [mean], axis=1),
                   helper.make_node("MaxPool", [name], [peak + "_4d"],
                                    kernel_shape=list(map_shape)),
                   helper.make_node("Flatten", [peak + "_4d"], [peak], axis=1),
                   helper.make_node("Concat", [mean, peak], [FEATURES_OUTPUT], axis=1)])
    g.output.extend([helper.make_tensor_value_info(FEATURES_OUTPUT, onnx.TensorProto.FLOAT,
                                                   [1, len(w) - THUMB * THUMB - BINS])])
    gate = {"features": "gate_features (mean, max), 16x16 thumbnail / 255, 32-bin histogram share",
            "weights": [round(float(v), 7) for v in w], "bias": round(b, 7),
            "threshold": round(threshold, 6), "min_age_years": 18}
    props = {p.key: p for p in m.metadata_props}
    if "cxr.gate" in props:
        props["cxr.gate"].value = json.dumps(gate)
    else:
        m.metadata_props.append(onnx.StringStringEntryProto(key="cxr.gate",
                                                            value=json.dumps(gate)))
    onnx.checker.check_model(m)
    onnx.save(m, dst + ".tmp")
    os.replace(dst + ".tmp", dst)


def print_report(report):
    print("threshold %.4f" % report["threshold"])
    print("chest radiographs accepted (validation split):")
    total = [0, 0]
    for d, r in report["accept_validation"].items():
        print("  %-34s %4d/%-4d %.4f" % (d, r["accepted"], r["n"], r["accepted"] / r["n"]))
        total[0] += r["accepted"]
        total[1] += r["n"]
    print("  %-34s %4d/%-4d %.4f" % ("all", total[0], total[1], total[0] / total[1]))
    print("transformed chest radiographs refused (validation split):")
    for k, r in report["refuse_transformed"].items():
        print("  %-10s %4d/%-4d %.4f" % (k, r["refused"], r["n"], r["refused"] / r["n"]))
    corpus = report["corpus"]
    print("DICOM corpus, image layer alone, held-out fold:")
    for mod in sorted({c["modality"] for c in corpus if not c["chest"]}):
        sel = [c for c in corpus if not c["chest"] and c["modality"] == mod]
        print("  non-chest %-8s refused %3d/%d" % (mod, sum(not c["accepted"] for c in sel),
                                                   len(sel)))
    for c in corpus:
        if c["chest"] != c["accepted"]:
            print("  %s: %s, score %.3f" % (c["name"], "chest refused" if c["chest"]
                                           else "non-chest accepted", c["held_out_score"]))


def markdown(report):
    """The model card's section on the gate."""
    acc = report["accept_validation"]
    n = sum(r["n"] for r in acc.values())
    a = sum(r["accepted"] for r in acc.values())
    corpus = report["corpus"]
    non_chest = [c for c in corpus if not c["chest"]]
    lines = ["## Input gate", "",
             "cxrd refuses an image that is not an adult frontal chest radiograph before "
             "reporting on it (README \"The input gate\"). Its DICOM attribute layer is fixed in "
             "cxrd; its image layer is in this model: `cxr.gate` holds a logistic classifier "
             "over the network's pooled features (the mean and the maximum of the feature map: "
             "the graph output `gate_features`), a 16 x 16 thumbnail and a 32-bin grey "
             "histogram of the network input, fitted by "
             "`tools/train/gate.py` on the training split's chest radiographs against the same "
             "images rotated by 90/180/270 degrees, inverted or cropped to a 30-50%% window (each crop "
             "counting %g times: crops are the hardest negatives), and "
             "the non-chest images of the DICOM corpus (rendered by cxrd). Its threshold "
             "(%.4f) is the %.2fth percentile of the training radiographs' scores. The figures "
             "below are the image layer alone, on images it was not fitted on." % (
                 CROP_WEIGHT, report["threshold"], ACCEPT_PERCENTILE), "",
             "| chest radiographs, validation split | accepted |", "| --- | --- |"]
    for d, r in acc.items():
        lines.append("| %s | %d / %d (%.4f) |" % (d, r["accepted"], r["n"],
                                                 r["accepted"] / r["n"]))
    lines.append("| all | %d / %d (%.4f) |" % (a, n, a / n))
    lines += ["", "| transformed validation radiographs | refused |", "| --- | --- |"]
    for k, r in report["refuse_transformed"].items():
        lines.append("| %s | %d / %d (%.4f) |" % (k, r["refused"], r["n"],
                                                 r["refused"] / r["n"]))
    refused = sum(not c["accepted"] for c in non_chest)
    lines += ["", "DICOM corpus (`../shared/data/dicom`), image layer alone, each file scored by "
              "a gate fitted without its fold (files grouped by name stem, two folds): "
              "non-chest images refused %d / %d (%.4f); by modality: %s. Chest radiographs of "
              "the corpus accepted: %d / %d. With the attribute layer in front, every non-chest "
              "file of the corpus that carries a Modality other than CR/DX/OT/SC, or a "
              "BodyPartExamined other than the chest, is refused before the network runs." % (
                  refused, len(non_chest), refused / max(1, len(non_chest)),
                  ", ".join("%s %d/%d" % (m, sum(not c["accepted"] for c in non_chest
                                                 if c["modality"] == m),
                                          sum(1 for c in non_chest if c["modality"] == m))
                            for m in sorted({c["modality"] for c in non_chest})),
                  sum(c["accepted"] for c in corpus if c["chest"]),
                  sum(1 for c in corpus if c["chest"])), ""]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--dicom", required=True)
    p.add_argument("--cxrd", required=True, help="the cxrd binary (renders the corpus)")
    p.add_argument("--model", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--out", help="write the model with its gate here")
    p.add_argument("--report", help="write the measurements as JSON here")
    p.add_argument("--card-section", help="write the model card's section here")
    args = p.parse_args()
    model = onnx_torch.OnnxTorch(args.model)
    preprocess = json.loads(model.metadata["cxr.preprocess"])
    size = preprocess["width"]
    folder, corpus, sets = build_sets(args, model, preprocess)
    w, b, threshold, report = measure(folder, corpus, sets)
    print_report(report)
    if args.report:
        with open(args.report, "w") as fh:
            json.dump(report, fh, indent=1)
    if args.card_section:
        with open(args.card_section, "w") as fh:
            fh.write(markdown(report))
    if args.out:
        name = feature_tensor_name(model)
        probe = np.zeros((1, 1, size, size), np.float32)
        export(args.model, args.out, w, b, threshold, name,
               model.run(probe, [name])[name].shape[2:])


if __name__ == "__main__":
    import heap
    heap.keep_freed_memory()
    main()
