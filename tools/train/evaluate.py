"""Validation of a trained model on the held-out split: NIH findings against the trivial
baseline, the TB heatmap pointing game against its controls, TB AUC per source pair, Platt
calibration with cross-fitted ECE, operating thresholds, leave-one-source-out, and the export
of the calibrated model with its metadata and model card."""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import contract
import data as D
import labels as L

TB = L.INDEX["Tuberculosis"]
CALC = L.INDEX["Calcification"]
SEED = 6
BOOT = 2000


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@torch.no_grad()
def predict(model, x, batch=64):
    """x: float32 [N,1,H,W] -> logits (before Platt) [N,K], cams [N,K,h,w]."""
    model.eval()
    logits, cams = [], []
    for i in range(0, len(x), batch):
        cam, lg = model.cam_and_logits(torch.from_numpy(x[i:i + batch]))
        logits.append(lg.numpy())
        cams.append(cam.numpy())
    return np.concatenate(logits), np.concatenate(cams)


def rank_auc(pos_scores, neg_scores):
    """AUC as the Mann-Whitney statistic (ties count one half); rows of 2-D inputs are
    separate resamples."""
    pos_scores = np.atleast_2d(pos_scores)
    neg_scores = np.atleast_2d(neg_scores)
    neg_sorted = np.sort(neg_scores, 1)
    out = np.empty(len(pos_scores))
    for r in range(len(pos_scores)):
        lo = np.searchsorted(neg_sorted[r], pos_scores[r], "left")
        hi = np.searchsorted(neg_sorted[r], pos_scores[r], "right")
        out[r] = (lo + 0.5 * (hi - lo)).sum()
    return out / (pos_scores.shape[1] * neg_scores.shape[1])


def auc_ci(y, s, rng, n=BOOT):
    """AUC with a stratified percentile bootstrap 95% CI."""
    y = np.asarray(y)
    s = np.asarray(s, np.float64)
    if len(set(y.tolist())) < 2:
        return float("nan"), float("nan"), float("nan")  # undefined without both classes
    auc = roc_auc_score(y, s)
    ps, ns = s[y == 1], s[y == 0]
    vals = rank_auc(ps[rng.randint(0, len(ps), (n, len(ps)))],
                    ns[rng.randint(0, len(ns), (n, len(ns)))])
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(auc), float(lo), float(hi)


def auc_difference_ci(y, s1, s2, seed=SEED, n=BOOT):
    """Paired stratified bootstrap 95% CI of AUC(s1) - AUC(s2): both scores on the same
    resampled images, so what they share does not widen the interval."""
    rng = np.random.RandomState(seed)
    y = np.asarray(y)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    pi = pos[rng.randint(0, len(pos), (n, len(pos)))]
    ni = neg[rng.randint(0, len(neg), (n, len(neg)))]
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    d = rank_auc(s1[pi], s1[ni]) - rank_auc(s2[pi], s2[ni])
    return np.percentile(d, [2.5, 97.5]).tolist()


