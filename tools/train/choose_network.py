"""The rule that chooses the default network among candidates (issue 18), on the select part of
the nested split only, from `evidence.py`'s evidence.json. Its fourth term was written after
the report figures of the networks it first ranked (2.3's sweeps) had been seen; for any later
sweep it is fixed before the networks are trained.

1. Tuberculosis must work within one machine: at the threshold chosen for >= 90% sensitivity on
   the select halves of `da` and `db` together, the specificity within each of them must be at
   least 0.85.
2. Among the networks that pass, the highest mean of four select figures: the TB AUC within `da`,
   the TB AUC within `db`, the NIH nine-finding mean AUC, and the share of NIH select positives
   still called present at operating points that also keep specificity >= 0.90 on the unseen
   machines' normals (`thresholds.py --split v2`; mean over the assessed findings). The last term
   was added for 2.2.1: 2.2's network ranked first on the other three and kept the fewest
   positives at those points (docs/training.md, "2.2.1").

    /usr/bin/python3 tools/train/choose_network.py build/evidence-sweep/evidence.json
"""
import json
import sys

MIN_SPECIFICITY = 0.85


def figures(result):
    """(passes, score, the four figures) of one model's evidence, or None when the evidence
    lacks a figure (written by an older evidence.py)."""
    try:
        tb = result["tb_samesource"]
        spec = [tb[s + "/select"]["specificity"]["value"] for s in ("da", "db")]
        four = [tb["da/select"]["auc"], tb["db/select"]["auc"],
                result["nih/select"]["mean"]["auc"],
                result["findings_on_normals"]["NIH sensitivity/select"]["mean"]]
    except KeyError:
        return None
    return min(spec) >= MIN_SPECIFICITY, sum(four) / 4, spec, four


def rank(results):
    """[(name, passes, score, specificities, figures)], the chosen network first."""
    rows = []
    for name, result in results.items():
        f = None if name == "baseline" else figures(result)
        if f is not None:
            rows.append((name,) + f)
    return sorted(rows, key=lambda r: (not r[1], -r[2]))


def main(argv):
    with open(argv[1]) as fh:
        rows = rank(json.load(fh))
    if not rows:
        raise SystemExit("no model in %s has every figure the rule needs" % argv[1])
    print("| network | TB spec. da / db (select) | passes | da AUC | db AUC | NIH AUC | "
          "NIH sens. at machine-safe points | score |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, passes, score, spec, four in rows:
        print("| %s | %.3f / %.3f | %s | %s | %.4f |" % (
            name, spec[0], spec[1], "yes" if passes else "no",
            " | ".join("%.3f" % v for v in four), score))
    best = rows[0]
    print("\nchosen: %s" % best[0] if best[1] else "\nno network passes the TB rule")
    return 0 if best[1] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
