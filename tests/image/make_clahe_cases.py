#!/usr/bin/python3
"""Writes CLAHE cases for test_image_clahe (cxrd's C) from the training tools' clahe()
(tools/train/data.py, PyTorch): each case is an 8-bit image, its tiles and clip limit, and the
tools' result. Random images of awkward sizes (tiles that do not divide them, one tile, no
clipping) and radiographs from DATA_DIR/cxr resized as the tools resize network inputs.
Usage: make_clahe_cases.py DATA_DIR OUT_FILE

Record (little-endian): u32 width, u32 height, u32 tiles, f64 clip, width*height input bytes,
width*height expected bytes."""
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tools", "train"))
import data as D  # noqa: E402

# one radiograph of three collections (the first of each, by name), at three network sizes
RADIOGRAPHS = [("nih_darkcovidnet", 256), ("tbx11k_tb", 192), ("lundis_course_tb", 224)]


def random_cases(rng):
    for (w, h), tiles, clip in [((7, 5), 1, 1.0), ((7, 5), 3, 2.0), ((7, 5), 5, 256.0),
                                ((64, 48), 8, 2.0), ((250, 131), 7, 1.5),
                                ((250, 131), 7, 3.0), ((1, 1), 1, 1.0)]:
        # skewed: most pixels in a narrow dark band, so clipping matters
        dark = rng.integers(20, 27, (h, w))
        bright = rng.integers(0, 256, (h, w))
        yield np.where(rng.random((h, w)) < 0.7, dark, bright).astype(np.uint8), tiles, clip
    yield np.full((32, 32), 90, np.uint8), 4, 2.0


def radiograph_cases(root):
    for collection, size in RADIOGRAPHS:
        folder = os.path.join(root, "images", collection)
        u8 = D.load_u8(os.path.join(folder, sorted(os.listdir(folder))[0]))
        yield D.resized_levels(u8, size, size), D.CLAHE_TILES, D.CLAHE_CLIP


def main(argv):
    data_dir, out = argv
    rng = np.random.default_rng(7)
    cases = list(random_cases(rng)) + list(radiograph_cases(os.path.join(data_dir, "cxr")))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        for u8, tiles, clip in cases:
            want = D.clahe(torch.from_numpy(u8)[None], tiles, clip)[0].numpy()
            h, w = u8.shape
            f.write(struct.pack("<IIId", w, h, tiles, clip) + u8.tobytes() + want.tobytes())
    os.replace(tmp, out)
    print("%d CLAHE cases -> %s" % (len(cases), out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
