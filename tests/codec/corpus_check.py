#!/usr/bin/python3
"""Every file of the shared DICOM corpus through cxrd's reader, codecs and rendering, against
independent decoders:

- stored values of frame 1 equal those of DCMTK (dcmconv +te for native syntaxes, dcmdjpeg,
  dcmdrle, dcmdjpls) or GDCM (gdcmconv --raw, for JPEG 2000 which DCMTK 3.6.7 lacks), read
  back from the decompressed file with pydicom; for Deflated Image Frame Compression, which
  neither has, frame 1 inflated by Python's zlib into a native file (--inflate-frame); lossy
  syntaxes within the codec's tolerance;
- the retired progressive JPEG syntaxes, which the corpus lacks, on copies of three corpus
  files made by dcmcjpeg (+es spectral selection, +ep full progression) into REF_DIR;
- JPEG XL, which the corpus lacks and DCMTK 3.6.7 does not know, on copies made by cjxl
  (lossless and distance 1 from three corpus files, and a JPEG recompression of a JPEG
  Baseline chest radiograph's frame) against djxl's decoding (--jxl-frame);
- for monochrome files that carry a window, the rendered 8-bit image equals
  `dcm2pnm +Wi 1 -O` within one grey level (-O: overlays are not burnt into the image
  cxrd renders, which is the network's input).

References are made once into REF_DIR (shared by the release and sanitizer builds; each is
written to a temporary name and renamed, so an interrupted run leaves no half reference);
cxrd's outputs go to OUT_DIR. Prints counts per transfer syntax, the files the references
reject and every failure. Exit 1 on any failure.
Usage: corpus_check.py CODEC_DUMP DATA_DIR REF_DIR OUT_DIR
       corpus_check.py --inflate-frame SOURCE TARGET
       corpus_check.py --jxl-frame SOURCE TARGET"""
import concurrent.futures
import hashlib
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import pydicom
from pydicom.encaps import generate_pixel_data_frame
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from encapsulated_copy import write_encapsulated  # noqa: E402

NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
          "1.2.840.10008.1.2.1.99"}
JPEG = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.53",
        "1.2.840.10008.1.2.4.55", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"}
JPEGLS = {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}
J2K = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
       "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"}
RLE = {"1.2.840.10008.1.2.5"}
FRAME_DEFLATE = {"1.2.840.10008.1.2.8.1"}
JXL = {"1.2.840.10008.1.2.4.110", "1.2.840.10008.1.2.4.111", "1.2.840.10008.1.2.4.112"}
# Syntaxes cxrd decodes: a file of one of them refused as unsupported is a failure (only the
# syntaxes README lists as unsupported may be refused).
DECODED = NATIVE | JPEG | JPEGLS | J2K | RLE | FRAME_DEFLATE | JXL
LOSSY = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.53",
         "1.2.840.10008.1.2.4.55", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91",
         "1.2.840.10008.1.2.4.203", "1.2.840.10008.1.2.4.111", "1.2.840.10008.1.2.4.112"}
# Largest difference in stored values accepted for lossy syntaxes. JPEG DCT: IDCT and
# upsampling implementations may differ by a level or two (T.83 accuracy); JPEG-LS
# near-lossless decoding is deterministic; JPEG 2000 irreversible: float wavelet rounding; JPEG
# XL: the same library's float output, rounded by djxl and by cxrd.
TOLERANCE = {"1.2.840.10008.1.2.4.50": 2, "1.2.840.10008.1.2.4.51": 2,
             "1.2.840.10008.1.2.4.53": 2, "1.2.840.10008.1.2.4.55": 2,
             "1.2.840.10008.1.2.4.81": 0, "1.2.840.10008.1.2.4.91": 1,
             "1.2.840.10008.1.2.4.203": 1, "1.2.840.10008.1.2.4.111": 1,
             "1.2.840.10008.1.2.4.112": 1}
