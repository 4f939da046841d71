#!/usr/bin/python3
"""`cxrd calibrate` end to end, on DICOM files made (in the build tree) from 24 TB and 24 normal
radiographs of the same machines (../shared/data/cxr-tb-samesource, set db), plus three rows
that cannot be analysed, with a seeded test model (tools/export/test_model.py):

- the scores calibrate used are the ones `cxrd infer` reports for the same files;
- every row of thresholds.csv and round_thresholds.csv (confusion counts, sensitivity,
  specificity, PPV, NPV, share tested, tests per case found) equals a direct count here, the
  AUC equals the share of correctly ranked pairs, and the bootstrap CIs of the AUC and of the
  chosen point equal a re-implementation here (splitmix64, draw mod n with rejection, type 7
  percentiles over 2000 resamples);
- the chosen threshold meets the target, the next one up does not;
- thresholds.ini pasted into a config makes `cxrd infer` call Tuberculosis present exactly for
  the studies scoring at or above the chosen score; PDF and audit row name the calibration;
- the threshold guard: that section with a model of another version stops `infer` and `serve`
  naming both versions; allow_model_change = true lets it run with a warning in the log;
- refusals: too few positives (with the count and how many more), labels other than 0/1.

calibrate_test.py CXRD TOOLS_EXPORT DATA_DIR OUT_DIR
"""
import csv
import datetime
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys

import pydicom

sys.dont_write_bytecode = True

CXRD, TOOLS, DATA, OUT = sys.argv[1:5]
HERE = os.path.dirname(os.path.abspath(__file__))
MASK = (1 << 64) - 1
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)


def run(*args, **kwargs):
    return subprocess.run([CXRD] + list(args), capture_output=True, text=True, **kwargs)


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def quantile7(values, p):
    values = sorted(values)
    h = (len(values) - 1) * p
    low = math.floor(h)
    if low + 1 >= len(values):
        return values[-1]
    return values[low] + (h - low) * (values[low + 1] - values[low])


def measures(scores, labels, threshold):
    tp = sum(1 for s, y in zip(scores, labels) if s >= threshold and y == 1)
    fp = sum(1 for s, y in zip(scores, labels) if s >= threshold and y == 0)
    fn = sum(labels) - tp
    tn = len(labels) - sum(labels) - fp
    called = tp + fp
    return {
        "true_positives": tp, "false_positives": fp, "true_negatives": tn,
        "false_negatives": fn,
        "sensitivity": tp / (tp + fn) if tp + fn else None,
        "specificity": tn / (tn + fp) if tn + fp else None,
        "ppv": tp / called if called else None,
        "npv": tn / (tn + fn) if tn + fn else None,
        "tested_share": called / len(labels),
        "tests_per_case": called / tp if tp else None,
    }


def auc(scores, labels):
    positives = [s for s, y in zip(scores, labels) if y == 1]
    negatives = [s for s, y in zip(scores, labels) if y == 0]
    if not positives or not negatives:
        return None
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return total / (len(positives) * len(negatives))


def bootstrap(scores, labels, seed, replicates, threshold):
    """CIs of the AUC, sensitivity and specificity at threshold, as the C code draws them: indices
    into the studies sorted by (score, label)."""
    pairs = sorted(zip(scores, labels))
    scores = [s for s, _ in pairs]
    labels = [y for _, y in pairs]
    n = len(scores)
    remainder = (1 << 64) % n
    state = seed
    aucs, sens, spec = [], [], []
    for _ in range(replicates):
        picks = []
        while len(picks) < n:
            state, x = splitmix64(state)
            if remainder == 0 or x < (1 << 64) - remainder:
                picks.append(x % n)
        s = [scores[i] for i in picks]
        y = [labels[i] for i in picks]
        m = measures(s, y, threshold)
        a = auc(s, y)
        if a is not None:
            aucs.append(a)
        if m["sensitivity"] is not None:
            sens.append(m["sensitivity"])
        if m["specificity"] is not None:
            spec.append(m["specificity"])
    return {name: (quantile7(v, 0.025), quantile7(v, 0.975))
            for name, v in (("auc", aucs), ("sensitivity", sens), ("specificity", spec))}


