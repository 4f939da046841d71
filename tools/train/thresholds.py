"""Operating points that mean something (the safe-answers rule), recomputed for a shipped
contract model without retraining.

- Each NIH finding: the lowest threshold whose specificity against NIH `No Finding` validation
  images is at least 0.90. Its sensitivity is measured on the validation positives: NIH images
  of validation patients, plus `nih_radsim` images (added after 1.3 was trained) of patients not
  in the training split. The specificity is also cross-fitted (threshold chosen on one half of
  the No Finding images, measured on the other), since the threshold is chosen on them.
- A finding with fewer than 20 validation positives, and Calcification (no labels), is switched
  off: threshold 1.01, never present; the PDF prints it "not assessed".
- Tuberculosis keeps the model's own threshold (>= 90% validation sensitivity, WHO triage).
- With `--split v2` (models of the 2.x recipe) the thresholds are chosen on the NIH images of the
  nested split's "select" part only, and sensitivity and specificity at them are also measured
  on its "report" part, which no choice touched. Tuberculosis's threshold is chosen again as the
  training run chose it: the highest with >= 90% sensitivity on the select halves of the
  same-source sets (`--samesource`), on the inputs cxrd builds.
- With `--split v2` a finding's threshold must also keep specificity >= 0.90 against the normal
  radiographs of those select halves (machines no network here trained on): at thresholds set
  on NIH's normals alone, 2.2 called a finding present in 65 % of those machines' normal
  patients (report halves). Their report halves measure how the new thresholds hold.

    /usr/bin/python3 tools/train/thresholds.py --data ../shared/data/cxr --model IN.onnx \\
        --work /tmp/work [--split v1|v2] [--out OUT.onnx] [--version NAME]
        [--report OUT.json] [--card-section OUT.md]
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data as D  # noqa: E402
import labels as L  # noqa: E402
import onnx_torch  # noqa: E402

TARGET_SPECIFICITY = 0.90
MIN_POSITIVES = 20
OFF = 1.01  # above 1: never present (model contract)
BOOT = 2000
SEED = 6


def assessed(finding, positives):
    """Whether a finding gets an operating point: enough positives to choose it on
    (Calcification has no NIH label); otherwise it stays off."""
    return finding != "Calcification" and positives >= MIN_POSITIVES


def validation_sets(folder, part=None):
    """Indices of No Finding validation images and of finding-evaluable validation images: NIH
    images of patients 1.x never trained on (nih_radsim came later: its patients that had
    another study in the training split are left out); with `part`, the NIH images of that
    part of the v2 split."""
    nih = np.isin(folder.dataset, D.NIH_ALL)
    evaluable = nih & (folder.unseen_by_v1 if part is None else folder.role == part)
    no_finding = evaluable & np.array([r == "No Finding" for r in folder.nih_raw])
    unseen_radsim = evaluable & np.isin(folder.dataset, D.ADDED_AFTER_V1)
    return np.flatnonzero(evaluable), np.flatnonzero(no_finding), int(unseen_radsim.sum())


def specificity_threshold(negative_scores, target=TARGET_SPECIFICITY):
    """Lowest threshold of 6 decimals (as the model file stores it) with
    mean(negatives < t) >= target: just above the k-th lowest negative, k = ceil(target * n)."""
    s = np.sort(negative_scores)
    k = int(np.ceil(target * len(s)))
    return (np.floor(float(s[k - 1]) * 1e6) + 1) / 1e6


def finding_threshold(no_finding_scores, machine_normal_scores=None):
    """The safe-answers rule: specificity >= 0.90 against NIH No Finding and, when given,
    against the normals of machines the network never saw."""
    t = specificity_threshold(no_finding_scores)
    if machine_normal_scores is None:
        return t
    return max(t, specificity_threshold(machine_normal_scores))


def proportion_ci(hits, rng, n=BOOT):
    hits = np.asarray(hits, float)
    if len(hits) == 0:
        return [float("nan")] * 2
    boot = hits[rng.randint(0, len(hits), (n, len(hits)))].mean(1)
    return np.percentile(boot, [2.5, 97.5]).tolist()


def positives_of(folder, evaluable, f):
    """Rows (positions in `evaluable`) of the images labelled with NIH finding f."""
    k = L.INDEX[f]
    return np.array([j for j, i in enumerate(evaluable) if folder.targets[i, k] == 1 and
                     folder.mask[i, k] == 1 and f in L.NIH_FINDINGS], np.int64)


def measured_at(t, pos_scores, neg_scores, rng):
    hits, keeps = pos_scores >= t, neg_scores < t
    return {"positives": int(len(hits)), "negatives": int(len(keeps)),
            "sensitivity": float(hits.mean()), "sensitivity_ci": proportion_ci(hits, rng),
            "specificity": float(keeps.mean()), "specificity_ci": proportion_ci(keeps, rng)}


def choose(folder, probabilities, old_thresholds, report=None, tb_threshold=None,
           machine_normals=None):
    """Thresholds from the validation images (v1) or the select part (v2); `report`, for v2:
    (probabilities, evaluable, no_finding, machine normals' probabilities) of the report part,
    measured at them; Tuberculosis gets tb_threshold, or keeps its threshold when None;
    machine_normals: probabilities of unseen machines' normal radiographs (select halves) that
    each finding's threshold must also keep >= 90% below it."""
    rng = np.random.RandomState(SEED)
    evaluable, no_finding, radsim_count = validation_sets(
        folder, "select" if report is not None else None)
    pos_of = {i: k for k, i in enumerate(evaluable)}
    negatives = np.array([pos_of[i] for i in no_finding])
    out = {}
    for f in L.FINDINGS:
        k = L.INDEX[f]
        if f == "Tuberculosis":
            out[f] = ({"threshold": old_thresholds[f], "rule": "model's own (>= 90% sensitivity)"}
                      if tb_threshold is None else
                      {"threshold": tb_threshold, "old_threshold": old_thresholds[f],
                       "rule": ">= 90% sensitivity on the same-source select halves"})
            continue
        positive = positives_of(folder, evaluable, f)
        row = {"positives": int(len(positive)), "negatives": int(len(negatives)),
               "old_threshold": old_thresholds[f]}
        if not assessed(f, len(positive)):
            row.update(threshold=OFF, rule="not assessed (%d validation positives)"
                       % len(positive))
            out[f] = row
            continue
        neg_scores = probabilities[negatives, k]
        pos_scores = probabilities[positive, k]
        machines = None if machine_normals is None else machine_normals[:, k]
        t = finding_threshold(neg_scores, machines)
        hits = pos_scores >= t
        half = np.zeros(len(neg_scores), bool)
        half[rng.permutation(len(neg_scores))[::2]] = True
        cross = np.concatenate([neg_scores[~part] < finding_threshold(neg_scores[part], machines)
                                for part in (half, ~half)])
        if machines is not None:
            row.update(nih_only_threshold=specificity_threshold(neg_scores),
                       machine_specificity=float((machines < t).mean()),
                       machine_normals=int(len(machines)))
        row.update(threshold=t, rule="specificity >= 0.90 against NIH No Finding" + (
                       "" if machines is None else " and unseen machines' normals"),
                   specificity=float((neg_scores < t).mean()),
                   specificity_crossfit=float(cross.mean()),
                   specificity_crossfit_ci=proportion_ci(cross, rng),
                   sensitivity=float(hits.mean()), sensitivity_ci=proportion_ci(hits, rng),
                   old_sensitivity=float((pos_scores >= old_thresholds[f]).mean()),
                   old_specificity=float((neg_scores < old_thresholds[f]).mean()))
        if report is not None:
            p_r, ev_r, nf_r, machines_r = report
            at = {i: j for j, i in enumerate(ev_r)}
            row["report"] = measured_at(t, p_r[positives_of(folder, ev_r, f), k],
                                        p_r[[at[i] for i in nf_r], k], rng)
            if machines_r is not None:
                keeps = machines_r[:, k] < t
                row["report"].update(machine_normals=int(len(keeps)),
                                     machine_specificity=float(keeps.mean()),
                                     machine_specificity_ci=proportion_ci(keeps, rng))
        out[f] = row
    return out, evaluable, negatives, radsim_count


def any_present(probabilities, thresholds, rows):
    t = np.array([thresholds[f] for f in L.FINDINGS])
    present = probabilities[rows][:, 1:] >= t[1:]  # the ten findings beside Tuberculosis
    return float(present.any(1).mean())


def summary(folder, probabilities, chosen, evaluable, negatives, old):
    new = {f: r["threshold"] for f, r in chosen.items()}
    pos_of = {i: k for k, i in enumerate(evaluable)}
    finding_positive = np.array([pos_of[i] for i in evaluable
                                 if folder.targets[i, [L.INDEX[f] for f in L.NIH_FINDINGS]].max()
                                 == 1])
    return {"no_finding_images": int(len(negatives)),
            "no_finding_any_present": {"old": any_present(probabilities, old, negatives),
                                       "new": any_present(probabilities, new, negatives)},
            "finding_positive_images": int(len(finding_positive)),
            "finding_positive_abnormal": {
                "old": any_present(probabilities, old, finding_positive),
                "new": any_present(probabilities, new, finding_positive)}}


def samesource_parts(model, preprocess, samesource):
    """Per part of the same-source sets: (probabilities, TB labels) on the inputs cxrd builds."""
    import evidence as V
    ss = V.SameSource(samesource)
    x = V.network_inputs(ss.root, ss.files, preprocess)
    p = model(x, ["probabilities"])["probabilities"]
    return {part: (p[ss.role == part], ss.tb[ss.role == part]) for part in ("select", "report")}


def tb_select_threshold(parts):
    """TB's threshold as the training run chooses it (evidence.tb_threshold) from the model's
    probabilities on the select halves of the same-source sets."""
    import evidence as V
    p, tb = parts["select"]
    return V.tb_threshold(p[:, L.INDEX["Tuberculosis"]], tb)


def machine_normals(parts, part):
    p, tb = parts[part]
    return p[tb == 0]


def markdown(chosen, summ, radsim_count, nested=False):
    if nested:
        return markdown_nested(chosen)
    lines = ["## Operating points (safe-answers rule)", "",
             "Each NIH finding's threshold is the lowest that keeps specificity >= 0.90 against "
             "NIH `No Finding` validation images; sensitivity is measured on the validation "
             "positives (NIH validation patients, plus %d `nih_radsim` images of patients outside "
             "the training split, unseen by this network). Findings with fewer than %d "
             "validation positives, and Calcification, are **not assessed**: threshold %.2f, "
             "never present. Tuberculosis keeps its threshold (>= 90%% validation sensitivity). "
             "95%% CIs: bootstrap. Written by `tools/train/thresholds.py`." % (
                 radsim_count, MIN_POSITIVES, OFF), "",
             "| finding | threshold | validation positives | sensitivity (95% CI) | specificity "
             "| specificity, cross-fitted (95% CI) | before: threshold, sensitivity, "
             "specificity |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for f, r in chosen.items():
        if f == "Tuberculosis":
            lines.append("| Tuberculosis | %.4f | (see TB above) | | | | unchanged |"
                         % r["threshold"])
        elif r["threshold"] > 1:
            lines.append("| %s | not assessed | %d | | | | %.4f |" % (
                f, r.get("positives", 0), r.get("old_threshold", float("nan"))))
        else:
            lines.append("| %s | %.4f | %d | %.3f (%.3f-%.3f) | %.3f | %.3f (%.3f-%.3f) | "
                         "%.4f, %.3f, %.3f |" % (
                             f, r["threshold"], r["positives"], r["sensitivity"],
                             *r["sensitivity_ci"], r["specificity"], r["specificity_crossfit"],
                             *r["specificity_crossfit_ci"], r["old_threshold"],
                             r["old_sensitivity"], r["old_specificity"]))
    s = summ
    lines += ["", "On the %d NIH `No Finding` validation images, the share with any finding "
              "present went from %.3f to %.3f; on the %d NIH finding-positive validation "
              "images, the share reported Abnormal (any of the ten non-TB findings present) "
              "went from %.3f to %.3f." % (
                  s["no_finding_images"], s["no_finding_any_present"]["old"],
                  s["no_finding_any_present"]["new"], s["finding_positive_images"],
                  s["finding_positive_abnormal"]["old"], s["finding_positive_abnormal"]["new"]),
              ""]
    return "\n".join(lines)


def markdown_nested(chosen):
    """The card section of a v2 model: chosen on select, measured on report too."""
    machines = any("machine_specificity" in r for r in chosen.values())
    lines = ["## Operating points (safe-answers rule)", "",
             "Each NIH finding's threshold is the lowest that keeps specificity >= 0.90 against "
             "the NIH `No Finding` images of the nested split's select part%s; sensitivity and "
             "specificity at it are given there and on the report part, which chose nothing. "
             "Findings with fewer than %d select positives, and Calcification, are **not "
             "assessed**: threshold %.2f, never present. Tuberculosis's threshold is the highest "
             "with >= 90%% sensitivity on the same-source select halves. 95%% CIs: bootstrap. "
             "Written by `tools/train/thresholds.py --split v2`." % (
                 " and against the normal radiographs of the same-source sets' select halves "
                 "(`da` and `db`: two machines no network here trained on)" if machines else "",
                 MIN_POSITIVES, OFF), ""]
    head = ("| finding | threshold | select: positives / No Finding | sensitivity | "
            "specificity (cross-fitted) | ")
    if machines:
        head += "select: machines' normals, specificity (NIH-only threshold) | "
    head += ("report: positives / No Finding | sensitivity (95% CI) | specificity (95% CI) |" +
             (" report: machines' normals, specificity (95% CI) |" if machines else ""))
    cols = head.count("|") - 1
    lines += [head, "|" + " --- |" * cols]
    for f, r in chosen.items():
        if f == "Tuberculosis":
            cells = ["%.4f" % r["threshold"], "(see TB above)"]
        elif r["threshold"] > 1:
            cells = ["not assessed", "%d" % r.get("positives", 0)]
        else:
            q = r["report"]
            cells = ["%.4f" % r["threshold"], "%d / %d" % (r["positives"], r["negatives"]),
                     "%.3f" % r["sensitivity"],
                     "%.3f (%.3f)" % (r["specificity"], r["specificity_crossfit"])]
            if machines:
                cells.append("%d: %.3f (%.4f)" % (r["machine_normals"], r["machine_specificity"],
                                                  r["nih_only_threshold"]))
            cells += ["%d / %d" % (q["positives"], q["negatives"]),
                      "%.3f (%.3f-%.3f)" % (q["sensitivity"], *q["sensitivity_ci"]),
                      "%.3f (%.3f-%.3f)" % (q["specificity"], *q["specificity_ci"])]
            if machines:
                cells.append("%d: %.3f (%.3f-%.3f)" % (
                    q["machine_normals"], q["machine_specificity"], *q["machine_specificity_ci"]))
        cells += [""] * (cols - 1 - len(cells))
        lines.append("| %s | %s |" % (f, " | ".join(cells)))
    return "\n".join(lines + [""])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--split", choices=("v1", "v2"), default="v1",
                   help="v2: choose on the nested split's select part, report on its report part")
    p.add_argument("--samesource", default="../shared/data/cxr-tb-samesource",
                   help="same-source TB sets; with v2 their select halves choose TB's threshold")
    p.add_argument("--out")
    p.add_argument("--version", help="new cxr.model_version for --out")
    p.add_argument("--report")
    p.add_argument("--card-section", help="write the model card's section here")
    args = p.parse_args()
    model = onnx_torch.OnnxTorch(args.model)
    preprocess = json.loads(model.metadata["cxr.preprocess"])
    size = preprocess["width"]
    old = json.loads(model.metadata["cxr.thresholds"])
    folder = D.Folder(args.data, os.path.join(args.work, "cache"), split=args.split)

    def scored(part):
        evaluable, no_finding, _ = validation_sets(folder, part)
        x = folder.eval_inputs(evaluable, size, D.input_equalized(preprocess))
        return model(x, ["probabilities"])["probabilities"], evaluable, no_finding

    nested = args.split == "v2"
    probabilities = scored("select" if nested else None)[0]
    if nested:
        parts = samesource_parts(model, preprocess, args.samesource)
        chosen, evaluable, negatives, radsim_count = choose(
            folder, probabilities, old, scored("report") + (machine_normals(parts, "report"),),
            tb_select_threshold(parts), machine_normals(parts, "select"))
    else:
        chosen, evaluable, negatives, radsim_count = choose(folder, probabilities, old)
    summ = summary(folder, probabilities, chosen, evaluable, negatives, old)
    text = markdown(chosen, summ, radsim_count, nested)
    print(text)
    if args.report:
        with open(args.report, "w") as fh:
            json.dump({"thresholds": chosen, "summary": summ}, fh, indent=1)
    if args.out:
        m = onnx.load(args.model)
        props = {p.key: p for p in m.metadata_props}
        props["cxr.thresholds"].value = json.dumps(
            {f: r["threshold"] for f, r in chosen.items()})
        if args.version:
            props["cxr.model_version"].value = args.version
        onnx.save(m, args.out + ".tmp")
        os.replace(args.out + ".tmp", args.out)
    if args.card_section:
        with open(args.card_section, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    import heap
    heap.keep_freed_memory()
    main()
