"""The images the input gate is fitted and measured on: chest radiographs of the labelled folder
(its train/validation split), the same images made into non-radiographs (rotated by 90, 180 and
270 degrees, grey levels inverted, small crops), and every image of the DICOM corpus as cxrd
itself renders it (`cxrd render`), labelled chest or not from its tags."""
import hashlib
import os
import subprocess

import numpy as np
import pydicom
from PIL import Image

TRANSFORMS = ("rot90", "rot180", "rot270", "inverted", "crop")
CHEST_PARTS = {"CHEST", "THORAX", "LUNG", "TORAX", "THORAX PA", "CHEST PA"}


def resize(u8, side):
    """Area averaging to side x side (PIL BOX): the gate's 8-bit image sets (the network input
    resize is data.resize_like_cxrd)."""
    im = Image.fromarray(u8)
    return np.asarray(im.resize((side, side), Image.BOX), np.uint8)


def transform(u8, kind, rng):
    """One non-radiograph made from a chest radiograph."""
    if kind == "rot90":
        return np.ascontiguousarray(np.rot90(u8, 1))
    if kind == "rot180":
        return np.ascontiguousarray(np.rot90(u8, 2))
    if kind == "rot270":
        return np.ascontiguousarray(np.rot90(u8, 3))
    if kind == "inverted":
        return 255 - u8
    if kind == "crop":
        # a window of 30-50% of each side: a part of the chest, not a chest radiograph
        h, w = u8.shape
        fy, fx = rng.uniform(0.3, 0.5, 2)
        ch, cw = max(8, int(h * fy)), max(8, int(w * fx))
        y0, x0 = rng.randint(0, h - ch + 1), rng.randint(0, w - cw + 1)
        return resize(u8[y0:y0 + ch, x0:x0 + cw], h)
    raise ValueError(kind)


def fold_of(name, folds=2):
    """Cross-fitting fold of a corpus file, by the start of its base name up to the first "_"
    or ".": copies of one image in several folders or transfer syntaxes (MR_small_RLE,
    693_J2KR, RG1_JLSN) share a prefix and so a fold, and cannot vouch for each other."""
    stem = os.path.basename(name).split(".")[0].split("_")[0].lower()
    return int(hashlib.sha1(stem.encode()).hexdigest(), 16) % folds


def is_chest(ds, name):
    """A frontal chest radiograph by its tags (what the corpus README also says); the
    relabelled MONOCHROME1 copy (its pixels show inverted) counts as not one."""
    if "Fake_MONOHR1" in name:
        return False
    part = str(ds.get("BodyPartExamined", "")).strip().upper()
    return ds.get("Modality", "") in ("CR", "DX") and part in CHEST_PARTS


def corpus_images(corpus, cxrd, work, side):
    """Every .dcm under corpus that `cxrd render` renders: list of dicts with name, modality,
    chest (bool), fold, and the image at side x side."""
    out_dir = os.path.join(work, "render")
    os.makedirs(out_dir, exist_ok=True)
    items = []
    for root, _, files in os.walk(corpus):
        for f in sorted(files):
            if not f.lower().endswith(".dcm"):
                continue
            path = os.path.join(root, f)
            name = os.path.relpath(path, corpus)
            png = os.path.join(out_dir, name.replace("/", "__") + ".png")
            if not os.path.exists(png):
                subprocess.run([cxrd, "render", path, png], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=60, check=False)
            if not os.path.exists(png):
                continue
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            except Exception:  # noqa: BLE001 - a file pydicom cannot read has no tags to use
                ds = pydicom.Dataset()
            with Image.open(png) as im:
                u8 = np.asarray(im.convert("L"), np.uint8)
            items.append({"name": name, "modality": str(ds.get("Modality", "")) or "none",
                          "chest": is_chest(ds, name), "fold": fold_of(name),
                          "rows": u8.shape[0], "columns": u8.shape[1],
                          "image": resize(u8, side)})
    items.sort(key=lambda it: it["name"])
    return items
