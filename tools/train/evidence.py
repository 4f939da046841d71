"""Evidence an image's source cannot fake (issue 18), for any contract model and for the trivial
baseline, on the nested v2 split (tools/train/splits.py): choose on "select", report "report".

- Tuberculosis within `da` and within `db` (TB and normal from one machine each): AUC, and
  sensitivity and specificity at a threshold;
- NIH findings: each finding's positives against NIH `No Finding`, patients split;
- findings on normal radiographs: the share of NIH `No Finding` images and of the `da` / `db`
  normals (machines nothing here trained on) with each finding called present at the model's
  operating points, and the share of NIH positives still called present there;
- how far the findings move on those machines' normals, without a threshold: per finding, the
  AUC of the `da` / `db` normals against NIH `No Finding` (0.5: no shift);
- the source probe: how well a logistic regression on the network's pooled features (frozen)
  tells the collections apart within each TB class, against chance;
- the pointing game: the class-map maximum inside a box (TBX11K for TB, NIH's own boxes for
  each NIH finding), against the best fixed map cell (chosen on the training images' boxes) and
  against the other images' boxes.

    /usr/bin/python3 tools/train/evidence.py --model cxr-default-1.4=models/cxr-default.onnx \\
        [--model NAME=checkpoint.pt ...] --work build/evidence
"""
import argparse
import csv
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "export"))
import data as D  # noqa: E402
import evaluate as E  # noqa: E402
import labels as L  # noqa: E402
import splits  # noqa: E402

TB = L.INDEX["Tuberculosis"]
PARTS = ("select", "report")
TB_SENSITIVITY = 0.90
class SameSource:
    """The same-source TB sets: files, set name, TB label and v2 role of each image."""

    def __init__(self, root):
        with open(os.path.join(root, "labels.csv"), newline="") as fh:
            rows = list(csv.DictReader(fh))
        self.root = root
        self.files = [r["file"] for r in rows]
        self.dataset = np.array([r["dataset"] for r in rows])
        self.tb = np.array([int(r["tb"]) for r in rows])
        self.role = splits.samesource_roles(self.dataset, self.tb)


def network_inputs(root, files, preprocess):
    """What cxrd feeds the network (cxr.preprocess): the 8-bit image area-resized (stretch),
    its histogram equalised if the model asks, then pixel * scale + offset."""
    return np.stack([D.model_input(os.path.join(root, f), preprocess) for f in files])[:, None]


class OnnxScorer:
    """A contract ONNX model run in torch (tools/train/onnx_torch.py)."""

    def __init__(self, path):
        import onnx_torch
        self.model = onnx_torch.OnnxTorch(path)
        self.preprocess = json.loads(self.model.metadata["cxr.preprocess"])
        # the feature map under the classifier (what `gate_features` pools; models before the
        # gate, like 1.3, lack that output)
        import gate
        self.feature_map = gate.feature_tensor_name(self.model)
        self.names = ["probabilities", "cam", self.feature_map]
        self.thresholds = json.loads(self.model.metadata["cxr.thresholds"])
        self.tb_threshold = self.thresholds["Tuberculosis"]

    def __call__(self, x, batch=32):
        probs, cams, feats = [], [], []
        for i in range(0, len(x), batch):
            out = self.model.run(x[i:i + batch], self.names)
            probs.append(out["probabilities"])
            cams.append(out["cam"])
            feats.append(out[self.feature_map].mean((2, 3)))
        return np.concatenate(probs), np.concatenate(cams), np.concatenate(feats)


class CheckpointScorer:
    """A ContractModel in torch (a training checkpoint); features = pooled backbone output."""

    def __init__(self, model, preprocess):
        self.model = model.eval()
        self.preprocess = preprocess
        self.tb_threshold = None  # not calibrated yet: chosen on the select halves
        self.thresholds = None  # the findings' too: chosen by thresholds.py's rule

    @torch.no_grad()
    def __call__(self, x, batch=32):
        probs, cams, feats = [], [], []
        for i in range(0, len(x), batch):
            f = self.model.backbone(torch.from_numpy(x[i:i + batch]))
            cam = self.model.classifier(f)
            logits = self.model.pool(cam) + self.model.bias
            probs.append(torch.sigmoid(logits * self.model.platt_scale +
                                       self.model.platt_offset).numpy())
            cams.append(cam.numpy())
            feats.append(f.mean((2, 3)).numpy())
        return np.concatenate(probs), np.concatenate(cams), np.concatenate(feats)


