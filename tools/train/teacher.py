"""Soft targets from a teacher (train.py settings teacher, teacher_weight; docs/training.md):
the nine NIH findings' labels of the NIH training images mixed with a stronger model's
probabilities, which say how sure each of NIH's report-mined labels is."""
import csv
import os

import numpy as np

import data as D
import labels as L

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def nih_training_rows(folder):
    return np.flatnonzero(~folder.is_val & np.isin(folder.dataset, D.NIH_ALL))


def teacher_probs(folder, rows, spec):
    """The nine NIH findings' probabilities of the teacher `spec` on the folder's images
    `rows`, each whole image scored once as cxrd would: a contract ONNX model (its calibrated
    probabilities) or checkpoints as train.load_model reads them (paths from the repository
    root); or a CSV of them (file and the nine findings, as --write-teacher writes it), which
    travels where the models are too large to."""
    if spec.endswith(".csv"):
        with open(os.path.join(ROOT, spec)) as fh:
            table = {r["file"]: [float(r[f]) for f in L.NIH_FINDINGS]
                     for r in csv.DictReader(fh)}
        missing = [folder.files[i] for i in rows if folder.files[i] not in table]
        if missing:
            raise SystemExit("%s: no row for %d training images, e.g. %s" % (
                spec, len(missing), missing[0]))
        return np.array([table[folder.files[i]] for i in rows], np.float32)
    import evidence
    scorer = evidence.load_scorer("+".join(os.path.join(ROOT, p) for p in spec.split("+")))
    probs, _, _ = scorer(evidence.network_inputs(folder.root, [folder.files[i] for i in rows],
                                                 scorer.preprocess))
    return probs[:, [L.INDEX[f] for f in L.NIH_FINDINGS]]


def write_teacher(path, folder, cfg):
    """The CSV of teacher_probs for the NIH training images of cfg's split."""
    rows = nih_training_rows(folder)
    probs = teacher_probs(folder, rows, cfg["teacher"])
    with open(path + ".tmp", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["file"] + L.NIH_FINDINGS)
        for i, p in zip(rows, probs):
            out.writerow([folder.files[i]] + ["%.6f" % v for v in p])
    os.replace(path + ".tmp", path)


def teacher_targets(folder, cfg):
    """The training targets, the nine NIH findings of the NIH training images mixed with the
    teacher's probabilities (settings teacher, teacher_weight w): (1 - w) * label + w * p,
    computed once before training."""
    weight = cfg.get("teacher_weight", 0.0)
    targets = folder.targets.copy()
    if weight <= 0:
        return targets
    rows = nih_training_rows(folder)
    cols = [L.INDEX[f] for f in L.NIH_FINDINGS]
    probs = teacher_probs(folder, rows, cfg["teacher"])
    targets[np.ix_(rows, cols)] = (1 - weight) * targets[np.ix_(rows, cols)] + weight * probs
    return targets
