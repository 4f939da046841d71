"""Carries the training images to a GPU machine that has no data folder (the `run` tool takes at
most 64 MiB of untracked files): the labels and box tables as they are, and the 256 px cache of
the images a recipe trains on, JPEG quality 90 (what the GPU-trained members of 1.3 saw; mean
absolute error about 0.75 grey levels). Held-out images are not sent (a zero image in their
place): on the GPU, `train.py --train-only` never reads them; validation runs here afterwards on
the original files.

    /usr/bin/python3 tools/train/gpu_pack.py pack --data ../shared/data/cxr --out build/gpu/data \\
        [--split v2]
    # on the GPU machine, before train.py --data build/gpu/data --work W:
    python3 tools/train/gpu_pack.py unpack build/gpu/data --work W
"""
import argparse
import io
import os
import shutil
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data as D  # noqa: E402

TABLES = ("labels.csv", "tbx11k_boxes.csv", "nih_boxes.csv")
PACK = "train_images_jpeg90.npz"
QUALITY = 90


def pack(data, out, split, work):
    folder = D.Folder(data, os.path.join(work, "cache"), split=split)
    os.makedirs(out, exist_ok=True)
    for t in TABLES:
        shutil.copyfile(os.path.join(data, t), os.path.join(out, t))
    blobs = []
    for i in range(folder.n):
        if folder.is_val[i]:
            blobs.append(b"")
            continue
        buf = io.BytesIO()
        Image.fromarray(folder.images[i]).save(buf, "JPEG", quality=QUALITY)
        blobs.append(buf.getvalue())
    sizes = np.array([len(b) for b in blobs], np.int64)
    tmp = os.path.join(out, PACK + ".tmp.npz")
    np.savez(tmp, sizes=sizes, blob=np.frombuffer(b"".join(blobs), np.uint8),
             split=np.array(split), files=np.array(folder.files))
    os.replace(tmp, os.path.join(out, PACK))
    print("%d training images, %.1f MiB" % ((sizes > 0).sum(), sizes.sum() / 2 ** 20))


def unpack(packed, work):
    """Writes the cache data.Folder looks for (keyed by the file list) from the pack."""
    z = np.load(os.path.join(packed, PACK))
    files = [str(f) for f in z["files"]]
    side = D.CACHE_SIDE
    images = np.zeros((len(files), side, side), np.uint8)
    blob, offset = z["blob"].tobytes(), 0
    for i, size in enumerate(z["sizes"]):
        if size:
            with Image.open(io.BytesIO(blob[offset:offset + size])) as im:
                images[i] = np.asarray(im.convert("L"), np.uint8)
        offset += size
    path = D.cache_path(os.path.join(work, "cache"), files)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path + ".tmp.npy", images)
    os.replace(path + ".tmp.npy", path)
    print("cache %s: %d images (%d held out, zero)" % (path, len(files),
                                                          int((z["sizes"] == 0).sum())))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data", default="../shared/data/cxr")
    p.add_argument("--out", default="build/gpu/data")
    p.add_argument("--split", default="v2")
    p.add_argument("--work", default="build/gpu/work")
    u = sub.add_parser("unpack")
    u.add_argument("packed")
    u.add_argument("--work", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        pack(args.data, args.out, args.split, args.work)
    else:
        unpack(args.packed, args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