def proportion(hits, rng):
    hits = np.asarray(hits, float)
    if len(hits) == 0:
        return {"value": float("nan"), "ci": [float("nan")] * 2, "n": 0}
    boot = hits[rng.randint(0, len(hits), (E.BOOT, len(hits)))].mean(1)
    return {"value": float(hits.mean()), "ci": np.percentile(boot, [2.5, 97.5]).tolist(),
            "n": int(len(hits))}


def tb_threshold(scores, tb):
    """Highest threshold (6 decimals, as the model file stores it) that keeps >= 90% of the TB
    images at or above it."""
    pos = np.sort(scores[tb == 1])
    # TB images that may fall below; (1 - 0.9) * n in floating point is under 1 at n = 10
    k = len(pos) - int(np.ceil(TB_SENSITIVITY * len(pos) - 1e-9))
    return float(np.floor(pos[k] * 1e6) / 1e6)


def tb_samesource(scores, ss, threshold):
    """Per same-source set and part: AUC (95% CI), sensitivity and specificity at threshold."""
    rng = np.random.RandomState(E.SEED)
    out = {}
    for ds in sorted(set(ss.dataset)):
        for part in PARTS + ("all",):
            sel = (ss.dataset == ds) & ((ss.role == part) | (part == "all"))
            y, s = ss.tb[sel], scores[sel]
            auc, lo, hi = E.auc_ci(y, s, rng)
            out["%s/%s" % (ds, part)] = {
                "auc": auc, "ci": [lo, hi], "tb": int(y.sum()), "normal": int((1 - y).sum()),
                "sensitivity": proportion(s[y == 1] >= threshold, rng),
                "specificity": proportion(s[y == 0] < threshold, rng)}
    return out


def nih_eval_sets(folder, part):
    """(indices, positive mask per finding) of NIH images of `part`: positives and No Finding."""
    nih = np.isin(folder.dataset, D.NIH_ALL) & (folder.role == part)
    nofind = nih & np.array([r == "No Finding" for r in folder.nih_raw])
    return nih, nofind


def nih_findings(folder, probs_of, baseline_of, part):
    """AUC of each NIH finding's positives vs No Finding images of `part`, beside the
    baseline's. probs_of / baseline_of: image index -> score row."""
    rng = np.random.RandomState(E.SEED)
    nih, nofind = nih_eval_sets(folder, part)
    out = {}
    for f in L.NIH_FINDINGS:
        k = L.INDEX[f]
        pos = nih & (folder.targets[:, k] == 1)
        idx = np.flatnonzero(pos | nofind)
        y = pos[idx].astype(int)
        net = np.array([probs_of[i][k] for i in idx])
        base = np.array([baseline_of[f][i] for i in idx])
        a, lo, hi = E.auc_ci(y, net, rng)
        b, blo, bhi = E.auc_ci(y, base, rng)
        out[f] = {"auc": a, "ci": [lo, hi], "baseline_auc": b, "baseline_ci": [blo, bhi],
                  "difference_ci": E.auc_difference_ci(y, net, base),
                  "positives": int(y.sum()), "negatives": int((1 - y).sum())}
    out["mean"] = {"auc": float(np.mean([out[f]["auc"] for f in L.NIH_FINDINGS])),
                   "baseline_auc": float(np.mean([out[f]["baseline_auc"]
                                                  for f in L.NIH_FINDINGS]))}
    return out


