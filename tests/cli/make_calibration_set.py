#!/usr/bin/python3
"""A labelled DICOM set for `cxrd calibrate`, made from PNG radiographs of the data folder (never
in the repository: OUT_DIR is in the build tree or /tmp). Each PNG becomes an 8-bit MONOCHROME2
CR file (identity window, adult PA chest attributes) under OUT_DIR/dicom/, and OUT_DIR/labels.csv
lists them as `path,label` with paths relative to the CSV.

make_calibration_set.py DATA_DIR OUT_DIR [--source cxr-tb-samesource] [--dataset db]
    [--positives N] [--negatives N] [--extra] [--nih FINDING]

Labels come from the `tb` column; with --nih FINDING (e.g. Effusion, for ../shared/data/cxr),
positives are images whose NIH labels include FINDING and negatives NIH "No Finding" images.

--extra adds three rows that cannot be analysed: a file that is not DICOM, a missing file and a
chest file relabelled as CT (refused by the input gate).
"""
import argparse
import csv
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from png_dicom import CR_IMAGE, png_dataset  # noqa: E402


def make_dicom(png, path, index, modality="CR"):
    ds = png_dataset(png, path, index, CR_IMAGE, "1.2.826.0.1.3680043.10.1013", modality)
    ds.PatientID = "CAL%04d" % index
    ds.PatientName = "Calibration^Study%d" % index
    ds.PatientAge = "040Y"
    ds.BodyPartExamined = "CHEST"
    ds.save_as(path, write_like_original=False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--source", default="cxr-tb-samesource")
    parser.add_argument("--dataset", default="db")
    parser.add_argument("--positives", type=int, default=24)
    parser.add_argument("--negatives", type=int, default=24)
    parser.add_argument("--extra", action="store_true")
    parser.add_argument("--nih", default="")
    args = parser.parse_args()
    source = os.path.join(args.data, args.source)
    with open(os.path.join(source, "labels.csv")) as fh:
        table = [r for r in csv.DictReader(fh) if args.dataset in ("", r["dataset"])]
    table.sort(key=lambda r: r["file"])
    for r in table:
        if args.nih:
            findings = r.get("nih_findings", "").split("|")
            r["tb"] = "1" if args.nih in findings else "0" if findings == ["No Finding"] else ""
    positives = [r for r in table if r["tb"] == "1"][:args.positives]
    negatives = [r for r in table if r["tb"] == "0"][:args.negatives]
    if len(positives) < args.positives or len(negatives) < args.negatives:
        sys.exit("not enough images: %d positives, %d negatives" % (len(positives),
                                                                     len(negatives)))
    os.makedirs(os.path.join(args.out, "dicom"), exist_ok=True)
    rows = []
    for index, record in enumerate(positives + negatives):
        name = "%s.dcm" % os.path.splitext(os.path.basename(record["file"]))[0]
        make_dicom(os.path.join(source, record["file"]), os.path.join(args.out, "dicom", name),
                   index)
        rows.append(("dicom/" + name, record["tb"]))
    if args.extra:
        with open(os.path.join(args.out, "dicom", "junk.dcm"), "wb") as junk:
            junk.write(b"not a DICOM file\n" * 8)
        rows.append(("dicom/junk.dcm", "1"))
        rows.append(("dicom/missing.dcm", "0"))
        make_dicom(os.path.join(source, positives[0]["file"]),
                   os.path.join(args.out, "dicom", "ct.dcm"), 9999, modality="CT")
        rows.append(("dicom/ct.dcm", "1"))
    with open(os.path.join(args.out, "labels.csv"), "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
