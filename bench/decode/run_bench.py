#!/usr/bin/python3
"""Decode benchmark: cxrd (bench_decode: parse, decode frame 1, render to 8-bit, write PGM)
against DCMTK's dcm2pnm (+Wi 1 +op: the same work) on full-size chest radiographs, one file
per transfer syntax, timed as processes in the same run, alternating, median of RUNS each.

The files are derived once into FILES_DIR from two real chest images of the shared corpus:
966_fixed.dcm (DX, 2128x2000, 12-bit, JPEG 2000 lossless) made native by gdcmconv --raw and
re-encoded by DCMTK (dcmconv, dcmcrle, dcmcjpeg, dcmcjpls) and GDCM (gdcmconv --j2k); and
the SIIM chest CR for JPEG baseline (DCMTK's baseline encoder needs 8-bit input).
Usage: run_bench.py BENCH_DECODE DATA_DIR FILES_DIR [RUNS]"""
import os
import statistics
import subprocess
import sys
import time

SOURCE = "pylibjpeg-data/JPEG2000Lossless/966_fixed.dcm"
BASELINE = "torchxrayvision/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"

# name, command making it from the native file (None: copy of a corpus file), DCMTK can read
DERIVED = [
    ("Explicit VR LE", ["dcmconv", "+te"], True),
    ("Implicit VR LE", ["dcmconv", "+ti"], True),
    ("Explicit VR BE", ["dcmconv", "+tb"], True),
    ("Deflated", ["dcmconv", "+td"], True),
    ("RLE Lossless", ["dcmcrle"], True),
    ("JPEG Lossless SV1", ["dcmcjpeg", "+e1"], True),
    ("JPEG Lossless P14 sv6", ["dcmcjpeg", "+el"], True),
    ("JPEG-LS Lossless", ["dcmcjpls"], True),
    ("JPEG-LS Near-Lossless", ["dcmcjpls", "+en", "+md", "2"], True),
    ("JPEG 2000 Lossless", ["gdcmconv", "--j2k"], False),
    ("JPEG 2000 (lossy)", ["gdcmconv", "--j2k", "--irreversible"], False),
    ("JPEG Baseline", None, True),
]


def make_files(data_dir, files_dir):
    os.makedirs(files_dir, exist_ok=True)
    native = os.path.join(files_dir, "native.dcm")
    if not os.path.exists(native):
        subprocess.run(["gdcmconv", "--raw", os.path.join(data_dir, "dicom", SOURCE), native],
                       check=True)
    made = []
    for name, command, dcmtk in DERIVED:
        target = os.path.join(files_dir, name.replace(" ", "_").replace("(", "").replace(")", "")
                              + ".dcm")
        if not os.path.exists(target):
            if command is None:
                subprocess.run(["cp", os.path.join(data_dir, "dicom", BASELINE), target],
                               check=True)
            else:
                result = subprocess.run(command + [native, target], capture_output=True)
                if result.returncode != 0:
                    print("cannot make %s: %s" % (name, result.stderr.decode()[:200]))
                    continue
        made.append((name, target, dcmtk))
    return made


def time_process(command):
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True)
    elapsed = (time.perf_counter() - start) * 1e3
    if result.returncode != 0:
        raise RuntimeError("%s failed: %s" % (command[0], result.stderr.decode()[:200]))
    return elapsed


def main():
    bench, data_dir, files_dir = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 7
    files = make_files(data_dir, files_dir)
    out = os.path.join(files_dir, "out.pgm")
    print("median of %d runs per file, processes timed alternately (ms)" % runs)
    print("%-24s %10s %10s %8s %12s" % ("transfer syntax", "cxrd", "dcm2pnm", "ratio",
                                        "file MB"))
    ratios = []
    for name, path, dcmtk in files:
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(time_process([bench, path, out]))
            if dcmtk:
                theirs.append(time_process(["dcm2pnm", "+Wi", "1", "+op", path, out]))
        ours_median = statistics.median(ours)
        size = os.path.getsize(path) / 1e6
        if theirs:
            theirs_median = statistics.median(theirs)
            ratio = ours_median / theirs_median
            ratios.append(ratio)
            print("%-24s %10.1f %10.1f %8.2f %12.1f" % (name, ours_median, theirs_median, ratio,
                                                        size))
        else:
            print("%-24s %10.1f %10s %8s %12.1f" % (name, ours_median, "n/a", "-", size))
    if ratios:
        geometric = 1.0
        for ratio in ratios:
            geometric *= ratio
        geometric **= 1.0 / len(ratios)
        print("ratio = cxrd / dcm2pnm (below 1: cxrd faster); geometric mean %.2f, worst %.2f"
              % (geometric, max(ratios)))
        print("n/a: DCMTK 3.6.7 has no JPEG 2000 decoder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
