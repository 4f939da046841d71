"""What a stronger model (train.py setting teacher; docs/training.md) teaches a training run:
soft targets (teacher_weight), the nine NIH findings' labels of the NIH training images mixed
with its probabilities, which say how sure each of NIH's report-mined labels is; and TB lesion
cells (tb_pseudo_weight) on the TB images that have no boxes, from its TB class map."""
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


# Lesion cells from the teacher's TB class map (setting tb_pseudo_weight). The cut-offs were
# read off 2.4's map on its own TBX11K training boxes (docs/training.md): cells at or above
# PSEUDO_LESION lay inside a box in 95% of cases, cells at or below PSEUDO_CLEAR held 3.7% of
# the boxes' cells. Cells between are left out, as cells partly covered by a box are.
PSEUDO_LESION = 0.7
PSEUDO_CLEAR = 0.05
# mask value (of 255) of the cells left out: a cover above 0 and under the lesion loss's
# quarter, so lesion_targets gives them no weight
PSEUDO_UNSURE = 25


def tb_pseudo_rows(folder, train_idx):
    """The TB training images without TBX11K boxes: the other collections' TB images."""
    return np.array([i for i in train_idx if folder.targets[i, L.INDEX["Tuberculosis"]] == 1
                     and folder.files[i] not in folder.boxes], np.int64)


def lesion_masks(cell):
    """Masks of the lesion loss from a teacher's TB cell probabilities (torch [N, h, w]),
    each cell stretched over its part of the 256-px image: uint8 [N, 256, 256], 255 where
    the probability is at least PSEUDO_LESION, PSEUDO_UNSURE where it is above PSEUDO_CLEAR,
    0 elsewhere; and whether each image has a lesion cell at all."""
    import torch
    import torch.nn.functional as F
    big = F.interpolate(cell[:, None].float(), size=(D.CACHE_SIDE, D.CACHE_SIDE),
                        mode="nearest")[:, 0]
    masks = torch.where(big >= PSEUDO_LESION, 255,
                        torch.where(big > PSEUDO_CLEAR, PSEUDO_UNSURE, 0)).to(torch.uint8)
    return masks, (cell >= PSEUDO_LESION).flatten(1).any(1).numpy()


def tb_pseudo_masks(folder, rows, spec):
    """lesion_masks of the images `rows` from the TB class map of the teacher `spec`
    (checkpoints, as train.load_model reads them; the probability is of the map + the TB bias,
    before Platt scaling). An image where the teacher sees no lesion teaches nothing: its
    lesion was missed, so its clear cells are not trusted either."""
    import torch
    import evidence
    if spec.endswith(".onnx") or spec.endswith(".csv"):
        raise SystemExit("tb_pseudo_weight: the teacher must be checkpoints (the map's bias)")
    if len(rows) == 0:
        return torch.zeros(0, D.CACHE_SIDE, D.CACHE_SIDE, dtype=torch.uint8), np.zeros(0, bool)
    scorer = evidence.load_scorer("+".join(os.path.join(ROOT, p) for p in spec.split("+")))
    tb = L.INDEX["Tuberculosis"]
    _, cams, _ = scorer(evidence.network_inputs(folder.root, [folder.files[i] for i in rows],
                                                scorer.preprocess))
    return lesion_masks(torch.sigmoid(torch.from_numpy(cams[:, tb]) +
                                      float(scorer.model.bias[tb])))
