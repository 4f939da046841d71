"""How far a model's answers move when its input is resampled as another site's pipeline might
resample it (issue 18: domain-shift robustness), measured on held-out images only.

Each variant changes how the 8-bit image becomes the network's size x size input; "cxrd" is what
cxrd builds (exact area averaging). For each variant: TB AUC within `da` and within `db` (same
machine, so the source cannot help), the NIH nine-finding mean AUC against `No Finding`, and the
mean absolute change of the TB and of all probabilities against "cxrd". Parts of the nested v2
split are kept apart: "select" may choose a recipe, "report" only reports.

    /usr/bin/python3 tools/train/resample_check.py --model NAME=model.onnx [--model ...] \\
        --out build/resample-check.json
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image, ImageFilter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "export"))
import data as D  # noqa: E402
import evaluate as E  # noqa: E402
import evidence as EV  # noqa: E402
import labels as L  # noqa: E402


def _u8(im):
    return np.asarray(im, np.uint8)


# each variant: the source image (PIL, grey) as another pipeline delivers it to cxrd's resize
VARIANTS = {
    "cxrd": lambda im, s: _u8(im),
    # the image delivered at twice the resolution (Lanczos)
    "2x source": lambda im, s: _u8(im.resize((2 * im.width, 2 * im.height), Image.LANCZOS)),
    # a lower native resolution: cxrd's resize to half the side, bilinear back up
    "half resolution": lambda im, s: _u8(
        Image.fromarray(D.resized_levels(_u8(im), s // 2, s // 2)).resize((s, s), Image.BILINEAR)),
    # edge enhancement, as some vendors' processing applies
    "sharpened": lambda im, s: _u8(im.filter(ImageFilter.UnsharpMask(2, 80, 0))),
    "JPEG 70": lambda im, s: D.jpeg_round_trip(_u8(im), 70),
}


def inputs(root, files, preprocess, variant):
    s = preprocess["width"]
    out = np.zeros((len(files), 1, s, s), np.float32)
    for j, f in enumerate(files):
        with Image.open(os.path.join(root, f)) as im:
            u8 = VARIANTS[variant](im.convert("L"), s)
        out[j, 0] = D.network_input(u8, s, s, preprocess["scale"], preprocess["offset"],
                                    D.input_equalized(preprocess))
    return out


def auc(positive, scores):
    return float(E.rank_auc(scores[positive], scores[~positive])[0])


def measure(scorer, folder, ss):
    nih_idx = np.flatnonzero(np.isin(folder.dataset, D.NIH_ALL) & (folder.role != "train"))
    probs = {}
    for v in VARIANTS:
        ss_p = scorer(inputs(ss.root, ss.files, scorer.preprocess, v))[0]
        nih_p = scorer(inputs(folder.root, [folder.files[i] for i in nih_idx],
                              scorer.preprocess, v))[0]
        probs[v] = (ss_p, nih_p)
    out = {}
    for v, (ss_p, nih_p) in probs.items():
        row = {}
        for part in EV.PARTS:
            for ds in sorted(set(ss.dataset)):
                sel = (ss.dataset == ds) & (ss.role == part)
                row["%s/%s TB AUC" % (ds, part)] = auc(ss.tb[sel] == 1, ss_p[sel, EV.TB])
            nih, nofind = EV.nih_eval_sets(folder, part)
            aucs = []
            for f in L.NIH_FINDINGS:
                k = L.INDEX[f]
                keep = (nih & (folder.targets[:, k] == 1)) | nofind
                rows = np.flatnonzero(keep[nih_idx])
                y = folder.targets[nih_idx[rows], k] == 1
                aucs.append(auc(y, nih_p[rows, k]))
            row["NIH mean AUC/%s" % part] = float(np.mean(aucs))
        ref_ss, ref_nih = probs["cxrd"]
        row["mean |dTB|"] = float(np.mean(np.abs(np.concatenate(
            [ss_p[:, EV.TB] - ref_ss[:, EV.TB], nih_p[:, EV.TB] - ref_nih[:, EV.TB]]))))
        row["mean |dp| all outputs"] = float(np.mean(np.abs(np.concatenate(
            [ss_p - ref_ss, nih_p - ref_nih]))))
        out[v] = row
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/cxr")
    ap.add_argument("--samesource", default="../shared/data/cxr-tb-samesource")
    ap.add_argument("--cache", default="build/evidence/cache")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--out", default="build/resample-check.json")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    folder = D.Folder(args.data, args.cache, split="v2")
    ss = EV.SameSource(args.samesource)
    results = {}
    for spec in args.model:
        name, path = spec.split("=", 1)
        results[name] = measure(EV.load_scorer(path), folder, ss)
        for v, row in results[name].items():
            print("%s | %s | %s" % (name, v, " | ".join("%s %.3f" % kv for kv in row.items())),
                  flush=True)
    E.write_json(args.out, results)
    return 0


if __name__ == "__main__":
    import heap
    heap.keep_freed_memory()
    sys.exit(main())
