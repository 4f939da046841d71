#!/usr/bin/python3
"""The training data for a GPU call, small enough to travel (docs/training.md, "A GPU sweep").

The device machine gets the repository's working tree plus what `carry` names, 64 MiB in all;
the data folder (189 MB of PNGs) and the image cache (405 MB) do not fit. Training reads only
the training split's rows of the cache, so `pack` keeps those, JPEG-compressed (quality 85 is
the best that fits), beside labels.csv, tbx11k_boxes.csv and nih_boxes.csv; `unpack` rebuilds
the cache there (other rows zero: a --train-only run never reads them).

    /usr/bin/python3 tools/train/gpu_pack.py pack --data ../shared/data/cxr \\
        --cache build/train/cache --out build/gpu/cxr [--quality 85] [--split v2]
    python3 tools/train/gpu_pack.py unpack --data build/gpu/cxr --cache build/train/cache
"""
import argparse
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import data as D  # noqa: E402
import labels as L  # noqa: E402

PACK = "train_jpeg.npz"
LIMIT_MIB = 64  # what one call of the run tool takes: working tree + carried paths


def tree_mib():
    """Size of the files a call sends without carry: tracked plus untracked, not ignored."""
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others",
                          "--exclude-standard"], capture_output=True, check=True).stdout
    paths = [os.path.join(ROOT, p) for p in out.decode().split("\0") if p]
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p)) / 2 ** 20


def pack(args):
    folder = D.Folder(args.data, args.cache, split=args.split)
    rows = np.flatnonzero(folder.role == "train")
    blobs = []
    for i in rows:
        buf = io.BytesIO()
        Image.fromarray(folder.images[i]).save(buf, "JPEG", quality=args.quality)
        blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
    os.makedirs(args.out, exist_ok=True)
    optional = ["nih_boxes.csv"] if os.path.exists(os.path.join(args.data, "nih_boxes.csv")) else []
    for name in ["labels.csv", "tbx11k_boxes.csv"] + optional:
        shutil.copy(os.path.join(args.data, name), os.path.join(args.out, name))
    lengths = np.array([len(b) for b in blobs], np.int64)
    np.savez(os.path.join(args.out, PACK), rows=rows, lengths=lengths,
             jpeg=np.concatenate(blobs), quality=args.quality, split=args.split,
             n=folder.n)
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    pre = os.path.join(ROOT, "build", "pretrained")
    pre_mib = sum(os.path.getsize(os.path.join(pre, f)) for f in os.listdir(pre)) / 2 ** 20 \
        if os.path.isdir(pre) else 0.0
    total = size / 2 ** 20 + pre_mib + tree_mib()
    print(json.dumps({"rows": int(len(rows)), "quality": args.quality, "pack_mib":
                      round(size / 2 ** 20, 1), "pretrained_mib": round(pre_mib, 1),
                      "tree_mib": round(tree_mib(), 1), "total_mib": round(total, 1),
                      "fits": total < LIMIT_MIB}))
    return 0 if total < LIMIT_MIB or args.no_check else 1


def unpack(args):
    z = np.load(os.path.join(args.data, PACK))
    files = [r.file for r in L.read_folder_labels(os.path.join(args.data, "labels.csv"))]
    if len(files) != int(z["n"]):
        raise SystemExit("labels.csv has %d rows, the pack %d" % (len(files), int(z["n"])))
    arr = np.zeros((len(files), D.CACHE_SIDE, D.CACHE_SIDE), np.uint8)
    ends = np.cumsum(z["lengths"])
    jpeg = z["jpeg"]
    for i, start, end in zip(z["rows"], ends - z["lengths"], ends):
        with Image.open(io.BytesIO(jpeg[start:end].tobytes())) as im:
            arr[i] = np.asarray(im.convert("L"), np.uint8)
    path = D.cache_path(args.cache, files)
    os.makedirs(args.cache, exist_ok=True)
    np.save(path + ".tmp.npy", arr)
    os.replace(path + ".tmp.npy", path)
    print("unpacked %d training images (JPEG quality %d, split %s) into %s" % (
        len(z["rows"]), int(z["quality"]), str(z["split"]), path))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data", default="../shared/data/cxr")
    p.add_argument("--cache", default="build/train/cache")
    p.add_argument("--out", default="build/gpu/cxr")
    p.add_argument("--quality", type=int, default=85)
    p.add_argument("--split", default="v2", help="whose training rows travel")
    p.add_argument("--no-check", action="store_true", help="exit 0 even over the limit")
    u = sub.add_parser("unpack")
    u.add_argument("--data", default="build/gpu/cxr")
    u.add_argument("--cache", default="build/train/cache")
    args = ap.parse_args(argv)
    return pack(args) if args.cmd == "pack" else unpack(args)


if __name__ == "__main__":
    sys.exit(main())
