"""The heatmap check: does the heatmap cxrd draws still point at TB lesions, and does it show
whenever a finding is present?

On the validation split of tools/train (the model card's split and controls), the C tool
report_heat_check runs the default model and report/'s body mask and map scaling on every
validation image. This script then scores the pointing game on the TBX11K lesion boxes twice
with the card's code (tools/train/evaluate.py):
  before: the maximum of the raw Tuberculosis class map, upsampled (evaluate.pointing_game on
          the class maps cxrd's runtime computed);
  after:  the maximum of the heat cxrd draws (map scaled on its own, times the body mask found
          by the C code on the same image),
and reports the share of non-Normal validation results whose heatmap differs from the source,
and how many changed pixels fall where the body mask is 0 (must be none).

/usr/bin/python3 tests/report/heatmap_check.py --tool build/tests/report/report_heat_check
"""
import argparse
import csv
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
sys.path.insert(0, os.path.join(ROOT, "tools", "export"))
import data as D  # noqa: E402
import evaluate as E  # noqa: E402


def pointing_from_points(folder, points, val_idx):
    """evaluate.pointing_game with the points given instead of taken from class maps: the same
    images, hits, controls and bootstrap. points[j] = (x, y) pixel centre for val_idx[j]."""
    val_b = [(j, folder.boxes[folder.files[i]]) for j, i in enumerate(val_idx)
             if folder.files[i] in folder.boxes]
    pts = [points[j] for j, _ in val_b]
    hits = np.array([E._hit(px, py, b) for (px, py), (_, b) in zip(pts, val_b)], float)
    n = len(val_b)
    other = np.mean([E._hit(px, py, val_b[k][1]) for j, (px, py) in enumerate(pts)
                     for k in range(n) if k != j])
    return hits, float(other)


def card_input_check(args, folder, val_idx, side, out):
    """The same before/after comparison on the TBX11K images with boxes, but with the class
    maps of the card's own network inputs (evaluate.predict feeds folder.eval_inputs, a PIL box
    resize, where cxrd resizes with its own code), computed by cxrd's runtime (`cxrd model-run`,
    which matches PyTorch) so that 'before' is the card's figure."""
    import labels as L
    import onnx
    meta = {p.key: p.value for p in onnx.load(args.model).metadata_props}
    size = json.loads(meta["cxr.preprocess"])["width"]  # the model's own input side
    boxed = [j for j, i in enumerate(val_idx) if folder.files[i] in folder.boxes]
    tmp = os.path.join(args.work, "card-inputs")
    os.makedirs(tmp, exist_ok=True)
    tb_maps = []
    for j in boxed:
        x = folder.eval_inputs(val_idx[j:j + 1], size)
        np.save(os.path.join(tmp, "input.npy"), x)
        subprocess.run([args.cxrd, "model-run", args.model, os.path.join(tmp, "input.npy"), tmp,
                        "--threads", "1"], check=True, stdout=subprocess.DEVNULL)
        tb_maps.append(np.load(os.path.join(tmp, "cam.npy"))[0, L.INDEX["Tuberculosis"]])
    tb_maps = np.stack(tb_maps).astype(np.float32)
    h, w = tb_maps.shape[1:]
    # evaluate.pointing_game indexes maps by position in val_idx: give it the boxed subset.
    sub_idx = val_idx[boxed]
    cams = np.zeros((len(boxed), 11, h, w), np.float32)
    cams[:, L.INDEX["Tuberculosis"]] = tb_maps
    before = E.pointing_game(folder, cams, sub_idx)
    raw = os.path.join(tmp, "images.u8")
    folder.images[sub_idx].tofile(raw)
    tb_file = os.path.join(tmp, "tb_cams.f32")
    tb_maps.tofile(tb_file)
    drawn = os.path.join(tmp, "out")
    os.makedirs(drawn, exist_ok=True)
    subprocess.run([args.tool, args.model, raw, str(len(boxed)), str(side), str(side), drawn,
                    "0", tb_file], check=True)
    tb_point = np.fromfile(os.path.join(drawn, "tb_point.i32"), np.int32).reshape(-1, 2)
    hits, other = pointing_from_points(
        folder, {j: (tb_point[j, 0] + 0.5, tb_point[j, 1] + 0.5) for j in range(len(boxed))},
        sub_idx)
    raw_hits, _ = pointing_from_points(folder, {j: p for j, p in enumerate(
        raw_argmax_points(cams, side))}, sub_idx)
    assert abs(raw_hits.mean() - before["pointing"]) < 1e-12
    return {"before": before, "after": {"pointing": float(hits.mean()),
                                        "other_image_boxes": other,
                                        "changed_vs_before": int((hits != raw_hits).sum())}}