def baseline_scores(folder, ss):
    """The trivial model (16x16 thumbnail + 32-bin histogram, logistic regression) trained on
    the v2 training images: per NIH finding (positives vs No Finding) a score for every image,
    and a TB score (TB vs non-TB over every training collection) for the same-source images."""
    feats = E.baseline_features(folder.images)
    train = folder.role == "train"
    nih = np.isin(folder.dataset, D.NIH_ALL)
    nofind = np.array([r == "No Finding" for r in folder.nih_raw])
    out = {}
    for f in L.NIH_FINDINGS:
        pos = nih & (folder.targets[:, L.INDEX[f]] == 1)
        tr = np.flatnonzero(train & (pos | nofind))
        out[f] = E.baseline_model().fit(feats[tr], pos[tr]).decision_function(feats)
    ss_u8 = np.stack([D.load_grey(os.path.join(ss.root, f), D.CACHE_SIDE, D.CACHE_SIDE)
                      for f in ss.files])
    tr = np.flatnonzero(train)
    tb_model = E.baseline_model().fit(feats[tr], folder.targets[tr, TB])
    out["tb_samesource"] = tb_model.decision_function(E.baseline_features(ss_u8))
    out["features"] = feats
    return out


def source_probe(features, folder, idx):
    """Balanced accuracy of a 5-fold cross-validated logistic regression predicting the
    collection from frozen features, within TB images and within non-TB images of idx."""
    out = {}
    for cls, name in ((1, "tb"), (0, "non_tb")):
        sel = idx[folder.targets[idx, TB] == cls]
        groups = np.array([D.source_group(d) for d in folder.dataset[sel]])
        kinds = sorted(set(groups))
        y = np.array([kinds.index(g) for g in groups])
        cv = StratifiedKFold(5, shuffle=True, random_state=E.SEED)
        pred = cross_val_predict(E.baseline_model(), features[sel], y, cv=cv)
        out[name] = {"balanced_accuracy": float(balanced_accuracy_score(y, pred)),
                     "chance": 1.0 / len(kinds), "sources": kinds,
                     "images": {k: int((groups == k).sum()) for k in kinds}}
    return out


def _hit(px, py, boxes):
    return any(x0 <= px <= x1 and y0 <= py <= y1 for x0, y0, x1, y1 in boxes)