def baseline_features(u8_256):
    """The trivial model's input: 16x16 area-averaged thumbnail plus a 32-bin grey histogram."""
    n = len(u8_256)
    thumb = u8_256.reshape(n, 16, 16, 16, 16).mean((2, 4)).reshape(n, -1) / 255.0
    hist = np.stack([np.bincount(im.ravel() // 8, minlength=32) for im in u8_256]) / (256.0 * 256)
    return np.concatenate([thumb, hist], 1)


def baseline_model():
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))


def nih_findings(folder, val_logits, val_idx):
    """Per mapped NIH finding: AUC of finding-positive vs `No Finding` validation images, for
    the network and for the trivial baseline trained on the training split (positives vs No
    Finding, the same contrast)."""
    rng = np.random.RandomState(SEED)
    feats = baseline_features(folder.images)
    nih = np.isin(folder.dataset, D.NIH_SETS)
    nofind = np.array([r == "No Finding" for r in folder.nih_raw])
    pos_of = {i: k for k, i in enumerate(val_idx)}
    out = {}
    for f in L.NIH_FINDINGS:
        k = L.INDEX[f]
        pos = nih & (folder.targets[:, k] == 1)
        tr = np.flatnonzero(~folder.is_val & (pos | nofind))
        va = np.flatnonzero(folder.is_val & (pos | nofind))
        y_tr, y_va = pos[tr].astype(int), pos[va].astype(int)
        net = val_logits[[pos_of[i] for i in va], k]
        base = (baseline_model().fit(feats[tr], y_tr).decision_function(feats[va])
                if 0 < y_tr.sum() < len(y_tr) else np.zeros(len(va)))
        a, lo, hi = auc_ci(y_va, net, rng)
        b, blo, bhi = auc_ci(y_va, base, rng)
        out[f] = {"auc": a, "ci": [lo, hi], "baseline_auc": b, "baseline_ci": [blo, bhi],
                  "difference_ci": (auc_difference_ci(y_va, net, base)
                                    if 0 < y_va.sum() < len(y_va) else [float("nan")] * 2),
                  "positives": int(y_va.sum()), "negatives": int((1 - y_va).sum()),
                  "train_positives": int(y_tr.sum()), "validated": bool(y_va.sum() >= 20)}
    out_mean = {"auc": float(np.nanmean([v["auc"] for v in out.values()])),
                "baseline_auc": float(np.nanmean([v["baseline_auc"] for v in out.values()]))}
    return out, out_mean


def tb_sources(folder, val_logits, val_idx):
    """TB AUC of each TB collection against each non-TB collection (validation images), the
    within-collection lundis_course_tb check, and the trivial baseline on the same pairs."""
    rng = np.random.RandomState(SEED)
    feats = baseline_features(folder.images)
    tr = np.flatnonzero(~folder.is_val)
    base_all = baseline_model().fit(feats[tr], folder.targets[tr, TB]).decision_function(
        feats[val_idx])
    ds = folder.dataset[val_idx]
    tb = folder.targets[val_idx, TB]
    s = val_logits[:, TB]
    pairs = []
    tb_sets = sorted(set(ds[tb == 1]))
    non_sets = sorted(set(ds[tb == 0]))
    for a in tb_sets:
        for b in non_sets:
            sel = ((ds == a) & (tb == 1)) | ((ds == b) & (tb == 0))
            auc, lo, hi = auc_ci(tb[sel], s[sel], rng, 500)
            pairs.append({"tb_source": a, "non_tb_source": b, "auc": auc, "ci": [lo, hi],
                          "baseline_auc": auc_ci(tb[sel], base_all[sel], rng, 1)[0],
                          "tb_n": int(((ds == a) & (tb == 1)).sum()),
                          "non_tb_n": int(((ds == b) & (tb == 0)).sum())})
    auc, lo, hi = auc_ci(tb, s, rng, 500)
    return {"pairs": pairs, "overall": {"auc": auc, "ci": [lo, hi],
            "baseline_auc": float(roc_auc_score(tb, base_all)),
            "tb_n": int(tb.sum()), "non_tb_n": int((1 - tb).sum())}}


def _hit(px, py, boxes):
    return any(x0 <= px <= x1 and y0 <= py <= y1 for x0, y0, x1, y1 in boxes)


def pointing_game(folder, val_cams, val_idx):
    """Share of TBX11K validation images whose TB class-map maximum (map upsampled bilinearly to
    the 256x256 image) lies inside a lesion box, against three controls: the box-area fraction
    (chance for a random point), the best fixed map cell chosen on the training images' boxes,
    and each image's maximum scored against the other validation images' boxes."""
    side = D.CACHE_SIDE
    val_b = [(j, folder.boxes[folder.files[i]]) for j, i in enumerate(val_idx)
             if folder.files[i] in folder.boxes]
    train_b = [folder.boxes[folder.files[i]] for i in np.flatnonzero(~folder.is_val)
               if folder.files[i] in folder.boxes]
    h, w = val_cams.shape[2:]
    points = []
    for j, _ in val_b:
        up = F.interpolate(torch.from_numpy(val_cams[j:j + 1, TB:TB + 1]), size=(side, side),
                           mode="bilinear", align_corners=False)[0, 0].numpy()
        y, x = np.unravel_index(np.argmax(up), up.shape)
        points.append((x + 0.5, y + 0.5))
    hits = np.array([_hit(px, py, b) for (px, py), (_, b) in zip(points, val_b)], float)
    area = np.mean([D.box_mask(b).mean() for _, b in val_b])
    # fixed cell: centre of map cell (r, c) in image pixels
    centres = [((c + 0.5) * side / w, (r + 0.5) * side / h) for r in range(h) for c in range(w)]
    train_rate = [np.mean([_hit(cx, cy, b) for b in train_b]) for cx, cy in centres]
    best = int(np.argmax(train_rate))
    fixed = np.array([_hit(*centres[best], b) for _, b in val_b], float)
    n = len(val_b)
    other = np.mean([_hit(px, py, val_b[k][1]) for j, (px, py) in enumerate(points)
                     for k in range(n) if k != j])
    rng = np.random.RandomState(SEED)
    boot = [(hits[idx].mean(), hits[idx].mean() - fixed[idx].mean())
            for idx in (rng.randint(0, n, n) for _ in range(BOOT))]
    boot = np.array(boot)
    return {"images": n, "pointing": float(hits.mean()),
            "pointing_ci": np.percentile(boot[:, 0], [2.5, 97.5]).tolist(),
            "box_area_fraction": float(area),
            "fixed_cell": {"cell": [best // w, best % w], "map": [h, w],
                           "train_rate": float(train_rate[best]), "val_rate": float(fixed.mean())},
            "other_image_boxes": float(other),
            "margin_over_fixed_cell": float(hits.mean() - fixed.mean()),
            "margin_ci": np.percentile(boot[:, 1], [2.5, 97.5]).tolist()}


def ece(y, p, bins=10):
    """Expected calibration error, equal-width bins."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(y[sel].mean() - p[sel].mean())
    return float(total)


def platt_fit(logit, y):
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(logit.reshape(-1, 1), y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def tb_threshold(p, y, sensitivity=0.9):
    """Highest threshold whose sensitivity (p >= t) is at least `sensitivity`."""
    pos = np.sort(p[y == 1])[::-1]
    k = int(np.ceil(sensitivity * len(pos)))
    return float(pos[k - 1])


def youden_threshold(p, y):
    best, t_best = -1.0, 0.5
    for t in np.unique(p):
        j = (p[y == 1] >= t).mean() - (p[y == 0] >= t).mean()
        if j > best:
            best, t_best = j, float(t)
    return t_best


def sens_spec(p, y, t):
    return float((p[y == 1] >= t).mean()), float((p[y == 0] < t).mean())


def calibrate(folder, val_logits, val_idx):
    """Per finding: Platt scaling fitted on validation (shipped), ECE before and after measured
    by 2-fold cross-fitting (fit on one half, score the other), thresholds on the calibrated
    probabilities (TB: >= 90% sensitivity, others: Youden's J), and TB sensitivity/specificity
    at a threshold chosen on the other half (cross-fitted: no optimism from reuse)."""
    rng = np.random.RandomState(SEED)
    out = {}
    for f in L.FINDINGS:
        k = L.INDEX[f]
        lab = folder.mask[val_idx, k] == 1
        if f == "Calcification" or lab.sum() == 0:
            out[f] = {"trained": False, "platt_scale": 0.0, "platt_offset": -10.0,
                      "threshold": 1.0}
            continue
        z = val_logits[lab, k]
        y = folder.targets[val_idx, k][lab].astype(int)
        a, c = platt_fit(z, y)
        p = sigmoid(a * z + c)
        # stratified halves: each holds about half of the positives and of the negatives
        fold = np.zeros(len(z), bool)
        for cls in (0, 1):
            members = np.flatnonzero(y == cls)
            fold[rng.permutation(members)[::2]] = True
        p_cross = np.full_like(p, np.nan)
        t_cross = np.full_like(p, np.nan)
        for part in (fold, ~fold):
            if len(set(y[~part])) < 2:
                continue  # too few positives to cross-fit: those figures stay NaN
            a2, c2 = platt_fit(z[~part], y[~part])
            p_cross[part] = sigmoid(a2 * z[part] + c2)
            p_other = sigmoid(a2 * z[~part] + c2)
            t_cross[part] = (tb_threshold(p_other, y[~part]) if f == "Tuberculosis"
                             else youden_threshold(p_other, y[~part]))
        t = tb_threshold(p, y) if f == "Tuberculosis" else youden_threshold(p, y)
        sens, spec = sens_spec(p, y, t)
        done = ~np.isnan(p_cross)
        y_d, p_d, hit = y[done], p_cross[done], (p_cross >= t_cross)[done]
        out[f] = {"trained": True, "platt_scale": a, "platt_offset": c, "threshold": t,
                  "n": int(len(y)), "positives": int(y.sum()),
                  "ece_raw": ece(y, sigmoid(z)),
                  "ece_platt_crossfit": ece(y_d, p_d) if done.any() else float("nan"),
                  "sensitivity": sens, "specificity": spec,
                  "sensitivity_crossfit": float(hit[y_d == 1].mean()) if done.any() else
                  float("nan"),
                  "specificity_crossfit": float((~hit[y_d == 0]).mean()) if done.any() else
                  float("nan"),
                  "scope": "all validation images" if f == "Tuberculosis"
                  else "NIH validation images"}
    return out


def tb_at_threshold(folder, val_logits, val_idx, cal):
    """Sensitivity per TB collection and specificity per non-TB collection at the TB threshold."""
    c = cal["Tuberculosis"]
    p = sigmoid(c["platt_scale"] * val_logits[:, TB] + c["platt_offset"])
    ds = folder.dataset[val_idx]
    tb = folder.targets[val_idx, TB]
    out = {}
    for d in sorted(set(ds)):
        for cls in (0, 1):
            sel = (ds == d) & (tb == cls)
            if sel.any():
                hit = (p[sel] >= c["threshold"]).mean()
                out["%s (%s)" % (d, "TB" if cls else "non-TB")] = {
                    "n": int(sel.sum()), "sensitivity" if cls else "specificity":
                    float(hit if cls else 1 - hit)}
    return out


def calibrate_tb_samesource(model, cfg, root):
    """TB Platt scaling and the >= 90% sensitivity threshold from the select halves of the
    same-source sets (`da`, `db`: TB and normal from one machine each), as lesion_head.py does
    for 1.5, with 2-fold cross-fitted figures; and the same-source TB table at that threshold
    (both halves, the report half untouched by the choice). Returns (calibration entry,
    table)."""
    import evidence as V
    import lesion_head
    ss = V.SameSource(root)
    x = V.network_inputs(ss.root, ss.files, json.loads(contract.preprocess_json(
        cfg["size"], cfg["size"], D.PIXEL_SCALE, D.PIXEL_OFFSET, cfg["input_equalize"])))
    z = predict(model, x)[0][:, TB]
    sel = ss.role == "select"
    zs, y = z[sel], ss.tb[sel]
    a, c = lesion_head.platt(zs, y)
    t = V.tb_threshold(sigmoid(a * zs + c), y)
    sens, spec = sens_spec(sigmoid(a * zs + c), y, t)
    rng = np.random.RandomState(SEED)
    fold = np.zeros(len(y), bool)
    for cls in (0, 1):
        fold[rng.permutation(np.flatnonzero(y == cls))[::2]] = True
    p_cross, hit = np.zeros(len(y)), np.zeros(len(y), bool)
    for part in (fold, ~fold):
        a2, c2 = lesion_head.platt(zs[~part], y[~part])
        p_cross[part] = sigmoid(a2 * zs[part] + c2)
        hit[part] = p_cross[part] >= V.tb_threshold(sigmoid(a2 * zs[~part] + c2), y[~part])
    entry = {"trained": True, "platt_scale": a, "platt_offset": c, "threshold": t,
             "n": int(len(y)), "positives": int(y.sum()), "ece_raw": ece(y, sigmoid(zs)),
             "ece_platt_crossfit": ece(y, p_cross), "sensitivity": sens, "specificity": spec,
             "sensitivity_crossfit": float(hit[y == 1].mean()),
             "specificity_crossfit": float((~hit[y == 0]).mean()),
             "scope": "same-source select halves (da, db)"}
    return entry, V.tb_samesource(sigmoid(a * z + c), ss, t)


def validate(model, folder, cfg, samesource=None):
    """The held-out metrics. Split v2: Platt scaling and thresholds come from its "select" part
    only (the "report" part stays for reporting), TB's from the same-source select halves
    (`samesource`, the folder of tools/train/evidence.py); v1 as the 1.x models were made."""
    val_idx = np.flatnonzero(folder.is_val)
    x = folder.eval_inputs(val_idx, cfg["size"], cfg["input_equalize"])
    logits, cams = predict(model, x)
    nih, nih_mean = nih_findings(folder, logits, val_idx)
    v2 = cfg.get("split", "v1") == "v2"
    pick = folder.role[val_idx] == "select" if v2 else np.ones(len(val_idx), bool)
    cal = calibrate(folder, logits[pick], val_idx[pick])
    extra = {}
    if v2:
        cal["Tuberculosis"], extra["tb_samesource"] = calibrate_tb_samesource(
            model, cfg, samesource)
        extra["calibrated_on"] = "v2 select part; TB on the same-source select halves"
    m = {"nih_findings": nih, "nih_mean": nih_mean, "tb_sources": tb_sources(folder, logits,
         val_idx), "pointing": pointing_game(folder, cams, val_idx), "calibration": cal,
         "tb_at_threshold": tb_at_threshold(folder, logits, val_idx, cal),
         "counts": counts(folder), "cam_shape": list(cams.shape[2:])}
    m.update(extra)
    return m


def seed_check(model, folder, cfg, info):
    """NIH-finding AUCs of another model of the same recipe at other seeds: how much of a margin
    over the baseline the choice of seeds alone can move."""
    idx = np.flatnonzero(folder.is_val & np.isin(folder.dataset, D.NIH_SETS))
    logits, _ = predict(model, folder.eval_inputs(idx, cfg["size"], cfg["input_equalize"]))
    nih, mean = nih_findings(folder, logits, idx)
    return {"seeds": [i["seed"] for i in info.get("members", [dict(seed=cfg["seed"])])],
            "auc": {f: r["auc"] for f, r in nih.items()}, "nih_mean": mean["auc"]}


def counts(folder):
    out = {}
    for d in sorted(set(folder.dataset)):
        sel = folder.dataset == d
        out[d] = {"images": int(sel.sum()), "tb": int(folder.targets[sel, TB].sum()),
                  "validation": int((sel & folder.is_val).sum())}
    nih = np.isin(folder.dataset, D.NIH_SETS)
    out["nih_finding_positives"] = {
        f: {"train": int((nih & ~folder.is_val & (folder.targets[:, L.INDEX[f]] == 1)).sum()),
            "validation": int((nih & folder.is_val & (folder.targets[:, L.INDEX[f]] == 1)).sum())}
        for f in L.NIH_FINDINGS}
    out["nih_no_finding"] = {
        "train": int(sum(1 for i in np.flatnonzero(~folder.is_val)
                         if folder.nih_raw[i] == "No Finding")),
        "validation": int(sum(1 for i in np.flatnonzero(folder.is_val)
                              if folder.nih_raw[i] == "No Finding"))}
    return out


def loso_check(model, folder, cfg, leave_out):
    """TB AUC of a model trained without the TB images of `leave_out`: all that collection's TB
    images (none was seen) against the held-out (validation) non-TB images of each source."""
    rng = np.random.RandomState(SEED)
    tb_idx = np.flatnonzero((folder.dataset == leave_out) & (folder.targets[:, TB] == 1))
    neg_idx = np.flatnonzero(folder.is_val & (folder.targets[:, TB] == 0))
    idx = np.concatenate([tb_idx, neg_idx])
    logits, _ = predict(model, folder.eval_inputs(idx, cfg["size"], cfg["input_equalize"]))
    y = folder.targets[idx, TB]
    s = logits[:, TB]
    res = {"tb_images": int(len(tb_idx))}
    a, lo, hi = auc_ci(y, s, rng, 500)
    res["all_normals"] = {"auc": a, "ci": [lo, hi], "non_tb_n": int(len(neg_idx))}
    ds = folder.dataset[idx]
    for d in sorted(set(ds[y == 0])):
        sel = (y == 1) | (ds == d)
        a, lo, hi = auc_ci(y[sel], s[sel], rng, 500)
        res[d] = {"auc": a, "ci": [lo, hi], "non_tb_n": int(((ds == d) & (y == 0)).sum())}
    return res


def export(model, folder, cfg, metrics, out_dir, work, version, card):
    """Sets the Platt buffers, exports the ONNX with thresholds and calibration in
    metadata_props, writes the model card, and keeps parity fixtures (validation inputs and
    PyTorch probabilities) in the work folder."""
    cal = metrics["calibration"]
    model.platt_scale.copy_(torch.tensor([cal[f]["platt_scale"] for f in L.FINDINGS]))
    model.platt_offset.copy_(torch.tensor([cal[f]["platt_offset"] for f in L.FINDINGS]))
    model.eval()
    thresholds = {f: round(cal[f]["threshold"], 6) for f in L.FINDINGS}
    calibration = {f: {k: cal[f][k] for k in ("platt_scale", "platt_offset", "ece_raw",
                                               "ece_platt_crossfit") if k in cal[f]}
                   for f in L.FINDINGS}
    size = cfg["size"]
    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(out_dir, "cxr-default.onnx")
    card_path = os.path.join(out_dir, "MODEL_CARD.md")
    metrics["speed"] = torch_speed(model, size)
    text = card.render(metrics, version, thresholds)
    meta = contract.default_metadata(
        L.FINDINGS, thresholds,
        contract.preprocess_json(size, size, D.PIXEL_SCALE, D.PIXEL_OFFSET,
                                 cfg["input_equalize"]), version, text)
    meta["cxr.calibration"] = json.dumps(calibration, sort_keys=True)
    tmp = onnx_path + ".tmp"
    contract.export_onnx(model, tmp, size, size, meta)
    os.replace(tmp, onnx_path)
    with open(card_path + ".tmp", "w") as fh:
        fh.write(text)
    os.replace(card_path + ".tmp", card_path)
    # parity fixtures: the first 32 validation images of every collection, round-robin
    val_idx = np.flatnonzero(folder.is_val)
    pick = []
    for d in sorted(set(folder.dataset)):
        pick += list(val_idx[folder.dataset[val_idx] == d][:6])
    x = folder.eval_inputs(pick, size, cfg["input_equalize"])
    with torch.no_grad():
        p, c = model(torch.from_numpy(x))
    pdir = os.path.join(work, "parity")
    os.makedirs(pdir, exist_ok=True)
    np.save(os.path.join(pdir, "inputs.npy"), x)
    np.save(os.path.join(pdir, "probabilities.npy"), p.numpy())
    np.save(os.path.join(pdir, "cams.npy"), c.numpy())
    # the reference for tests/tools/check_default_model.py (PyTorch probabilities of the exported
    # model on images the test re-reads from the data folder)
    write_json(os.path.join(pdir, "reference.json"), {
        "model_version": version, "size": size,
        "files": [folder.files[i] for i in pick],
        "probabilities": [[float(v) for v in row] for row in p.numpy()]})
    write_json(os.path.join(work, "metrics.json"), metrics)


def torch_speed(model, size, reps=10):
    import time
    x = torch.zeros(1, 1, size, size)
    with torch.no_grad():
        model(x)
        t = time.perf_counter()
        for _ in range(reps):
            model(x)
    return {"pytorch_ms_per_forward": (time.perf_counter() - t) / reps * 1000,
            "threads": torch.get_num_threads(),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "input": [1, 1, size, size], "cpu": cpu_name()}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return "%s, %d CPUs" % (line.split(":", 1)[1].strip(), os.cpu_count())
    except OSError:
        pass
    return "CPU model unknown"