# Files where the reference is known to be wrong or cxrd lacks information, each with the
# reason; they are compared as stated and listed in the output, never silently skipped.
# Stored values compared with pydicom reading the original instead of DCMTK: DCMTK swaps
# 32-bit OW big-endian data as 16-bit words; pydicom, cxrd and the little-endian twin
# (rtdose_1frame.dcm) agree.
PYDICOM_REFERENCE = {
    "pydicom-test-files/rtdose_expb.dcm": "DCMTK reads 32-bit OW big endian as 16-bit words",
    "pydicom-test-files/rtdose_expb_1frame.dcm": "as rtdose_expb.dcm",
}
# Known cxrd defects, reported as such (not failures of this run, not hidden either).
KNOWN_ISSUES = {}
NAMES = {"1.2.840.10008.1.2": "Implicit VR LE", "1.2.840.10008.1.2.1": "Explicit VR LE",
         "1.2.840.10008.1.2.2": "Explicit VR BE", "1.2.840.10008.1.2.1.99": "Deflated",
         "1.2.840.10008.1.2.4.50": "JPEG Baseline", "1.2.840.10008.1.2.4.51": "JPEG Extended",
         "1.2.840.10008.1.2.4.53": "JPEG Spectral Selection", "1.2.840.10008.1.2.4.55":
         "JPEG Full Progression",
         "1.2.840.10008.1.2.4.57": "JPEG Lossless", "1.2.840.10008.1.2.4.70":
         "JPEG Lossless SV1", "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
         "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless", "1.2.840.10008.1.2.4.90":
         "JPEG 2000 Lossless", "1.2.840.10008.1.2.4.91": "JPEG 2000",
         "1.2.840.10008.1.2.4.201": "HTJ2K Lossless", "1.2.840.10008.1.2.4.202":
         "HTJ2K Lossless RPCL", "1.2.840.10008.1.2.4.203": "HTJ2K",
         "1.2.840.10008.1.2.5": "RLE Lossless",
         "1.2.840.10008.1.2.8.1": "Deflated frames", "1.2.840.10008.1.2.4.110":
         "JPEG XL Lossless", "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
         "1.2.840.10008.1.2.4.112": "JPEG XL"}


# Corpus files copied into the retired progressive syntaxes (10-bit grey, 8-bit RGB, signed
# 16-bit grey), which DCMTK writes and reads back but the corpus has no file of.
RETIRED_JPEG_SOURCES = ["dcmbench/gdcm-CR-MONO1-10-chest.dcm",
                        "pylibjpeg-data/LittleEndianExplicit/SC_rgb.dcm",
                        "pydicom-test-files/CT_small.dcm"]


def retired_jpeg_copies(corpus, cache_dir):
    """(path, name) of each RETIRED_JPEG_SOURCES file as dcmcjpeg writes it with spectral
    selection (+es, 1.2.840.10008.1.2.4.53) and full progression (+ep, .4.55), made once."""
    folder = os.path.join(cache_dir, "generated")
    os.makedirs(folder, exist_ok=True)
    copies = []
    for source in RETIRED_JPEG_SOURCES:
        for option in ("+es", "+ep"):
            name = "%s%s.dcm" % (os.path.basename(source)[:-4], option)
            target = os.path.join(folder, name)
            if not os.path.exists(target):
                code, output = make_reference(
                    ["dcmcjpeg", option, os.path.join(corpus, source), target], target)
                assert code == 0, output
            copies.append((target, "generated/" + name))
    return copies


# Corpus files copied into JPEG XL by cjxl: (source, JPEG Baseline: recompress its frame).
JXL_SOURCES = [("dcmbench/gdcm-CR-MONO1-10-chest.dcm", False),
               ("pylibjpeg-data/LittleEndianExplicit/SC_rgb.dcm", False),
               ("pydicom-test-files/CT_small.dcm", False),
               ("torchxrayvision/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm",
                True)]


def write_pnm(path, values, bits):
    """values [H,W] or [H,W,3] as PGM/PPM: 8-bit when bits <= 8, else 16-bit at maxval 65535
    (cjxl 0.7 misreads other 16-bit maxvals)."""
    wide = bits > 8
    with open(path, "wb") as f:
        f.write(b"P%d\n%d %d\n%d\n" % (6 if values.ndim == 3 else 5, values.shape[1],
                                         values.shape[0], 65535 if wide else 255))
        f.write(values.astype(">u2" if wide else "u1").tobytes())