def raw_argmax_points(cams, side):
    """Pixel centre of each image's upsampled Tuberculosis map maximum, as evaluate does."""
    import torch
    import torch.nn.functional as F
    points = []
    for j in range(len(cams)):
        up = F.interpolate(torch.from_numpy(cams[j:j + 1, 0:1]), size=(side, side),
                           mode="bilinear", align_corners=False)[0, 0].numpy()
        y, x = np.unravel_index(np.argmax(up), up.shape)
        points.append((x + 0.5, y + 0.5))
    return points


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "cxr"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "cxr-default.onnx"))
    ap.add_argument("--tool", required=True, help="build/tests/report/report_heat_check")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "heatcheck"))
    ap.add_argument("--cxrd", help="build/src/cxrd: also score the maps of the card's exact "
                    "network inputs (PIL box resize), run by `cxrd model-run`")
    ap.add_argument("--pngs", type=int, default=0, help="heatmap PNGs to keep for viewing")
    ap.add_argument("--exclude", default="nih_radsim",
                    help="collections left out (comma-separated): the card's split predates "
                    "nih_radsim, and any added collection shifts the seeded split of the "
                    "collections after it; '' for the folder as it is")
    args = ap.parse_args()

    root = args.data
    excluded = [d for d in args.exclude.split(",") if d]
    if excluded:
        # A folder view without those collections: labels.csv filtered, the rest linked.
        root = os.path.join(args.work, "data-without-" + "-".join(excluded))
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(args.data, "labels.csv")) as src:
            lines = src.readlines()
        kept = [lines[0]] + [ln for ln in lines[1:] if next(csv.reader([ln]))[1] not in excluded]
        with open(os.path.join(root, "labels.csv"), "w") as dst:
            dst.writelines(kept)
        for name in ("images", "tbx11k_boxes.csv", "nih_boxes.csv"):
            link = os.path.join(root, name)
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(os.path.join(args.data, name)), link)
    folder = D.Folder(root, os.path.join(args.work, "cache"))
    val_idx = np.flatnonzero(folder.is_val)
    side = D.CACHE_SIDE
    out = os.path.join(args.work, "out")
    os.makedirs(out, exist_ok=True)
    raw = os.path.join(args.work, "validation.u8")
    folder.images[val_idx].tofile(raw)
    subprocess.run([args.tool, args.model, raw, str(len(val_idx)), str(side), str(side), out,
                    str(args.pngs)], check=True)

    n = len(val_idx)
    h, w = (int(v) for v in open(os.path.join(out, "cam_shape.txt")).read().split())
    cams = np.fromfile(os.path.join(out, "cams.f32"), np.float32).reshape(n, 11, h, w)
    tb_point = np.fromfile(os.path.join(out, "tb_point.i32"), np.int32).reshape(n, 2)
    result = np.fromfile(os.path.join(out, "result.u8"), np.uint8)
    changed = np.fromfile(os.path.join(out, "changed.i64"), np.int64)
    outside = np.fromfile(os.path.join(out, "changed_outside.i64"), np.int64)
    share = np.fromfile(os.path.join(out, "body_share.f32"), np.float32)

    before = E.pointing_game(folder, cams, val_idx)
    # The card's points, recomputed here, must reproduce evaluate.pointing_game exactly: that
    # checks pointing_from_points before it scores the new maps.
    import torch
    import torch.nn.functional as F
    raw_points = {}
    for j, i in enumerate(val_idx):
        if folder.files[i] in folder.boxes:
            up = F.interpolate(torch.from_numpy(cams[j:j + 1, 0:1]), size=(side, side),
                               mode="bilinear", align_corners=False)[0, 0].numpy()
            y, x = np.unravel_index(np.argmax(up), up.shape)
            raw_points[j] = (x + 0.5, y + 0.5)
    hits_raw, other_raw = pointing_from_points(folder, raw_points, val_idx)
    assert abs(hits_raw.mean() - before["pointing"]) < 1e-12, (hits_raw.mean(), before)
    assert abs(other_raw - before["other_image_boxes"]) < 1e-12

    drawn_points = {j: (tb_point[j, 0] + 0.5, tb_point[j, 1] + 0.5) for j in range(n)}
    hits, other = pointing_from_points(folder, drawn_points, val_idx)
    rng = np.random.RandomState(E.SEED)
    m = len(hits)
    boot = np.array([hits[idx].mean() - hits_raw[idx].mean()
                     for idx in (rng.randint(0, m, m) for _ in range(E.BOOT))])
    after = {"images": m, "pointing": float(hits.mean()), "other_image_boxes": other,
             "margin_over_fixed_cell": float(hits.mean() - before["fixed_cell"]["val_rate"]),
             "changed_vs_before": int((hits != hits_raw).sum()),
             "after_minus_before_ci": np.percentile(boot, [2.5, 97.5]).tolist()}

    abnormal = result != 0
    differs = changed[abnormal] > 0
    datasets = folder.dataset[val_idx]
    card_inputs = None
    if args.cxrd:
        card_inputs = card_input_check(args, folder, val_idx, side, out)

    report = {
        "excluded_collections": excluded,
        "pointing_on_card_inputs": card_inputs,
        "validation_images": int(n),
        "pointing_before": before,
        "pointing_after": after,
        "non_normal_results": int(abnormal.sum()),
        "non_normal_heatmap_differs": int(differs.sum()),
        "non_normal_heatmap_differs_share": float(differs.mean()) if abnormal.any() else None,
        "changed_pixels_outside_body": int(outside[abnormal].sum()),
        "body_share_by_dataset": {d: [float(np.percentile(share[datasets == d], q))
                                      for q in (5, 50, 95)]
                                  for d in sorted(set(datasets))},
        "images_with_full_body_mask": int((share >= 0.999).sum()),
    }
    E.write_json(os.path.join(args.work, "heatmap_check.json"), report)
    print(json.dumps(report, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
