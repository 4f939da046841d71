#!/usr/bin/python3
"""Writes equalised network-input cases for test_image_equalized_input (cxrd's C) from the
training tools (tools/train/data.py): each case is an 8-bit image, the network size, the
equalisation, and the tools' exact resized levels (resized_levels) and equalised levels
(network_input with scale 1 and offset 0). Radiographs from DATA_DIR/cxr at the network sizes
the tools use, one enlarged six times first (an area average of 36 pixels lands on a half for
about one pixel in 36, and the float weights 1/6 are not exact), and random images of awkward
sizes, shrunk and grown, with flat parts where halves are common.
Usage: make_equalized_input_cases.py DATA_DIR OUT_FILE

Record (little-endian): u32 width, u32 height, u32 out_width, u32 out_height, u32 equalize
(1 histogram, 2 CLAHE), u32 tiles, f64 clip, width*height input bytes, out_width*out_height
resized level bytes, out_width*out_height equalised level bytes."""
import os
import struct
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tools", "train"))
import data as D  # noqa: E402

MODES = {"histogram": 1, "clahe": 2}


def images(data_dir, rng):
    """(8-bit image, out width, out height)."""
    radiographs = {}
    for collection, size in [("nih_darkcovidnet", 192), ("tbx11k_tb", 224),
                             ("lundis_course_tb", 256)]:
        folder = os.path.join(data_dir, "cxr", "images", collection)
        radiographs[collection] = D.load_u8(os.path.join(folder, sorted(os.listdir(folder))[0]))
        yield radiographs[collection], size, size
    last = radiographs["lundis_course_tb"]
    big = Image.fromarray(last).resize((6 * 192, 6 * 192), Image.BILINEAR)
    yield np.asarray(big, np.uint8), 192, 192
    yield last, 300, 280  # grown
    for (h, w), (oh, ow) in [((300, 384), (50, 64)), ((12, 12), (9, 9)), ((5, 7), (9, 11)),
                             ((131, 250), (48, 64)), ((1, 1), (4, 4))]:
        u8 = rng.integers(0, 256, (h, w)).astype(np.uint8)
        u8[:, : w // 2] = u8[:, :1]
        yield u8, ow, oh


def main(argv):
    data_dir, out = argv
    rng = np.random.default_rng(11)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    cases = 0
    with open(tmp, "wb") as f:
        for u8, ow, oh in images(data_dir, rng):
            levels = D.resized_levels(u8, ow, oh)
            for mode, code in MODES.items():
                if mode == "clahe" and min(ow, oh) < D.CLAHE_TILES:
                    continue  # the tools build CLAHE with their tiles only
                want = D.network_input(u8, ow, oh, 1.0, 0.0, mode).astype(np.uint8)
                h, w = u8.shape
                f.write(struct.pack("<IIIIIId", w, h, ow, oh, code, D.CLAHE_TILES, D.CLAHE_CLIP)
                        + u8.tobytes() + levels.tobytes() + want.tobytes())
                cases += 1
    os.replace(tmp, out)
    print("%d equalised input cases -> %s" % (cases, out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
