#!/usr/bin/python3
"""`cxrd render` end to end: a MONOCHROME1 chest CR renders to a PNG of the image's size
that equals dcm2pnm +Wi 1 within one grey level, and to the same PNG from an Encapsulated
Uncompressed copy (written here: DCMTK 3.6.7 does not know the syntax); copies that pair
MONOCHROME1/2 with each Presentation LUT Shape (native and JPEG-LS) match dcm2pnm too;
replacing an output leaves no temporary file behind; failures (not DICOM, missing, unsupported syntax named in the
message) exit 1 and create no output; usage errors exit 2; --help exits 0.
Usage: cli_render_check.py CXRD DATA_DIR WORK_DIR"""
import os
import subprocess
import sys

import numpy as np
import pydicom
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from encapsulated_copy import write_encapsulated  # noqa: E402

ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"


def dcm2pnm_levels(path, work):
    """dcm2pnm +Wi 1 of path, through dcml2pnm (dcm2pnm with DCMTK's JPEG-LS decoder)."""
    pgm = os.path.join(work, "reference.pgm")
    subprocess.run(["dcml2pnm", "+Wi", "1", "+op", path, pgm], check=True, capture_output=True)
    levels = np.asarray(Image.open(pgm).convert("L"), dtype=np.int32)
    os.unlink(pgm)
    return levels


def cxrd_levels(cxrd, path, work):
    png = os.path.join(work, "rendered.png")
    result = subprocess.run([cxrd, "render", path, png], capture_output=True)
    assert result.returncode == 0, result.stderr
    levels = np.asarray(Image.open(png), dtype=np.int32)
    os.unlink(png)
    return levels


def check_presentation_lut_shape(cxrd, chest, work):
    """Presentation LUT Shape decides the polarity when present (MONOCHROME1 with IDENTITY is
    shown as stored, MONOCHROME2 with INVERSE inverted), as dcm2pnm does; the encoded path
    (JPEG-LS) agrees with the native one."""
    upright = cxrd_levels(cxrd, chest, work)
    for photometric in ("MONOCHROME1", "MONOCHROME2"):
        for shape in (None, "IDENTITY", "INVERSE"):
            copy = pydicom.dcmread(chest)
            copy.PhotometricInterpretation = photometric
            if shape is not None:
                copy.PresentationLUTShape = shape
            native = os.path.join(work, "shape.dcm")
            copy.save_as(native)
            jpeg_ls = os.path.join(work, "shape_jls.dcm")
            subprocess.run(["dcmcjpls", native, jpeg_ls], check=True, capture_output=True)
            inverted = shape == "INVERSE" or (shape is None and photometric == "MONOCHROME1")
            for path in (native, jpeg_ls):
                mine = cxrd_levels(cxrd, path, work)
                difference = np.max(np.abs(mine - dcm2pnm_levels(path, work)))
                assert difference <= 1, (photometric, shape, path, difference)
                # bone bright exactly when the stored values are inverted
                assert np.array_equal(mine, upright if inverted else 255 - upright), (
                    photometric, shape, path)
            os.unlink(native)
            os.unlink(jpeg_ls)


def main():
    cxrd, data_dir, work = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    for name in os.listdir(work):
        os.unlink(os.path.join(work, name))
    corpus = os.path.join(data_dir, "dicom")
    chest = os.path.join(corpus, "dcmbench", "gdcm-CR-MONO1-10-chest.dcm")
    out = os.path.join(work, "chest.png")
    result = subprocess.run([cxrd, "render", chest, out], capture_output=True)
    assert result.returncode == 0, result.stderr
    mine = np.asarray(Image.open(out), dtype=np.int32)
    assert mine.shape == (440, 440), mine.shape
    difference = np.max(np.abs(mine - dcm2pnm_levels(chest, work)))
    assert difference <= 1, difference

    encapsulated = os.path.join(work, "chest98.dcm")
    # the native frame (one) as the one fragment (PS3.5 A.4.11)
    native = pydicom.dcmread(chest)
    write_encapsulated(native, native.PixelData, ENCAPSULATED_UNCOMPRESSED, encapsulated)
    again = os.path.join(work, "chest98.png")
    result = subprocess.run([cxrd, "render", encapsulated, again], capture_output=True)
    assert result.returncode == 0, result.stderr
    with open(out, "rb") as a, open(again, "rb") as b:
        assert a.read() == b.read(), "the encapsulated uncompressed copy renders differently"
    os.unlink(encapsulated)
    os.unlink(again)
    check_presentation_lut_shape(cxrd, chest, work)

    # Replacing an existing file works and leaves only the output behind.
    result = subprocess.run([cxrd, "render", chest, out], capture_output=True)
    assert result.returncode == 0
    assert sorted(os.listdir(work)) == ["chest.png"], os.listdir(work)

    # Failures: a text file, a missing file, an unsupported syntax; no output appears.
    text = os.path.join(work, "text.dcm")
    with open(text, "w") as f:
        f.write("not a DICOM file\n")
    # A syntax cxrd does not decode: a deflated-frame file relabelled JPEG 2000 Part 2
    # (a UID of the same length, so the file meta stays well formed).
    unsupported = os.path.join(work, "part2.dcm")
    with open(os.path.join(corpus, "pydicom-data", "liver_deflate.dcm"), "rb") as f:
        relabelled = f.read().replace(b"1.2.840.10008.1.2.8.1\0", b"1.2.840.10008.1.2.4.92", 1)
    with open(unsupported, "wb") as f:
        f.write(relabelled)
    for bad in (text, os.path.join(work, "missing.dcm"), unsupported):
        target = os.path.join(work, "bad.png")
        result = subprocess.run([cxrd, "render", bad, target], capture_output=True)
        assert result.returncode == 1, (bad, result.returncode)
        assert result.stderr.startswith(b"cxrd render: "), result.stderr
        assert not os.path.exists(target)
    result = subprocess.run([cxrd, "render", unsupported, "x.png"], capture_output=True)
    assert b"1.2.840.10008.1.2.4.92" in result.stderr, result.stderr
    os.unlink(text)
    os.unlink(unsupported)
    assert sorted(os.listdir(work)) == ["chest.png"], os.listdir(work)

    assert subprocess.run([cxrd, "render"], capture_output=True).returncode == 2
    assert subprocess.run([cxrd, "render", chest], capture_output=True).returncode == 2
    result = subprocess.run([cxrd, "render", "--help"], capture_output=True)
    assert result.returncode == 0 and result.stdout.startswith(b"Usage: cxrd render")
    print("cxrd render: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
