#!/usr/bin/python3
"""The worklist on a large audit database: GET /results with the page's filters, and
POST /single_inference latency alone and while a reader pages the worklist (both use the audit
database's one connection). Prints medians per query for each binary given, so an older build
(--baseline) is measured in the same run on the same copy of the data. Not a test.

The database is generated once in --work: one real row written by `cxrd infer`, then --rows
copies of it, 30 s apart (a year of a busy screening programme at 1,000,000), with results
mixed 7 Normal : 2 Abnormal : 1 TB Presumptive (Tuberculosis present in the last, Pneumothorax in
every hundredth row), and only the index of the first releases (by SOP Instance UID). Each binary
opens a fresh copy, so its start-up (any index it creates) is timed too.

Usage: bench_worklist.py --cxrd BUILD/src/cxrd [--baseline OLD/cxrd] --model MODEL.onnx
           --dicom FILE.dcm --work DIR [--rows 1000000] [--repeat 5]
"""
import argparse
import datetime
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from cxrd_serve import Server  # noqa: E402


def make_database(cxrd, model, dicom, work, rows):
    path = os.path.join(work, "audit-%d.sqlite" % rows)
    if os.path.exists(path):
        return path
    seed = os.path.join(work, "seed")
    shutil.rmtree(seed, ignore_errors=True)
    # A patient ID of its own: test images often have none (every row gets its own below).
    subprocess.run([cxrd, "infer", dicom, "--output", seed, "--model", model, "--patient-id",
                    "W0000000"], check=True, capture_output=True)
    shutil.copy(os.path.join(seed, "cxrd_results.sqlite"), path + ".part")
    db = sqlite3.connect(path + ".part")
    # As releases before the worklist's indexes and findings table wrote it: each binary's
    # start-up then includes building whatever it needs.
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND"
                              " tbl_name = 'audit' AND name != 'audit_sop' AND sql IS NOT NULL"
                              ).fetchall():
        db.execute("DROP INDEX " + name)
    db.executescript("DROP TRIGGER IF EXISTS audit_findings_insert;"
                     "DROP TRIGGER IF EXISTS audit_findings_delete;"
                     "DROP TABLE IF EXISTS audit_findings;")
    columns = [c[1] for c in db.execute("PRAGMA table_info(audit)")]
    row = list(db.execute("SELECT * FROM audit LIMIT 1").fetchone())
    insert = "INSERT INTO audit VALUES (%s)" % ",".join("?" * len(columns))
    results = ["Normal"] * 7 + ["Abnormal"] * 2 + ["TB Presumptive"]
    # Tuberculosis present where the result says so, and a rare finding (Pneumothorax) in 1 %
    # of the rows, so that finding= matches some rows, not all or none.
    stored = json.loads(row[columns.index("predictions")])

    def predictions(tb, rare):
        for finding in stored["findings"]:
            if finding["name"] in ("Tuberculosis", "Pneumothorax"):
                finding["presence"] = tb if finding["name"] == "Tuberculosis" else rare
        return json.dumps(stored)
    variants = {(tb, rare): predictions(tb, rare) for tb in (False, True) for rare in (False, True)}
    start = datetime.datetime(2026, 1, 1)
    random.seed(1)
    batch = []
    for i in range(rows):
        row[columns.index("id")] = None
        row[columns.index("time")] = (start + datetime.timedelta(seconds=30 * i)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z")
        row[columns.index("result")] = random.choice(results)
        row[columns.index("predictions")] = variants[
            row[columns.index("result")] == "TB Presumptive", i % 100 == 0]
        row[columns.index("sop_instance_uid")] = "1.2.826.0.1.3680043.10.4000.%d" % i
        row[columns.index("patient_id")] = "W%07d" % i
        row[columns.index("job_id")] = "%032x" % (i // 1000)
        batch.append(list(row))
        if len(batch) == 50000:
            db.executemany(insert, batch)
            batch = []
    db.executemany(insert, batch)
    db.commit()
    db.close()
    os.rename(path + ".part", path)
    return path


def median_seconds(call, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(cxrd, label, args, database):
    base = os.path.join(args.work, "run-" + label)
    shutil.rmtree(base, ignore_errors=True)
    input_root, output_root = os.path.join(base, "in"), os.path.join(base, "out")
    os.makedirs(input_root)
    os.makedirs(output_root)
    shutil.copy(args.dicom, os.path.join(input_root, "image.dcm"))
    audit = os.path.join(base, "audit.sqlite")
    shutil.copy(database, audit)
    start = time.perf_counter()
    server = Server(cxrd, args.model, base, input_root, output_root, audit=audit)
    startup = time.perf_counter() - start
    figures = {"start-up (s)": startup}
    try:
        def get(query):
            code, body = server.request("GET", "/results?" + query)
            assert code == 200, body[:200]
        day = "from=%s&to=%s" % (urllib.parse.quote("2026-06-01T00:00:00+05:30"),
                                 urllib.parse.quote("2026-06-02T00:00:00+05:30"))
        queries = [("no filter (the page's default)", "limit=50"),
                   ("no filter, page 3", "limit=50&offset=100"),
                   ("a local day (the date picker)", day + "&limit=50"),
                   ("date=2026-06-01", "date=2026-06-01&limit=50"),
                   ("result=TB Presumptive", "result=TB+Presumptive&limit=50"),
                   ("a job", "job=%032x&limit=50" % 42),
                   ("a day and a finding", day + "&finding=Tuberculosis&limit=50"),
                   ("finding=Tuberculosis (10 % of rows)", "finding=Tuberculosis&limit=50"),
                   ("finding=Pneumothorax (1 % of rows)", "finding=Pneumothorax&limit=50")]
        for name, query in queries:
            get(query)  # warm the page cache
            figures[name] = median_seconds(lambda: get(query), args.repeat)

        body = {"input_image_path": os.path.join(input_root, "image.dcm"),
                "save_to_disk": False, "patient_id": "W0000000"}

        def infer():
            code, answer = server.request("POST", "/single_inference", body)
            assert code == 200, answer[:200]
        infer()
        figures["single_inference alone"] = median_seconds(infer, args.repeat)
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                get("limit=50")
        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        figures["single_inference while the worklist pages"] = median_seconds(infer, args.repeat)
        stop.set()
        thread.join()
    finally:
        server.stop()
    shutil.rmtree(base, ignore_errors=True)
    return figures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cxrd", required=True)
    parser.add_argument("--baseline", help="an older cxrd to measure beside it")
    parser.add_argument("--model", required=True)
    parser.add_argument("--dicom", required=True, help="an image the gate accepts")
    parser.add_argument("--work", required=True)
    parser.add_argument("--rows", type=int, default=1000000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    args.work = os.path.abspath(args.work)
    os.makedirs(args.work, exist_ok=True)
    database = make_database(args.cxrd, args.model, args.dicom, args.work, args.rows)
    print("audit database: %d rows, %.0f MiB; medians of %d, seconds" % (
        args.rows, os.path.getsize(database) / 2**20, args.repeat))
    runs = [("cxrd", args.cxrd)] + ([("baseline", args.baseline)] if args.baseline else [])
    results = {label: measure(binary, label, args, database) for label, binary in runs}
    names = list(results["cxrd"])
    print("%-44s" % "" + "".join("%12s" % label for label, _ in runs))
    for name in names:
        print("%-44s" % name + "".join("%12.4f" % results[label][name] for label, _ in runs))


if __name__ == "__main__":
    main()
