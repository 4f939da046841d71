#!/usr/bin/python3
"""Decode benchmark: cxrd (bench_decode: parse, decode frame 1, render to 8-bit, write PGM)
against DCMTK's dcm2pnm (+Wi 1 +op: the same work) on full-size chest radiographs, one file
per transfer syntax, timed as processes in the same run, alternating, median of RUNS each.
CPU time (user + system, from wait4) is compared: this machine is shared, and wall time
mostly measures the other jobs; wall medians are printed too.

The files are derived once into FILES_DIR from two real chest images of the shared corpus:
966_fixed.dcm (DX, 2128x2000, 12-bit, JPEG 2000 lossless) made native by gdcmconv --raw and
re-encoded by DCMTK (dcmconv, dcmcrle, dcmcjpeg: lossless and 12-bit extended lossy,
dcmcjpls) and GDCM (gdcmconv --j2k); and the SIIM chest CR for JPEG baseline (DCMTK's
baseline encoder needs 8-bit input).
Usage: run_bench.py BENCH_DECODE DATA_DIR FILES_DIR [RUNS]"""
import os
import statistics
import subprocess
import sys
import time

SOURCE = "pylibjpeg-data/JPEG2000Lossless/966_fixed.dcm"
BASELINE = "torchxrayvision/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"

# name, command making it from the native file (None: copy of a corpus file), and how DCMTK
# renders it: "" = dcm2pnm reads it directly; a decompressor = Debian's dcm2pnm has no codec
# for it, so DCMTK's own decompressor runs first and both CPU times count; None = DCMTK
# cannot decode it at all.
DERIVED = [
    ("Explicit VR LE", ["dcmconv", "+te"], ""),
    ("Implicit VR LE", ["dcmconv", "+ti"], ""),
    ("Explicit VR BE", ["dcmconv", "+tb"], ""),
    ("Deflated", ["dcmconv", "+td"], ""),
    ("RLE Lossless", ["dcmcrle"], ""),
    ("JPEG Lossless SV1", ["dcmcjpeg", "+e1"], "dcmdjpeg"),
    ("JPEG Lossless P14 sv6", ["dcmcjpeg", "+el"], "dcmdjpeg"),
    ("JPEG Extended 12-bit", ["dcmcjpeg", "+ee"], "dcmdjpeg"),
    ("JPEG-LS Lossless", ["dcmcjpls"], "dcmdjpls"),
    ("JPEG-LS Near-Lossless", ["dcmcjpls", "+en", "+md", "2"], "dcmdjpls"),
    ("JPEG 2000 Lossless", ["gdcmconv", "--j2k"], None),
    ("JPEG 2000 (lossy)", ["gdcmconv", "--j2k", "--irreversible"], None),
    ("JPEG Baseline", None, "dcmdjpeg"),
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
    """CPU time (user + system) of the child in ms, and its wall time. CPU time is what the
    comparison uses: on a shared machine wall time mostly measures the other jobs."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = (time.perf_counter() - start) * 1e3
    error = child.stderr.read()
    child.stderr.close()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError("%s failed: %s" % (command[0], error.decode()[:200]))
    return (usage.ru_utime + usage.ru_stime) * 1e3, wall


def time_dcmtk(path, decompress, out, scratch, window):
    """dcm2pnm, preceded by DCMTK's decompressor where dcm2pnm cannot read the syntax.
    window: dcm2pnm's VOI option (+Wi 1 for the file's window, +Wm when it has none)."""
    cpu, wall = 0.0, 0.0
    source = path
    if decompress:
        source = scratch
        step_cpu, step_wall = time_process([decompress, path, scratch])
        cpu, wall = cpu + step_cpu, wall + step_wall
    step_cpu, step_wall = time_process(["dcm2pnm"] + window + ["+op", source, out])
    return cpu + step_cpu, wall + step_wall


def main():
    bench, data_dir, files_dir = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 7
    files = make_files(data_dir, files_dir)
    out = os.path.join(files_dir, "out.pgm")
    scratch = os.path.join(files_dir, "decompressed.dcm")
    print("median CPU time (user + system) of %d runs per file, cxrd and DCMTK alternating (ms);"
          " wall medians in brackets" % runs)
    print("%-24s %16s %16s %7s %6s  %s" % ("transfer syntax", "cxrd", "DCMTK", "ratio", "MB",
                                           "DCMTK path"))
    ratios = []
    for name, path, dcmtk in files:
        has_window = b"WindowCenter" in subprocess.run(["dcmdump", "+P", "0028,1050", path],
                                                       capture_output=True).stdout
        window = ["+Wi", "1"] if has_window else ["+Wm"]
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(time_process([bench, path, out]))
            if dcmtk is not None:
                theirs.append(time_dcmtk(path, dcmtk, out, scratch, window))
        ours_cpu = statistics.median(t[0] for t in ours)
        ours_wall = statistics.median(t[1] for t in ours)
        size = os.path.getsize(path) / 1e6
        if theirs:
            theirs_cpu = statistics.median(t[0] for t in theirs)
            theirs_wall = statistics.median(t[1] for t in theirs)
            ratio = ours_cpu / theirs_cpu
            ratios.append(ratio)
            print("%-24s %7.1f [%6.0f] %7.1f [%6.0f] %7.2f %6.1f  %s" % (
                name, ours_cpu, ours_wall, theirs_cpu, theirs_wall, ratio, size,
                (dcmtk + " + " if dcmtk else "") + "dcm2pnm"))
        else:
            print("%-24s %7.1f [%6.0f] %16s %7s %6.1f  %s" % (name, ours_cpu, ours_wall, "n/a",
                                                            "-", size, "cannot decode"))
    if ratios:
        geometric = 1.0
        for ratio in ratios:
            geometric *= ratio
        geometric **= 1.0 / len(ratios)
        print("ratio = cxrd / dcm2pnm (below 1: cxrd faster); geometric mean %.2f, worst %.2f"
              % (geometric, max(ratios)))
        print("n/a: DCMTK 3.6.7 has no JPEG 2000 decoder; Debian's dcm2pnm is built without "
              "the JPEG and JPEG-LS codecs, so DCMTK decompresses with dcmdjpeg/dcmdjpls first")
    return 0


if __name__ == "__main__":
    sys.exit(main())
