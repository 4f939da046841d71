"""Dataset adapters: each reads one label layout that sites hold and maps it onto the 11 findings
of the model contract, as (targets, mask) vectors; mask = 0 where the source does not label a
finding (the training loss ignores those). The label tables are in docs/training.md."""
import csv
import os
from dataclasses import dataclass, field

import numpy as np

FINDINGS = [
    "Tuberculosis", "Cardiomegaly", "Pleural Thickening", "Pleural Effusion", "Pneumothorax",
    "Consolidation", "Atelectasis", "Nodule Mass", "Fibrosis", "Infiltration", "Calcification",
]
INDEX = {name: i for i, name in enumerate(FINDINGS)}
K = len(FINDINGS)

# NIH ChestX-ray14 label -> contract finding. Pneumonia, Edema, Emphysema and Hernia have no
# contract finding; No Finding sets all nine mapped findings to 0.
NIH_MAP = {
    "Cardiomegaly": "Cardiomegaly",
    "Pleural_Thickening": "Pleural Thickening",
    "Effusion": "Pleural Effusion",
    "Pneumothorax": "Pneumothorax",
    "Consolidation": "Consolidation",
    "Atelectasis": "Atelectasis",
    "Nodule": "Nodule Mass",
    "Mass": "Nodule Mass",
    "Fibrosis": "Fibrosis",
    "Infiltration": "Infiltration",
}
NIH_FINDINGS = sorted(set(NIH_MAP.values()), key=FINDINGS.index)  # the nine mapped findings

# CheXpert / MIMIC-CXR (CheXpert labeler) column -> contract finding. "Lung Lesion" covers
# nodules and masses; "Pleural Other" includes pleural thickening (and other pleural changes).
CHEXPERT_MAP = {
    "Cardiomegaly": "Cardiomegaly",
    "Pleural Other": "Pleural Thickening",
    "Pleural Effusion": "Pleural Effusion",
    "Pneumothorax": "Pneumothorax",
    "Consolidation": "Consolidation",
    "Atelectasis": "Atelectasis",
    "Lung Lesion": "Nodule Mass",
}

# VinDr-CXR image_labels_train.csv column -> contract finding ("Other disease" etc. unmapped).
VINDR_MAP = {
    "Tuberculosis": "Tuberculosis",
    "Cardiomegaly": "Cardiomegaly",
    "Pleural thickening": "Pleural Thickening",
    "Pleural effusion": "Pleural Effusion",
    "Pneumothorax": "Pneumothorax",
    "Consolidation": "Consolidation",
    "Atelectasis": "Atelectasis",
    "Nodule/Mass": "Nodule Mass",
    "Pulmonary fibrosis": "Fibrosis",
    "Infiltration": "Infiltration",
    "Calcification": "Calcification",
}


@dataclass
class Record:
    """One image: path (relative to the dataset root), collection name, 11 targets, 11 mask
    values and the raw label text it came from."""
    file: str
    dataset: str
    targets: np.ndarray = field(default_factory=lambda: np.zeros(K, np.float32))
    mask: np.ndarray = field(default_factory=lambda: np.zeros(K, np.float32))
    raw: str = ""

    def set(self, finding, value):
        i = INDEX[finding]
        if self.mask[i] and self.targets[i] >= value:
            return  # several source labels map to one finding: positive wins
        self.targets[i] = value
        self.mask[i] = 1.0


def nih_record(file, dataset, findings_text):
    """NIH `Finding Labels` text ('A|B' or 'No Finding') -> Record with the nine mapped findings
    labelled (Tuberculosis and Calcification stay unlabelled)."""
    rec = Record(file, dataset, raw=findings_text)
    names = [s.strip() for s in findings_text.split("|") if s.strip()]
    for f in NIH_FINDINGS:
        rec.set(f, 0.0)
    for name in names:
        if name in NIH_MAP:
            rec.set(NIH_MAP[name], 1.0)
    return rec


def read_folder_labels(path):
    """This project's labels.csv (file, dataset, tb, nih_findings, ...): TB labelled for every
    image; the nine NIH findings for rows with nih_findings; Calcification never."""
    out = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            if r.get("nih_findings"):
                rec = nih_record(r["file"], r["dataset"], r["nih_findings"])
            else:
                rec = Record(r["file"], r["dataset"])
            if r["tb"] not in ("0", "1"):
                raise ValueError("labels.csv: bad tb value %r for %s" % (r["tb"], r["file"]))
            rec.set("Tuberculosis", float(r["tb"]))
            out.append(rec)
    return out


def read_nih(path, image_dir="images"):
    """NIH ChestX-ray14 Data_Entry_2017.csv (Image Index, Finding Labels, ...). NIH has no TB
    label, so Tuberculosis stays unlabelled."""
    out = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            out.append(nih_record(os.path.join(image_dir, r["Image Index"]), "nih",
                                  r["Finding Labels"]))
    return out