def map_maxima(cams):
    """(x, y) of each class map's maximum after bilinear upsampling to the 256-px image."""
    side = D.CACHE_SIDE
    up = F.interpolate(torch.from_numpy(np.ascontiguousarray(cams[:, None])), size=(side, side),
                       mode="bilinear", align_corners=False)[:, 0].numpy()
    flat = up.reshape(len(up), -1).argmax(1)
    return [((i % side) + 0.5, (i // side) + 0.5) for i in flat]


def pointing(cams, boxes, train_boxes):
    """cams [N,h,w] of N images with boxes (list of box lists): share of maxima inside a box,
    the best fixed cell chosen on train_boxes, and the other images' boxes."""
    rng = np.random.RandomState(E.SEED)
    n, (h, w) = len(boxes), cams.shape[1:]
    side = D.CACHE_SIDE
    points = map_maxima(cams)
    hits = np.array([_hit(px, py, b) for (px, py), b in zip(points, boxes)], float)
    centres = [((c + 0.5) * side / w, (r + 0.5) * side / h) for r in range(h) for c in range(w)]
    best = int(np.argmax([np.mean([_hit(cx, cy, b) for b in train_boxes]) for cx, cy in centres]))
    fixed = np.array([_hit(*centres[best], b) for b in boxes], float)
    other = np.mean([_hit(px, py, boxes[k]) for j, (px, py) in enumerate(points)
                     for k in range(n) if k != j]) if n > 1 else float("nan")
    idx = rng.randint(0, n, (E.BOOT, n))
    return {"images": n, "pointing": proportion(hits, rng),
            "fixed_cell": float(fixed.mean()), "other_images": float(other),
            "margin_over_fixed_ci": np.percentile(hits[idx].mean(1) - fixed[idx].mean(1),
                                                  [2.5, 97.5]).tolist()}


def pointing_games(folder, cam_of, part):
    """TB on TBX11K boxes and each boxed NIH finding, on the images of `part`."""
    out = {}
    train = folder.role == "train"
    games = [("Tuberculosis", folder.boxes)] + sorted(folder.nih_boxes.items())
    for finding, boxes in games:
        k = L.INDEX[finding]
        idx = [i for i in range(folder.n) if folder.files[i] in boxes and
               folder.role[i] == part and folder.targets[i, k] == 1]
        train_b = [boxes[folder.files[i]] for i in np.flatnonzero(train)
                   if folder.files[i] in boxes]
        if len(idx) < 5 or not train_b:
            continue
        cams = np.stack([cam_of[i][k] for i in idx])
        out[finding] = pointing(cams, [boxes[folder.files[i]] for i in idx], train_b)
    return out


def tb_flag_rates(folder, probs_of, threshold):
    """Share of held-out images called TB Presumptive, per group: what the threshold does to
    normals and to other findings of every collection (confounded, but a false alarm rate)."""
    groups = {}
    for i, p in probs_of.items():
        ds = D.source_group(folder.dataset[i])
        if folder.targets[i, TB] == 1:
            g = "%s TB" % ds
        elif ds == "nih":
            g = "nih No Finding" if folder.nih_raw[i] == "No Finding" else "nih with findings"
        else:
            g = "%s normal" % ds
        groups.setdefault(g, []).append(p[TB] >= threshold)
    return {g: {"rate": float(np.mean(v)), "images": len(v)} for g, v in sorted(groups.items())}


def evaluate_model(scorer, folder, ss, base):
    """Every measure for one model, at its shipped TB threshold (a checkpoint has none: then the
    one chosen on the same-source select halves, >= 90% sensitivity)."""
    held = np.flatnonzero(folder.role != "train")
    probs, cams, feats = scorer(network_inputs(folder.root, [folder.files[i] for i in held],
                                               scorer.preprocess))
    ss_all = scorer(network_inputs(ss.root, ss.files, scorer.preprocess))[0]
    ss_probs = ss_all[:, TB]
    chosen = tb_threshold(ss_probs[ss.role == "select"], ss.tb[ss.role == "select"])
    threshold = chosen if scorer.tb_threshold is None else scorer.tb_threshold
    probs_of = dict(zip(held, probs))
    cam_of = dict(zip(held, cams))
    res = {"tb_threshold": threshold, "tb_threshold_chosen_on_select": chosen,
           "tb_samesource": tb_samesource(ss_probs, ss, threshold),
           "tb_flag_rates": tb_flag_rates(folder, probs_of, threshold)}
    findings_at = (scorer.thresholds or
                   select_finding_thresholds(folder, probs_of, ss_all, ss))
    res["findings_on_normals"] = findings_on_normals(folder, probs_of, ss_all, ss, findings_at)
    res["normals_shift"] = {part: normals_shift(folder, probs_of, ss_all, ss, part)
                            for part in PARTS}
    for part in PARTS:
        res["nih/" + part] = nih_findings(folder, probs_of, base, part)
        res["pointing/" + part] = pointing_games(folder, cam_of, part)
    if feats is not None:
        res["source_probe"] = source_probe(_scatter(feats, held, folder.n), folder, held)
    return res


def select_finding_thresholds(folder, probs_of, ss_scores, ss):
    """A checkpoint's operating points as thresholds.py chooses them from the select part
    (findings with too few select positives stay off)."""
    import thresholds as TH
    nih, no_finding = nih_eval_sets(folder, "select")
    normals = (ss.role == "select") & (ss.tb == 0)
    out = {}
    for f in L.NIH_FINDINGS:
        k = L.INDEX[f]
        if not TH.assessed(f, (nih & (folder.targets[:, k] == 1)).sum()):
            out[f] = TH.OFF
            continue
        out[f] = TH.finding_threshold(np.array([probs_of[i][k] for i in np.flatnonzero(
            no_finding)]), ss_scores[normals, k])
    return out


def findings_on_normals(folder, probs_of, ss_probs, ss, thresholds):
    """Share of normal radiographs called present for each assessed finding (and for any of
    them) at the given thresholds: NIH No Finding images of each part, and the normals of `da`
    and `db`, machines no network here trained on, per part."""
    findings = [f for f in L.NIH_FINDINGS if thresholds.get(f, 2.0) <= 1.0]
    t = np.array([thresholds[f] for f in findings])
    cols = [L.INDEX[f] for f in findings]
    groups, sensitivity = {}, {}
    for part in PARTS:
        nih, no_finding = nih_eval_sets(folder, part)
        groups["NIH No Finding/" + part] = np.stack([probs_of[i] for i in
                                                     np.flatnonzero(no_finding)])
        # what those operating points cost: the share of each finding's NIH positives called
        # present
        sens = {f: float(np.mean([probs_of[i][L.INDEX[f]] >= thresholds[f] for i in
                                  np.flatnonzero(nih & (folder.targets[:, L.INDEX[f]] == 1))]))
                for f in findings}
        sensitivity["NIH sensitivity/" + part] = dict(sens,
                                                      mean=float(np.mean(list(sens.values()))))
    for ds in sorted(set(ss.dataset)):
        for part in PARTS:
            groups["%s normal/%s" % (ds, part)] = ss_probs[(ss.dataset == ds) &
                                                           (ss.role == part) & (ss.tb == 0)]
    out = {}
    for g, p in groups.items():
        present = p[:, cols] >= t
        out[g] = {"images": int(len(p)), "any": float(present.any(1).mean()),
                  "findings": dict(zip(findings, present.mean(0).astype(float).tolist()))}
    out.update(sensitivity)
    return out


def normals_shift(folder, probs_of, ss_probs, ss, part):
    """How much higher each NIH finding scores the normals of `da` and `db` (machines no network
    here trained on) than NIH `No Finding` images of `part`, as the AUC of the one against the
    other: 0.5 when a normal radiograph scores alike whichever machine took it. Needs no
    threshold, so seeds' operating points do not blur it."""
    _, no_finding = nih_eval_sets(folder, part)
    nih = np.stack([probs_of[i] for i in np.flatnonzero(no_finding)])
    other = ss_probs[(ss.role == part) & (ss.tb == 0)]
    out = {f: float(E.rank_auc(other[:, L.INDEX[f]], nih[:, L.INDEX[f]])[0])
           for f in L.NIH_FINDINGS}
    out["mean"] = float(np.mean(list(out.values())))
    out["images"] = [int(len(nih)), int(len(other))]
    return out


def _scatter(rows, idx, n):
    out = np.zeros((n,) + rows.shape[1:], rows.dtype)
    out[idx] = rows
    return out


def evaluate_baseline(folder, ss, base):
    held = np.flatnonzero(folder.role != "train")
    s = base["tb_samesource"]
    chosen = tb_threshold(s[ss.role == "select"], ss.tb[ss.role == "select"])
    res = {"tb_threshold_chosen_on_select": chosen,
           "tb_samesource": tb_samesource(s, ss, chosen),
           "source_probe": source_probe(base["features"], folder, held)}
    return res


def _f(x, d=3):
    return "n/a" if x is None or x != x else ("%." + str(d) + "f") % x


def _ci(c):
    return "%s–%s" % (_f(c[0]), _f(c[1]))


def markdown(results):
    """The card's tables: every model of results (and the baseline) side by side."""
    models = [k for k in results if k != "baseline"]
    every = models + ["baseline"]
    out = ["### Tuberculosis within one machine (`da`, `db`)", "",
           "AUC (95% CI); sensitivity and specificity at each model's TB threshold (chosen for "
           ">= 90% sensitivity on the select halves of `da` and `db` together, unless the model "
           "ships its own). The report halves were never used to choose anything.", "",
           "| set | part | TB / normal | " + " | ".join(
               "%s AUC | sens. / spec." % m for m in every) + " |",
           "| --- | --- | --- | " + " | ".join("--- | ---" for _ in every) + " |"]
    for key in results[models[0] if models else "baseline"]["tb_samesource"]:
        ds, part = key.split("/")
        row = results["baseline"]["tb_samesource"][key]
        cells = []
        for m in every:
            r = results[m]["tb_samesource"][key]
            cells.append("%s (%s) | %s / %s" % (_f(r["auc"]), _ci(r["ci"]),
                                                 _f(r["sensitivity"]["value"], 2),
                                                 _f(r["specificity"]["value"], 2)))
        out.append("| %s | %s | %d / %d | %s |" % (ds, part, row["tb"], row["normal"],
                                                   " | ".join(cells)))
    out += ["", "Thresholds: " + "; ".join(
        "%s %s" % (m, _f(results[m].get("tb_threshold",
                                        results[m]["tb_threshold_chosen_on_select"]), 4))
        for m in every) + ".", ""]
    out += ["### TB Presumptive rate on held-out images of the other collections", "",
            "Share at or above each model's TB threshold (select and report parts together).",
            "", "| group | images | " + " | ".join(models) + " |",
            "| --- | --- | " + " | ".join("---" for _ in models) + " |"]
    for g, r in (results[models[0]]["tb_flag_rates"].items() if models else ()):
        out.append("| %s | %d | %s |" % (g, r["images"], " | ".join(
            _f(results[m]["tb_flag_rates"][g]["rate"]) for m in models)))
    out += findings_on_normals_markdown(results, models)
    out += normals_shift_markdown(results, models)
    out += ["", "### Source probe", "",
            "Balanced accuracy of a logistic regression (5-fold cross-validated) that names the "
            "collection from the frozen pooled features of held-out images, within TB images and "
            "within non-TB images; the baseline row uses the thumbnail + histogram itself.", "",
            "| model | within TB (chance) | within non-TB (chance) |", "| --- | --- | --- |"]
    for m in every:
        p = results[m].get("source_probe")
        if p:
            out.append("| %s | %s (%s) | %s (%s) |" % (
                m, _f(p["tb"]["balanced_accuracy"]), _f(p["tb"]["chance"]),
                _f(p["non_tb"]["balanced_accuracy"]), _f(p["non_tb"]["chance"])))
    for part in PARTS:
        out += ["", "### NIH findings against No Finding (%s part)" % part, "",
                "| finding | positives / No Finding | " + " | ".join(
                    "%s AUC (95%% CI)" % m for m in models) + " | baseline AUC |",
                "| --- | --- | " + " | ".join("---" for _ in models) + " | --- |"]
        for f in L.NIH_FINDINGS + ["mean"]:
            r0 = results[models[0]]["nih/" + part][f]
            cells = [(_f(results[m]["nih/" + part][f]["auc"]) +
                      ("" if f == "mean" else " (%s)" % _ci(results[m]["nih/" + part][f]["ci"])))
                     for m in models]
            count = "" if f == "mean" else "%d / %d" % (r0["positives"], r0["negatives"])
            out.append("| %s | %s | %s | %s |" % (f, count, " | ".join(cells),
                                                  _f(r0["baseline_auc"])))
        out += ["", "### Pointing game (%s part)" % part, "",
                "Share of positive images whose class-map maximum lies in a box (TBX11K boxes for "
                "TB, NIH's boxes for the others), against the best fixed map cell chosen on the "
                "training images' boxes, and against the other images' boxes.", "",
                "| finding | images | " + " | ".join(
                    "%s: map / fixed cell / other images" % m for m in models) + " |",
                "| --- | --- | " + " | ".join("---" for _ in models) + " |"]
        games = results[models[0]]["pointing/" + part] if models else {}
        for f in games:
            cells = []
            for m in models:
                g = results[m]["pointing/" + part].get(f)
                cells.append("n/a" if g is None else "%s / %s / %s" % (
                    _f(g["pointing"]["value"]), _f(g["fixed_cell"]), _f(g["other_images"])))
            out.append("| %s | %d | %s |" % (f, games[f]["images"], " | ".join(cells)))
    return "\n".join(out) + "\n"


def _section_head(title, caption, columns):
    """A markdown section: title, caption and the head of a table of findings by columns."""
    return ["", "### " + title, "", caption, "", "| finding | " + " | ".join(columns) + " |",
            "| --- | " + " | ".join("---" for _ in columns) + " |"]


def findings_on_normals_markdown(results, models):
    models = [m for m in models if "findings_on_normals" in results[m]]
    if not models:
        return []
    groups = ["NIH No Finding/report", "da normal/report", "db normal/report"]
    out = _section_head(
        "Findings called present on normal radiographs (report part)",
        "Share of normal radiographs with the finding called present at each model's "
        "operating points (a checkpoint's chosen by `thresholds.py`'s rule on the select "
        "part): NIH `No Finding`, and the normals of `da` and `db`, machines no network here "
        "trained on. The safe-answers rule aims at 0.10 per finding.",
        ["%s: NIH / da / db" % m for m in models])
    first = results[models[0]]["findings_on_normals"]
    out.append("| normals (NIH / da / db) | %s |" % " | ".join(
        " / ".join("%d" % first[g]["images"] for g in groups) for _ in models))
    for f in L.NIH_FINDINGS + ["any"]:
        cells = []
        for m in models:
            r = results[m]["findings_on_normals"]
            vals = [r[g]["any"] if f == "any" else r[g]["findings"].get(f) for g in groups]
            cells.append("off" if vals[0] is None else " / ".join(_f(v, 2) for v in vals))
        out.append("| %s | %s |" % ("any finding" if f == "any" else f, " | ".join(cells)))
    if all("NIH sensitivity/report" in results[m]["findings_on_normals"] for m in models):
        out.append("| NIH report positives called present, mean over findings | %s |" % " | ".join(
            _f(results[m]["findings_on_normals"]["NIH sensitivity/report"]["mean"])
            for m in models))
    return out


def normals_shift_markdown(results, models):
    models = [m for m in models if "normals_shift" in results[m]]
    if not models:
        return []
    out = _section_head(
        "How far the findings move on other machines' normals",
        "AUC of the `da` and `db` normals against NIH `No Finding` images, per finding, on "
        "each part (0.5: a normal scores alike whichever machine took it).",
        ["%s: select / report" % m for m in models])
    shift = results[models[0]]["normals_shift"]
    out.append("| normals (NIH / da + db) | %s |" % " | ".join(
        " / ".join("%d + %d" % tuple(shift[p]["images"]) for p in PARTS) for _ in models))
    for f in L.NIH_FINDINGS + ["mean"]:
        out.append("| %s | %s |" % (f, " | ".join(
            " / ".join(_f(results[m]["normals_shift"][p][f]) for p in PARTS) for m in models)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/cxr")
    ap.add_argument("--samesource", default="../shared/data/cxr-tb-samesource")
    ap.add_argument("--work", default="build/evidence")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                    help="a contract .onnx model, a training checkpoint .pt, or checkpoints "
                    "of consecutive seeds joined by '+' (their ensemble; repeatable)")
    ap.add_argument("--add", action="store_true", help="keep the models of the work folder's "
                    "evidence.json (same data and split) and add or replace these")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    folder = D.Folder(args.data, os.path.join(args.work, "cache"), split="v2")
    ss = SameSource(args.samesource)
    base = baseline_scores(folder, ss)
    # the baseline's NIH AUCs sit beside each model's in its nih/* tables
    results = {"baseline": evaluate_baseline(folder, ss, base)}
    kept = os.path.join(args.work, "evidence.json")
    if args.add and os.path.exists(kept):
        with open(kept) as fh:
            results = dict(json.load(fh), baseline=results["baseline"])
    base_rows = {f: base[f] for f in L.NIH_FINDINGS}
    for spec in args.model:
        name, path = spec.split("=", 1)
        scorer = load_scorer(path)
        results[name] = evaluate_model(scorer, folder, ss, base_rows)
        print("%s: %s" % (name, json.dumps(results[name]["tb_samesource"])), flush=True)
    os.makedirs(args.work, exist_ok=True)
    E.write_json(os.path.join(args.work, "evidence.json"), results)
    with open(os.path.join(args.work, "evidence.md"), "w") as fh:
        fh.write(markdown(results))
    return 0


def load_scorer(path):
    if path.endswith(".onnx"):
        return OnnxScorer(path)
    import train as T
    model, cfg = T.load_model(path)
    import contract
    return CheckpointScorer(model, json.loads(contract.preprocess_json(
        cfg["size"], cfg["size"], D.PIXEL_SCALE, D.PIXEL_OFFSET, cfg["input_equalize"])))


if __name__ == "__main__":
    import heap
    heap.keep_freed_memory()
    sys.exit(main())