def read_pnm(path):
    """A binary PGM/PPM as an integer array [H,W] or [H,W,3]."""
    with open(path, "rb") as f:
        data = f.read()
    fields, at = [], 0
    while len(fields) < 4:  # magic, width, height, maxval, each followed by whitespace
        while data[at:at + 1].isspace():
            at += 1
        end = at
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[at:end])
        at = end
    at += 1
    width, height, maxval = int(fields[1]), int(fields[2]), int(fields[3])
    shape = (height, width, 3) if fields[0] == b"P6" else (height, width)
    return np.frombuffer(data, ">u2" if maxval > 255 else "u1", int(np.prod(shape)),
                         at).reshape(shape).astype(np.int64)


def jxl_copies(corpus, cache_dir):
    """(path, name) of JPEG XL copies of JXL_SOURCES made once by cjxl: lossless (.110) and
    at distance 1 (.112) from the stored values, or the JPEG frame recompressed (.111).
    Scratch files carry the process id and copies are renamed into place, so the release and
    sanitizer runs may share the folder."""
    folder = os.path.join(cache_dir, "generated")
    os.makedirs(folder, exist_ok=True)
    copies = []
    for source, recompress in JXL_SOURCES:
        ds = pydicom.dcmread(os.path.join(corpus, source))
        stem = os.path.basename(source)[:-4][-24:]
        scratch = os.path.join(folder, "%s.in%d.%s" % (stem, os.getpid(),
                                                       "jpg" if recompress else "pnm"))
        if recompress:
            with open(scratch, "wb") as f:
                f.write(next(generate_pixel_data_frame(ds.PixelData, 1)))
            modes = [("1.2.840.10008.1.2.4.111", [])]
        else:
            bits = int(ds.BitsStored)
            write_pnm(scratch, ds.pixel_array.astype(np.int64) & ((1 << bits) - 1), bits)
            modes = [("1.2.840.10008.1.2.4.110", ["-d", "0"]),
                     ("1.2.840.10008.1.2.4.112", ["-d", "1"])]
        for syntax, options in modes:
            name = "%s.jxl%s.dcm" % (stem, syntax.rsplit(".", 1)[1])
            target = os.path.join(folder, name)
            if not os.path.exists(target):
                stream = "%s.%d.jxl" % (target, os.getpid())
                code, output = run(["cjxl"] + options + [scratch, stream])
                assert code == 0, output
                with open(stream, "rb") as f:
                    fragment = f.read()
                os.unlink(stream)
                temporary = "%s.tmp%d" % (target, os.getpid())
                write_encapsulated(pydicom.dcmread(os.path.join(corpus, source)), fragment,
                                   syntax, temporary, NAMES[syntax])
                os.replace(temporary, target)
            copies.append((target, "generated/" + name))
        os.unlink(scratch)
    return copies


def jxl_first_frame(source, target):
    """A native Explicit VR Little Endian copy of a JPEG XL file's first frame as djxl decodes
    it (colour as RGB)."""
    ds = pydicom.dcmread(source)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    with tempfile.TemporaryDirectory() as scratch:
        stream = os.path.join(scratch, "f.jxl")
        decoded = os.path.join(scratch, "f.ppm" if int(ds.SamplesPerPixel) == 3 else "f.pgm")
        with open(stream, "wb") as f:
            f.write(next(generate_pixel_data_frame(ds.PixelData, frames)))
        subprocess.run(["djxl", stream, decoded], check=True, capture_output=True)
        values = read_pnm(decoded)
    if values.ndim == 3:
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
    ds.PixelData = values.astype("<u2" if int(ds.BitsAllocated) == 16 else "u1").tobytes()
    ds["PixelData"].VR = "OW" if int(ds.BitsAllocated) == 16 else "OB"
    ds["PixelData"].is_undefined_length = False
    ds.NumberOfFrames = 1
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(target, write_like_original=False)


def reference_command(syntax, source, target):
    if syntax in NATIVE:
        return ["dcmconv", "+te", source, target]
    if syntax in JPEG:
        return ["dcmdjpeg", source, target]
    if syntax in RLE:
        return ["dcmdrle", source, target]
    if syntax in JPEGLS:
        return ["dcmdjpls", source, target]
    if syntax in J2K:
        return ["gdcmconv", "--raw", source, target]
    if syntax in FRAME_DEFLATE:
        return [sys.executable, os.path.abspath(__file__), "--inflate-frame", source, target]
    if syntax in JXL:
        return [sys.executable, os.path.abspath(__file__), "--jxl-frame", source, target]
    return None


