"""The v2 split (issue 18): nested, so the recipe is chosen on one part of the held-out images
and reported on another that no choice touched.

Roles of the labelled folder's images:
- "train": what 1.x trained on (v1's training split), plus 20% of the NIH patients no 1.x
  model saw (so the new `nih_radsim` positives also train);
- "select": half of what is left (NIH by patient, every other collection by image within each
  TB class): recipe, seed and thresholds are chosen here;
- "report": the other half, only ever reported. 1.3 never saw it either, so the card can put
  1.3, the new model and the baseline side by side on it.

The same-source TB sets (`../shared/data/cxr-tb-samesource`) are never trained on: each of `da`
and `db` is split by image within each TB class into "select" and "report".
"""
import numpy as np

import data as D

SEED = 18
NIH_EXTRA_TRAIN = 0.2  # share of the unseen NIH patients that trains
SELECT_SHARE = 0.5  # of what does not train


def _halves(idx, rng, share=SELECT_SHARE):
    idx = idx[rng.permutation(len(idx))]
    k = int(round(share * len(idx)))
    return idx[:k], idx[k:]


def roles_v2(folder):
    rng = np.random.RandomState(SEED)
    role = np.where(folder.unseen_by_v1, "", "train").astype(object)
    nih = np.isin(folder.dataset, D.NIH_ALL)
    unseen = nih & folder.unseen_by_v1
    no_finding = {D.patient(folder.files[i]) for i in np.flatnonzero(unseen)
                  if folder.nih_raw[i] == "No Finding"}
    patient_role = {}
    # patients with a No Finding study apart from the others, so that every part gets its
    # share of the negatives every NIH finding is measured against
    for stratum in (True, False):
        patients = sorted({D.patient(folder.files[i]) for i in np.flatnonzero(unseen)
                           if (D.patient(folder.files[i]) in no_finding) == stratum})
        perm = [patients[i] for i in rng.permutation(len(patients))]
        n_train = int(round(NIH_EXTRA_TRAIN * len(perm)))
        n_select = int(round(SELECT_SHARE * (len(perm) - n_train)))
        for k, p in enumerate(perm):
            patient_role[p] = ("train" if k < n_train else
                               "select" if k < n_train + n_select else "report")
    for i in np.flatnonzero(unseen):
        role[i] = patient_role[D.patient(folder.files[i])]
    for ds in sorted(set(folder.dataset) - set(D.NIH_ALL)):
        for cls in (0, 1):
            idx = np.flatnonzero((folder.dataset == ds) & folder.unseen_by_v1 &
                                 (folder.targets[:, 0] == cls))
            select, report = _halves(idx, rng)
            role[select] = "select"
            role[report] = "report"
    assert (role != "").all()
    return role.astype(str)


def samesource_roles(dataset, tb):
    """'select' or 'report' for each same-source image: halves within each (set, TB class)."""
    rng = np.random.RandomState(SEED)
    role = np.empty(len(dataset), object)
    for ds in sorted(set(dataset)):
        for cls in (0, 1):
            select, report = _halves(np.flatnonzero((dataset == ds) & (tb == cls)), rng)
            role[select] = "select"
            role[report] = "report"
    return role.astype(str)