def close(a, b, tolerance=1e-9):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tolerance


def read_points(path):
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return [{k: (float(v) if v != "" else None) for k, v in row.items()} for row in rows]


def make_model(name, version, extra=()):
    path = os.path.join(OUT, name)
    if not os.path.exists(path):
        subprocess.run(["/usr/bin/python3", os.path.join(TOOLS, "test_model.py"), "--out", path,
                        "--model-version", version] + list(extra), check=True,
                       stdout=subprocess.DEVNULL)
    return path


def write(path, text):
    with open(path, "w") as fh:
        fh.write(text)


def main():
    os.makedirs(OUT, exist_ok=True)
    site = os.path.join(OUT, "site")
    if not os.path.exists(os.path.join(site, "labels.csv")):
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "make_calibration_set.py"), DATA,
                        site, "--extra"], check=True)
    model_a = make_model("model-a.onnx", "test-calib-a")
    model_b = make_model("model-b.onnx", "test-calib-b")
    result = os.path.join(OUT, "result")
    shutil.rmtree(result, ignore_errors=True)

    # 1. calibrate: three rows left out and listed, not fatal.
    labels_csv = os.path.join(site, "labels.csv")
    done = run("calibrate", "--labels", labels_csv, "--model", model_a, "--output", result,
               "--target-sensitivity", "0.9")
    check(done.returncode == 0, "calibrate failed: " + done.stderr)
    if done.returncode != 0:
        return
    check("3 of 51 rows could not be analysed" in done.stderr, "left-out count: " + done.stderr)
    for name in ("junk.dcm", "missing.dcm", "ct.dcm"):
        check(name in done.stderr, name + " not listed")
    check("Modality CT" in done.stderr, "gate refusal not named")
    for name in ("summary.txt", "thresholds.ini", "thresholds.csv", "round_thresholds.csv",
                 "scores.csv", "calibration.pdf"):
        check(os.path.exists(os.path.join(result, name)), name + " missing")
    check(not [f for f in os.listdir(result) if f.startswith(".")], "temp files left")

    # 2. The scores are what `cxrd infer` reports for the same files.
    with open(os.path.join(result, "scores.csv")) as fh:
        rows = list(csv.DictReader(fh))
    scores = [float(r["score"]) for r in rows]
    labels = [int(r["label"]) for r in rows]
    check(len(rows) == 48 and sum(labels) == 24, "48 studies, 24 positive")
    infer_out = os.path.join(OUT, "infer-model")
    shutil.rmtree(infer_out, ignore_errors=True)
    files = [os.path.join(site, r["path"]) for r in rows]
    done = run("infer", *files, "--output", infer_out, "--model", model_a)
    check(done.returncode == 0, "infer failed: " + done.stderr)
    for i, row in enumerate(rows):
        pid = "CAL%04d" % i
        with open(os.path.join(infer_out, pid, pid + "_predictions.json")) as fh:
            confidence = json.load(fh)["findings"][0]["confidence"]
        check(abs(confidence - scores[i]) <= 5e-6 * max(1, scores[i]),
              "score of %s: infer %r, calibrate %r" % (row["path"], confidence, scores[i]))

    # 3. The exact table, independently.
    points = read_points(os.path.join(result, "thresholds.csv"))
    distinct = sorted(set(scores))
    check([p["threshold"] for p in points] == distinct, "one row per distinct score, ascending")
    names = ["true_positives", "false_positives", "true_negatives", "false_negatives",
             "sensitivity", "specificity", "ppv", "npv", "tested_share", "tests_per_case"]
    for point in points + read_points(os.path.join(result, "round_thresholds.csv")):
        expected = measures(scores, labels, point["threshold"])
        for name in names:
            check(close(expected[name], point[name], 1e-12),
                  "threshold %r %s: expected %r, got %r" % (point["threshold"], name,
                                                            expected[name], point[name]))
    with open(os.path.join(result, "summary.txt")) as fh:
        summary = fh.read()
    expected_auc = auc(scores, labels)
    check("ROC AUC %.3f" % expected_auc in summary, "AUC %.3f not in summary" % expected_auc)

    # 4. The chosen threshold meets the target with the highest specificity.
    with open(os.path.join(result, "thresholds.ini")) as fh:
        section = fh.read()
    values = dict(line.split(" = ", 1) for line in section.splitlines() if " = " in line)
    chosen = float(values["Tuberculosis"])
    check(values["model_version"] == "test-calib-a", "section model_version")
    # Local date and time to the minute, so two calibrations of one day name different
    # thresholds in PDFs and audit rows.
    stamped = datetime.datetime.strptime(values["calibrated"], "%Y-%m-%d %H:%M")
    check(abs((datetime.datetime.now() - stamped).total_seconds()) < 600,
          "calibrated %r is not the local time of the run" % values["calibrated"])
    at_or_above = [s for s in distinct if s >= chosen]
    chosen_score = at_or_above[0]
    below = [s for s in distinct if s < chosen]
    check(not below or below[-1] < chosen <= chosen_score, "the decimal keeps the same calls")
    sens = measures(scores, labels, chosen)["sensitivity"]
    check(sens >= 0.9, "chosen sensitivity %r below target" % sens)
    best = measures(scores, labels, chosen)
    for other in distinct:  # no better point: higher specificity, or as high and more cases
        m = measures(scores, labels, other)
        check(m["sensitivity"] < 0.9 or m["specificity"] < best["specificity"] or
              (m["specificity"] == best["specificity"] and
               m["sensitivity"] <= best["sensitivity"]),
              "threshold %r dominates the chosen %r" % (other, chosen))
    print("chosen threshold %s (score %r): sensitivity %.3f, specificity %.3f, AUC %.4f"
          % (values["Tuberculosis"], chosen_score, sens,
             measures(scores, labels, chosen)["specificity"], expected_auc))

    # 5. Bootstrap CIs, re-implemented.
    intervals = bootstrap(scores, labels, 1, 2000, chosen_score)
    row = [p for p in points if p["threshold"] == chosen_score][0]
    for name in ("sensitivity", "specificity"):
        check(close(intervals[name][0], row[name + "_low"]) and
              close(intervals[name][1], row[name + "_high"]),
              "%s CI: expected %r, got %r-%r" % (name, intervals[name], row[name + "_low"],
                                                 row[name + "_high"]))
    auc_text = "ROC AUC %.3f (%.3f-%.3f)" % (expected_auc, *intervals["auc"])
    check(auc_text in summary, "AUC CI: %s not in summary" % auc_text)
    again = os.path.join(OUT, "result-again")
    shutil.rmtree(again, ignore_errors=True)
    run("calibrate", "--labels", labels_csv, "--model", model_a, "--output", again)
    with open(os.path.join(result, "thresholds.csv")) as a, \
            open(os.path.join(again, "thresholds.csv")) as b:
        check(a.read() == b.read(), "same seed, different thresholds.csv")

    # 6. The section pasted into a config changes presence exactly as expected.
    audit = os.path.join(OUT, "audit.sqlite")
    if os.path.exists(audit):
        os.remove(audit)
    config = os.path.join(OUT, "site.ini")
    write(config, "[model]\npath = %s\n[audit]\ndatabase = %s\n\n%s" % (model_a, audit, section))
    site_out = os.path.join(OUT, "infer-site")
    shutil.rmtree(site_out, ignore_errors=True)
    done = run("infer", *files, "--output", site_out, "--config", config)
    check(done.returncode == 0, "infer with the section failed: " + done.stderr)
    changed = 0
    for i in range(len(rows)):
        pid = "CAL%04d" % i
        with open(os.path.join(site_out, pid, pid + "_predictions.json")) as fh:
            present = json.load(fh)["findings"][0]["presence"]
        with open(os.path.join(infer_out, pid, pid + "_predictions.json")) as fh:
            before = json.load(fh)["findings"][0]["presence"]
        check(present == (scores[i] >= chosen_score),
              "%s: presence %r with score %r and threshold %r" % (pid, present, scores[i], chosen))
        changed += present != before
    check(changed > 0, "the site threshold changed no result")
    print("presence changed by the site section on %d of %d studies" % (changed, len(rows)))
    date = values["calibrated"]
    db = sqlite3.connect(audit)
    used = {r[0] for r in db.execute("SELECT thresholds FROM audit WHERE route = 'infer'")}
    db.close()
    check(used == {"site calibration of " + date}, "audit thresholds column: %r" % used)
    pdf = os.path.join(site_out, "CAL0000", "CAL0000_report.pdf")
    text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True).stdout
    check("Thresholds: site calibration of " + date in text, "PDF does not name the calibration")
    text = subprocess.run(["pdftotext", os.path.join(infer_out, "CAL0000", "CAL0000_report.pdf"),
                           "-"], capture_output=True, text=True).stdout
    check("Thresholds: model's own" in text, "PDF without a section does not say model's own")

    # 7. The threshold guard.
    guarded = os.path.join(OUT, "guard.ini")
    write(guarded, "[model]\npath = %s\n\n%s" % (model_b, section))
    done = run("infer", files[0], "--output", os.path.join(OUT, "infer-guard"), "--config",
               guarded)
    check(done.returncode == 1, "infer ran with a section for another model version")
    for needle in ("test-calib-a", "test-calib-b", "cxrd calibrate", "allow_model_change"):
        check(needle in done.stderr, "guard message lacks %r: %s" % (needle, done.stderr))
    print("guard: " + done.stderr.strip())
    serve_config = os.path.join(OUT, "serve.ini")
    roots = os.path.join(OUT, "roots")
    os.makedirs(roots, exist_ok=True)
    write(serve_config, "[server]\naddress = 127.0.0.1\nport = 0\n[paths]\ninput_root = %s\n"
          "output_root = %s\n[auth]\nsecret = calibrate-test-secret-0123456789abcdef\n%s"
          % (roots, roots, open(guarded).read()))
    try:
        done = run("serve", "--config", serve_config, timeout=60)
        check(done.returncode == 1 and "test-calib-a" in done.stderr,
              "serve started with a section for another model version: " + done.stderr)
    except subprocess.TimeoutExpired:
        check(False, "serve did not refuse to start")
    # With the model it was made for, serve starts and logs which thresholds it uses.
    write(serve_config, "[server]\naddress = 127.0.0.1\nport = 0\n[paths]\ninput_root = %s\n"
          "output_root = %s\n[auth]\nsecret = calibrate-test-secret-0123456789abcdef\n"
          "[model]\npath = %s\n\n%s" % (roots, roots, model_a, section))
    server = subprocess.Popen([CXRD, "serve", "--config", serve_config], stderr=subprocess.PIPE,
                              text=True)
    logged = ""
    try:
        for line in server.stderr:
            logged += line
            if "thresholds:" in line or "not starting" in line:
                break
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    check("thresholds: site calibration of " + values["calibrated"] in logged,
          "serve did not log the site calibration: " + logged)
    write(guarded, "[model]\npath = %s\n\n%s\nallow_model_change = true\n" % (model_b, section))
    done = run("infer", files[0], "--output", os.path.join(OUT, "infer-guard"), "--config",
               guarded)
    check(done.returncode == 0, "allow_model_change did not let infer run: " + done.stderr)
    check("allow_model_change = true" in done.stderr and "test-calib-a" in done.stderr,
          "no log line for the override: " + done.stderr)
    print("override: " + done.stderr.strip().splitlines()[0])

    # 8. Refusals.
    few = os.path.join(site, "few.csv")
    with open(labels_csv) as fh:
        lines = fh.read().splitlines()
    positives = [line for line in lines[1:49] if line.endswith(",1")][:19]
    negatives = [line for line in lines[1:49] if line.endswith(",0")]
    write(few, "\n".join([lines[0]] + positives + negatives) + "\n")
    done = run("calibrate", "--labels", few, "--model", model_a, "--output",
               os.path.join(OUT, "few"))
    check(done.returncode == 1 and "19 positives and 24 negatives" in done.stderr and
          "1 more positive" in done.stderr, "too few positives: " + done.stderr)
    check(not os.path.exists(os.path.join(OUT, "few")), "outputs written on a refusal")
    print("too few: " + done.stderr.strip())
    bad = os.path.join(site, "bad.csv")
    write(bad, "\n".join([lines[0]] + lines[1:49] + ["dicom/x.dcm,2", "dicom/y.dcm,yes"]) + "\n")
    done = run("calibrate", "--labels", bad, "--model", model_a, "--output",
               os.path.join(OUT, "bad"))
    check(done.returncode == 1 and "line 50: label '2'" in done.stderr and
          "line 51: label 'yes'" in done.stderr, "bad labels: " + done.stderr)
    # One column per finding: an empty cell is "not labelled".
    per_finding = os.path.join(site, "per_finding.csv")
    write(per_finding, "path,Tuberculosis,Cardiomegaly\n" +
          "\n".join(line + ",0" for line in lines[1:49]) + "\ndicom/unlabelled.dcm,,1\n")
    done = run("calibrate", "--labels", per_finding, "--model", model_a, "--output",
               os.path.join(OUT, "per-finding"))
    check(done.returncode == 0, "per-finding CSV: " + done.stderr)
    check("1 rows have no label for Tuberculosis" in done.stdout, "unlabelled row not counted")

    # 9. Labels files as spreadsheets write them. European locales: ';' between fields, a decimal
    # comma, a byte order mark, CRLF, a capitalised header and rows left empty (";;").
    with open(os.path.join(result, "scores.csv")) as fh:
        baseline_scores = fh.read()
    body = [line.rsplit(",", 1) for line in lines[1:49]]
    sheet = os.path.join(site, "sheet.csv")
    with open(sheet, "wb") as fh:
        fh.write(("\ufeffPath;Label;Note\r\n" + "".join("%s;%s,0;x\r\n" % (p, y) for p, y in body)
                  + ";;\r\n;;\r\n").encode())
    out = os.path.join(OUT, "sheet")
    shutil.rmtree(out, ignore_errors=True)
    done = run("calibrate", "--labels", sheet, "--model", model_a, "--output", out)
    check(done.returncode == 0, "';' labels file: " + done.stderr)
    if done.returncode == 0:
        with open(os.path.join(out, "scores.csv")) as fh:
            check(fh.read() == baseline_scores, "';' labels file: other studies or labels")
    # One study listed twice (the same row, another spelling of its path, a copy of its file)
    # counts once; twice with two labels is refused before anything is analysed.
    shutil.copy(os.path.join(site, body[0][0]), os.path.join(site, "dicom", "copy.dcm"))
    twice = os.path.join(site, "twice.csv")
    write(twice, "\n".join([lines[0]] + lines[1:49] + [lines[1], "./" + lines[2],
                                                       "dicom/copy.dcm," + body[0][1]]) + "\n")
    out = os.path.join(OUT, "twice")
    shutil.rmtree(out, ignore_errors=True)
    done = run("calibrate", "--labels", twice, "--model", model_a, "--output", out)
    check(done.returncode == 0, "duplicates: " + done.stderr)
    if done.returncode == 0:
        with open(os.path.join(out, "scores.csv")) as fh:
            check(fh.read() == baseline_scores, "a study listed twice was counted twice")
    for needle in ("line 50: %s: the same file as line 2" % body[0][0],
                   "line 51: ./%s: the same file as line 3" % body[1][0],
                   "line 52: dicom/copy.dcm: the same image as line 2",
                   "3 rows list a file or image of an earlier row"):
        check(needle in done.stderr, "duplicates: %r not in %s" % (needle, done.stderr))
    write(twice, "\n".join([lines[0]] + lines[1:49] + ["./%s,%d" % (body[0][0],
                                                                    1 - int(body[0][1]))]) + "\n")
    done = run("calibrate", "--labels", twice, "--model", model_a, "--output", out + "-conflict")
    check(done.returncode == 1 and "line 50: ./%s is the file of line 2, labelled %s there" %
          (body[0][0], body[0][1]) in done.stderr, "conflicting labels: " + done.stderr)
    write(twice, "\n".join([lines[0]] + lines[1:49] + ["dicom/copy.dcm,%d" %
                                                       (1 - int(body[0][1]))]) + "\n")
    done = run("calibrate", "--labels", twice, "--model", model_a, "--output", out + "-conflict")
    check(done.returncode == 1 and "line 50: dicom/copy.dcm is the image of line 2" in done.stderr,
          "conflicting labels of one image: " + done.stderr)
    check(not os.path.exists(out + "-conflict"), "outputs written on a refusal")
    # Two images whose SOP Instance UIDs (longer than a UID may be) part only after byte 79 are
    # two images: the UID was cut to 79 bytes, which made them one image with two labels.
    stem = "1.2.826.0.1.3680043.10.1013." + "1234567890." * 8
    for name, uid in (("long1.dcm", stem + "1"), ("long2.dcm", stem + "2")):
        dataset = pydicom.dcmread(os.path.join(site, body[0][0]))
        dataset.SOPInstanceUID = uid
        dataset.file_meta.MediaStorageSOPInstanceUID = uid
        dataset.save_as(os.path.join(site, "dicom", name))
    write(twice, "\n".join([lines[0]] + lines[1:49] + ["dicom/long1.dcm,1",
                                                       "dicom/long2.dcm,0"]) + "\n")
    done = run("calibrate", "--labels", twice, "--model", model_a, "--output", out + "-long")
    check(done.returncode == 0 and "the same image" not in done.stderr,
          "images whose UIDs part after byte 79: " + done.stderr)
    # Refused, naming why: a file saved in Windows-1252, a header with two label columns.
    legacy = os.path.join(site, "legacy.csv")
    with open(legacy, "wb") as fh:
        fh.write(("\n".join(lines[:49] + ["dicom/M\u00fcller.dcm,1"]) + "\n").encode("cp1252"))
    done = run("calibrate", "--labels", legacy, "--model", model_a, "--output", out + "-legacy")
    check(done.returncode == 1 and "line 50: text that is not UTF-8" in done.stderr and
          "CSV UTF-8" in done.stderr, "Windows-1252 labels file: " + done.stderr)
    with open(legacy, "wb") as fh:  # Excel's "Unicode Text": UTF-16 with a byte order mark
        fh.write(("\n".join(lines[:49]) + "\n").encode("utf-16"))
    done = run("calibrate", "--labels", legacy, "--model", model_a, "--output", out + "-legacy")
    check(done.returncode == 1 and "the file is UTF-16" in done.stderr and
          "CSV UTF-8" in done.stderr, "UTF-16 labels file: " + done.stderr)
    write(legacy, "path,label,Label\n" + "\n".join(line + ",0" for line in lines[1:49]) + "\n")
    done = run("calibrate", "--labels", legacy, "--model", model_a, "--output", out + "-legacy")
    check(done.returncode == 1 and "two columns `label` (columns 2 and 3)" in done.stderr,
          "two label columns: " + done.stderr)
    for label in ("TRUE", "yes", "0.5", ""):
        write(legacy, "\n".join(lines[:49] + ["dicom/x.dcm," + label]) + "\n")
        done = run("calibrate", "--labels", legacy, "--model", model_a, "--output",
                   out + "-legacy")
        check(done.returncode == 1 and "line 50: label '%s' is not 0 or 1" % label in done.stderr,
              "label %r: %s" % (label, done.stderr))


main()
if failures:
    print("%d failures" % len(failures))
    sys.exit(1)
print("calibrate: all checks passed")
