"""What a stronger model (train.py setting teacher; docs/training.md) teaches a training run:
soft targets (teacher_weight), the nine NIH findings' labels of the NIH training images mixed
with its probabilities, which say how sure each of NIH's report-mined labels is; and TB lesion
cells (tb_pseudo_weight) on the TB images that have no boxes, from its TB class map."""
import os

import numpy as np

import data as D
import labels as L

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def nih_training_rows(folder):
    return np.flatnonzero(~folder.is_val & np.isin(folder.dataset, D.NIH_ALL))


def load_teacher(spec):
    """A scorer (evidence.load_scorer) of the teacher: a contract ONNX model or checkpoints
    as train.load_model reads them, paths from the repository root."""
    import evidence
    return evidence.load_scorer("+".join(os.path.join(ROOT, p) for p in spec.split("+")))


def from_table(spec, key, folder, rows):
    """The rows of the table `spec` (written by write_teacher) under `key` for the images
    `rows`, by file name."""
    with np.load(os.path.join(ROOT, spec)) as table:
        index = {f: k for k, f in enumerate(table[key + "_files"])}
        missing = [folder.files[i] for i in rows if folder.files[i] not in index]
        if missing:
            raise SystemExit("%s: no %s for %d training images, e.g. %s" % (
                spec, key, len(missing), missing[0]))
        return table[key][[index[folder.files[i]] for i in rows]]


def score(spec, folder, rows):
    """The teacher's probabilities and class maps on the images `rows` (each whole image
    scored once as cxrd would), and its scorer."""
    import evidence
    scorer = load_teacher(spec)
    probs, cams, _ = scorer(evidence.network_inputs(
        folder.root, [folder.files[i] for i in rows], scorer.preprocess))
    return probs, cams, scorer


def teacher_probs(folder, rows, spec):
    """The nine NIH findings' probabilities of the teacher `spec` on the folder's images
    `rows`, each whole image scored once as cxrd would: a contract ONNX model (its calibrated
    probabilities), checkpoints, or a table of them (.npz, as --write-teacher writes it), which
    travels where the models are too large to."""
    if spec.endswith(".npz"):
        return from_table(spec, "nih_probs", folder, rows)
    return score(spec, folder, rows)[0][:, [L.INDEX[f] for f in L.NIH_FINDINGS]]


def tb_cells(folder, rows, spec):
    """The TB probability of each cell of the teacher's TB class map (map + the TB bias,
    before Platt scaling) on the images `rows`: [len(rows), h, w], from checkpoints, a
    contract ONNX model (its initializer `bias`) or their table."""
    if spec.endswith(".npz"):
        return from_table(spec, "tb_cells", folder, rows)
    _, cams, scorer = score(spec, folder, rows)
    tb = L.INDEX["Tuberculosis"]
    bias = onnx_bias(spec)[tb] if spec.endswith(".onnx") else float(scorer.model.bias[tb])
    return 1 / (1 + np.exp(-(cams[:, tb] + bias)))


def onnx_bias(spec):
    """The classifier's bias of a contract ONNX model, added to the pooled map before Platt
    scaling (tools/export/contract.py)."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(os.path.join(ROOT, spec)).graph
    found = [numpy_helper.to_array(t) for t in graph.initializer if t.name == "bias"]
    if not found:
        raise SystemExit("%s: no initializer `bias` (not a contract model?)" % spec)
    return found[0]


def write_teacher(path, folder, cfg):
    """The table (.npz) of what cfg's teacher gives the training images of cfg's split:
    teacher_probs of the NIH images, tb_cells of the TB images without boxes."""
    spec = cfg["teacher"]
    nih = nih_training_rows(folder)
    tb = tb_pseudo_rows(folder, np.flatnonzero(~folder.is_val))
    table = {"nih_probs_files": np.array([folder.files[i] for i in nih]),
             "nih_probs": teacher_probs(folder, nih, spec).astype(np.float32),
             "tb_cells_files": np.array([folder.files[i] for i in tb]),
             "tb_cells": tb_cells(folder, tb, spec).astype(np.float32)}
    with open(path + ".tmp", "wb") as fh:
        np.savez_compressed(fh, **table)
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
    """lesion_masks of the images `rows` from the teacher's tb_cells."""
    import torch
    if len(rows) == 0:
        return torch.zeros(0, D.CACHE_SIDE, D.CACHE_SIDE, dtype=torch.uint8), np.zeros(0, bool)
    return lesion_masks(torch.from_numpy(tb_cells(folder, rows, spec)))


def tb_pseudo_labels(folder, cfg):
    """The lesion masks of the setting tb_pseudo_weight, computed once before training: the
    rows of the TB training images without boxes where the teacher sees a lesion, and their
    masks (none when the setting is off). An image where it sees none teaches nothing: its
    lesion was missed, so its clear cells are not trusted either."""
    import torch
    rows = np.zeros(0, np.int64)
    if cfg.get("tb_pseudo_weight", 0.0) > 0 and cfg.get("tb_loss", "image") == "lesion":
        rows = tb_pseudo_rows(folder, np.flatnonzero(~folder.is_val))
    masks, has_lesion = tb_pseudo_masks(folder, rows, cfg["teacher"])
    return rows[has_lesion], masks[torch.from_numpy(has_lesion)]