def read_tbx11k(root):
    """TBX11K layout: imgs/{health,sick,tb}/*.png, and optionally the lists
    lists/TBX11K_{train,val}.txt. health and sick (non-TB disease) are TB 0, tb is TB 1. Other
    findings are unlabelled (sick images have some disease, not named)."""
    out = []
    for sub, tb in (("health", 0.0), ("sick", 0.0), ("tb", 1.0)):
        d = os.path.join(root, "imgs", sub)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.lower().endswith((".png", ".jpg", ".jpeg")):
                rec = Record(os.path.join("imgs", sub, name), "tbx11k", raw=sub)
                rec.set("Tuberculosis", tb)
                out.append(rec)
    return out


def read_nlm(root):
    """NLM Shenzhen / Montgomery naming: CHNCXR_0001_0.png, MCUCXR_0001_1.png, the digit after
    the last underscore is 1 for TB and 0 for normal. Searches root and root/CXR_png."""
    out = []
    for d in (root, os.path.join(root, "CXR_png")):
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            stem, ext = os.path.splitext(name)
            if ext.lower() not in (".png", ".jpg", ".jpeg"):
                continue
            flag = stem.rsplit("_", 1)[-1]
            if flag not in ("0", "1"):
                continue
            dataset = "shenzhen" if stem.startswith("CHNCXR") else (
                "montgomery" if stem.startswith("MCUCXR") else "nlm")
            rec = Record(os.path.relpath(os.path.join(d, name), root), dataset, raw=flag)
            rec.set("Tuberculosis", float(flag))
            out.append(rec)
    return out


def read_chexpert(path, uncertain=None):
    """CheXpert / MIMIC-CXR style CSV: one column per label with 1 (positive), 0 (negative),
    -1 (uncertain) or blank (not mentioned). Path column: `Path` (CheXpert) or `path`, or
    subject_id/study_id/dicom_id (MIMIC). Blank is unlabelled; -1 is unlabelled unless
    uncertain is 0.0 or 1.0 (the U-Zeros / U-Ones policies). `No Finding` = 1 sets the mapped
    findings with blank cells to 0."""
    out = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            if r.get("Path") or r.get("path"):
                file = r.get("Path") or r.get("path")
            else:
                file = "p%s/s%s/%s.jpg" % (r["subject_id"], r["study_id"], r["dicom_id"])
            rec = Record(file, "chexpert")
            for col, finding in CHEXPERT_MAP.items():
                v = (r.get(col) or "").strip()
                if v == "":
                    continue
                v = float(v)
                if v == -1.0:
                    if uncertain is None:
                        continue
                    v = uncertain
                if v not in (0.0, 1.0):
                    raise ValueError("%s: bad value %r in column %s" % (path, r.get(col), col))
                rec.set(finding, v)
            if (r.get("No Finding") or "").strip() in ("1", "1.0"):
                for finding in CHEXPERT_MAP.values():
                    if not rec.mask[INDEX[finding]]:
                        rec.set(finding, 0.0)
            out.append(rec)
    return out


def read_vindr(path, image_dir="train", ext=".png"):
    """VinDr-CXR image_labels_train.csv: image_id, rad_id, then one 0/1 column per label; each
    image is read by three radiologists. A finding is positive when any reader marked it (as
    VinDr's own test labels were made by consensus, majority would also be defensible)."""
    by_image = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            rec = by_image.get(r["image_id"])
            if rec is None:
                rec = by_image[r["image_id"]] = Record(
                    os.path.join(image_dir, r["image_id"] + ext), "vindr")
            for col, finding in VINDR_MAP.items():
                if col in r and r[col].strip() != "":
                    rec.set(finding, float(r[col]))
    return [by_image[k] for k in sorted(by_image)]


def label_table_markdown():
    """The mapping tables above, for the docs and the model card."""
    lines = ["| finding | labels.csv | NIH | CheXpert/MIMIC | VinDr-CXR | TBX11K | NLM |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for f in FINDINGS:
        nih = " + ".join(sorted(k for k, v in NIH_MAP.items() if v == f)) or "—"
        chex = " + ".join(sorted(k for k, v in CHEXPERT_MAP.items() if v == f)) or "—"
        vin = " + ".join(sorted(k for k, v in VINDR_MAP.items() if v == f)) or "—"
        tb = "tb column" if f == "Tuberculosis" else ("nih_findings as NIH" if nih != "—"
                                                     else "—")
        tbx = "imgs/tb = 1; health, sick = 0" if f == "Tuberculosis" else "—"
        nlm = "`_1` = 1, `_0` = 0" if f == "Tuberculosis" else "—"
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (f, tb, nih, chex, vin, tbx, nlm))
    return "\n".join(lines)