def inflate_first_frame(source, target):
    """A native Explicit VR Little Endian copy of the first frame of a Deflated Image Frame
    Compression file: its fragment inflated by zlib (raw Deflate), cut to the frame's size."""
    ds = pydicom.dcmread(source)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    fragment = next(generate_pixel_data_frame(ds.PixelData, frames))
    bits = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel) * int(ds.BitsAllocated)
    ds.PixelData = zlib.decompress(fragment, -15)[:(bits + 7) // 8]
    ds["PixelData"].is_undefined_length = False
    ds.NumberOfFrames = 1
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(target, write_like_original=False)


def normalise(values, bits_stored, signed):
    values = values.astype(np.int64)
    if bits_stored >= 32:
        if not signed:
            values = values & 0xFFFFFFFF
        return values
    mask = (1 << bits_stored) - 1
    values = values & mask
    if signed:
        sign = 1 << (bits_stored - 1)
        values = (values ^ sign) - sign
    return values


def make_reference(command, target):
    """Runs command (whose last argument is target) into a temporary name, then renames."""
    temporary = target + ".tmp%d" % os.getpid()
    code, output = run(command[:-1] + [temporary])
    if code == 0 and os.path.exists(temporary):
        os.replace(temporary, target)
    elif os.path.exists(temporary):
        os.unlink(temporary)
    return code, output


def run(command, timeout=120):
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout)
        return result.returncode, (result.stdout + result.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired:
        return -1, "timeout"


def check_file(codec_dump, path, rel, cache_dir, out_dir):
    """Returns (syntax, outcome, detail); outcome is one of: equal, within, render-fail,
    mismatch, cxrd-error, ref-rejects, no-pixels, not-image, expected-unsupported."""
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        syntax = str(header.file_meta.TransferSyntaxUID)
    except Exception as error:  # not DICOM at all or no meta: cxrd must refuse cleanly too
        syntax = "(unreadable)"
        header = None
    key = hashlib.sha1(rel.encode()).hexdigest()[:16]
    ours_raw = os.path.join(out_dir, key + ".ours.raw")
    ours_png = os.path.join(out_dir, key + ".ours.png")
    code, output = run([codec_dump, path, ours_raw, ours_png])
    lines = output.split("\n")
    if code != 0 or not lines[0].startswith("ok "):
        # Our refusal is fine only where the references refuse too or the syntax is one we
        # document as unsupported.
        reference = os.path.join(cache_dir, key + ".ref.dcm")
        ref_code = 1
        command = reference_command(syntax, path, reference) if header is not None else None
        if command:
            if not os.path.exists(reference):
                ref_code, _ = make_reference(command, reference)
            else:
                ref_code = 0
        if code == 1 and "UNSUPPORTED" in lines[0] and syntax not in DECODED:
            return syntax, "expected-unsupported", lines[0]
        if code == 1 and ("NOT_FOUND" in lines[0] or header is not None and
                          "PixelData" not in header and "FloatPixelData" not in header):
            return syntax, "no-pixels", lines[0]
        if ref_code != 0:
            return syntax, "ref-rejects", lines[0]
        return syntax, "cxrd-error", lines[0][:300]
    fields = lines[0].split()
    rows, columns, samples = int(fields[1]), int(fields[2]), int(fields[3])
    render_status = fields[4]
    photometric = lines[1] if len(lines) > 1 else ""
    render_error = lines[2] if len(lines) > 2 else ""
    ours = np.fromfile(ours_raw, dtype="<i4")

    reference = os.path.join(cache_dir, key + ".ref.dcm")
    command = reference_command(syntax, path, reference)
    if command is None:
        return syntax, "no-reference", "no independent decoder for this syntax"
    reference_name = ("zlib" if syntax in FRAME_DEFLATE else "djxl" if syntax in JXL else
                      command[0])
    if rel in PYDICOM_REFERENCE:
        reference, reference_name = path, "pydicom"
    elif not os.path.exists(reference):
        ref_code, ref_output = make_reference(command, reference)
        if ref_code != 0 or not os.path.exists(reference):
            # Second opinion: pydicom's own decoders (native, RLE) where DCMTK/GDCM refuse.
            try:
                ref = pydicom.dcmread(path)
                ref.pixel_array
                reference, reference_name = path, "pydicom"
            except Exception:
                return syntax, "ref-rejects", "%s: %s" % (command[0], ref_output.strip()[:200])
    try:
        ref = pydicom.dcmread(reference)
        ref_pixels = ref.pixel_array
    except Exception as error:
        return syntax, "ref-rejects", "pydicom cannot read %s output: %s" % (command[0], error)
    frames = int(getattr(ref, "NumberOfFrames", 1) or 1)
    if frames > 1:
        ref_pixels = ref_pixels[0]
    bits_stored = int(ref.BitsStored)
    signed = int(getattr(ref, "PixelRepresentation", 0)) == 1
    expected = normalise(ref_pixels.reshape(-1), bits_stored, signed)
    got = normalise(ours, bits_stored, signed)
    if expected.size != got.size:
        return syntax, "mismatch", "%d samples, reference has %d" % (got.size, expected.size)
    difference = int(np.max(np.abs(expected - got))) if got.size else 0
    tolerance = TOLERANCE.get(syntax, 0) if syntax in LOSSY else 0
    if difference > tolerance:
        count = int(np.count_nonzero(expected != got))
        detail = "%d of %d samples differ from %s, max %d (tolerance %d)" % (
            count, got.size, reference_name, difference, tolerance)
        if rel in KNOWN_ISSUES:
            return syntax, "known-issue", detail + ": " + KNOWN_ISSUES[rel]
        return syntax, "mismatch", detail
    outcome = "equal" if difference == 0 else "within"
    detail = "max difference %d from %s" % (difference, reference_name)
    if reference_name == "pydicom":
        outcome += "-pydicom"

    # Rendering against dcm2pnm for monochrome files with a window.
    windowed = header is not None and "WindowCenter" in header and "WindowWidth" in header
    if windowed and samples == 1 and photometric.startswith("MONOCHROME"):
        if render_status != "rendered":
            return syntax, "render-fail", "not rendered: %s" % render_error
        pgm = os.path.join(cache_dir, key + ".dcm2pnm.pgm")
        if not os.path.exists(pgm):
            # Debian's dcm2pnm has no JPEG, JPEG-LS or JPEG 2000 codec: it renders the
            # reference decompression of those (DCMTK's own, GDCM's for JPEG 2000).
            source = path if syntax in NATIVE or syntax in RLE else reference
            pnm_code, pnm_output = make_reference(["dcm2pnm", "+Wi", "1", "-O", "+op", source,
                                                   pgm], pgm)
            if pnm_code != 0 or not os.path.exists(pgm):
                return syntax, outcome, detail + "; dcm2pnm rejects: " + pnm_output.strip()[:100]
        theirs = np.asarray(Image.open(pgm).convert("L"), dtype=np.int32)
        mine = np.asarray(Image.open(ours_png), dtype=np.int32)
        if theirs.shape != mine.shape:
            return syntax, "render-fail", "rendered %s, dcm2pnm %s" % (mine.shape, theirs.shape)
        render_difference = int(np.max(np.abs(theirs - mine)))
        if render_difference > 1:
            count = int(np.count_nonzero(np.abs(theirs - mine) > 1))
            return syntax, "render-fail", "render differs from dcm2pnm by up to %d (%d px)" % (
                render_difference, count)
        return syntax, outcome + "+render", detail + "; render max difference %d" % (
            render_difference)
    return syntax, outcome, detail


def main():
    if sys.argv[1] == "--inflate-frame":
        inflate_first_frame(sys.argv[2], sys.argv[3])
        return 0
    if sys.argv[1] == "--jxl-frame":
        jxl_first_frame(sys.argv[2], sys.argv[3])
        return 0
    codec_dump, data_dir, cache_dir, out_dir = sys.argv[1:5]
    os.makedirs(cache_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    corpus = os.path.join(data_dir, "dicom")
    files = []
    for root, _, names in os.walk(corpus):
        for name in names:
            if name.endswith((".md", ".psv", ".txt", ".dump", ".json", ".py")):
                continue
            path = os.path.join(root, name)
            files.append((path, os.path.relpath(path, corpus)))
    files.sort()
    files += retired_jpeg_copies(corpus, cache_dir) + jxl_copies(corpus, cache_dir)
    workers = int(os.environ.get("CXR_CORPUS_JOBS", "2"))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda item: (item[1],) + check_file(codec_dump, item[0],
                                                                        item[1], cache_dir,
                                                                        out_dir),
                                files))
    table = {}
    failures = []
    for rel, syntax, outcome, detail in results:
        row = table.setdefault(syntax, {})
        base = outcome.split("+")[0]
        if base == "within-pydicom":
            base = "within"
        row[base] = row.get(base, 0) + 1
        if outcome.endswith("+render"):
            row["render"] = row.get("render", 0) + 1
        # the copies made here must have a reference: their encoder's own decoder
        if base in ("mismatch", "cxrd-error", "render-fail") or (
                base == "ref-rejects" and rel.startswith("generated/")):
            failures.append((rel, syntax, outcome, detail))
    columns = ["equal", "equal-pydicom", "within", "render", "render-fail", "mismatch",
               "cxrd-error", "known-issue", "expected-unsupported", "ref-rejects",
               "no-reference", "no-pixels"]
    print("%-24s %5s " % ("transfer syntax", "files") + " ".join("%6s" % c[:6] for c in columns))
    for syntax in sorted(table):
        row = table[syntax]
        total = sum(v for k, v in row.items() if k != "render")
        print("%-24s %5d " % (NAMES.get(syntax, syntax)[:24], total) +
              " ".join("%6d" % row.get(c, 0) for c in columns))
    print("\ncolumns: equal = stored values equal DCMTK's/GDCM's; equal-pydicom = equal to "
          "pydicom's (where DCMTK/GDCM refuse or are wrong, listed); within = lossy, within "
          "tolerance; render = also rendered within 1 grey level of dcm2pnm +Wi 1 -O")
    print("\nfiles the references (DCMTK/GDCM) reject, and cxrd's answer:")
    for rel, syntax, outcome, detail in results:
        if outcome == "ref-rejects":
            print("  %s [%s]: %s" % (rel, NAMES.get(syntax, syntax), detail))
    print("\nrefused as unsupported by cxrd:")
    for rel, syntax, outcome, detail in results:
        if outcome == "expected-unsupported":
            print("  %s [%s]: %s" % (rel, NAMES.get(syntax, syntax), detail))
    print("\ncompared with pydicom instead of DCMTK/GDCM:")
    for rel, syntax, outcome, detail in results:
        if "pydicom" in outcome:
            print("  %s [%s]: %s%s" % (rel, NAMES.get(syntax, syntax), detail,
                                       " (" + PYDICOM_REFERENCE[rel] + ")"
                                       if rel in PYDICOM_REFERENCE else ""))
    print("\nlossy files: largest difference in stored values from the reference (tolerance):")
    for rel, syntax, outcome, detail in results:
        if syntax in LOSSY and outcome.split("+")[0] in ("equal", "within", "equal-pydicom",
                                                         "within-pydicom"):
            print("  %s [%s]: %s (tolerance %d)" % (rel, NAMES.get(syntax, syntax), detail,
                                                   TOLERANCE[syntax]))
    print("\nknown cxrd issues:")
    for rel, syntax, outcome, detail in results:
        if outcome == "known-issue":
            print("  %s [%s]: %s" % (rel, NAMES.get(syntax, syntax), detail))
    print("\nwithout an independent reference:")
    for rel, syntax, outcome, detail in results:
        if outcome == "no-reference":
            print("  %s [%s]" % (rel, NAMES.get(syntax, syntax)))
    if failures:
        print("\nFAILURES:")
        for rel, syntax, outcome, detail in failures:
            print("  %s [%s] %s: %s" % (rel, NAMES.get(syntax, syntax), outcome, detail))
    print("\n%d files, %d failures" % (len(results), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
