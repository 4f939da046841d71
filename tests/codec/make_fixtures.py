#!/usr/bin/python3
"""Builds codec test fixtures in the build tree: native source files from the shared corpus
are re-encoded by DCMTK (dcmcjpeg lossless with every predictor and a point transform,
dcmcrle, dcmcjpls), GDCM (gdcmconv --j2k), Python's zlib (Deflated Image Frame
Compression: the native frame as raw Deflate, which neither tool writes) and as it is
(Encapsulated Uncompressed: the native frame in one fragment, padded to an even length). For
each encoding, the frame's fragments and the image description are written next to the
expected stored values, which pydicom reads from the original native file. The C test decodes the fragments
with cxrd's codecs and compares. Usage: make_fixtures.py DATA_DIR OUT_DIR"""
import os
import subprocess
import sys
import zlib

import numpy as np
import pydicom
from pydicom.encaps import generate_pixel_data_frame

SOURCES = [
    ("cr10", "dcmbench/gdcm-CR-MONO1-10-chest.dcm"),
    ("ct16", "dcmbench/dicompyler-ct.0.dcm"),
    ("ct8", "dcmbench/gdcm-CT-MONO2-8-abdo.dcm"),
    ("rgb8", "pylibjpeg-data/LittleEndianExplicit/SC_rgb.dcm"),
    ("cts", "pydicom-test-files/CT_small.dcm"),
    ("mr", "pydicom-test-files/MR_small.dcm"),
]

TS = {
    "jpeg": "1.2.840.10008.1.2.4.57",
    "sv1": "1.2.840.10008.1.2.4.70",
    "rle": "1.2.840.10008.1.2.5",
    "jls": "1.2.840.10008.1.2.4.80",
    "j2k": "1.2.840.10008.1.2.4.90",
    "deflate": "1.2.840.10008.1.2.8.1",
    "encap": "1.2.840.10008.1.2.1.98",
}


def encodings(key):
    yield "sv1", "sv1", ["dcmcjpeg", "+e1"], 0
    if key in ("cr10", "ct16", "cts"):
        for predictor in range(1, 8):
            yield "p%d" % predictor, "jpeg", ["dcmcjpeg", "+el", "+sv", str(predictor)], 0
    if key in ("cr10", "ct8"):
        yield "pt2", "jpeg", ["dcmcjpeg", "+el", "+sv", "1", "+pt", "2"], 2
    yield "rle", "rle", ["dcmcrle"], 0
    yield "jls", "jls", ["dcmcjpls"], 0
    yield "j2k", "j2k", ["gdcmconv", "--j2k"], 0
    yield "deflate", "deflate", None, 0
    yield "encap", "encap", None, 0


def native_frame(original):
    """The first frame's native little-endian bytes."""
    if original.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.2":
        raise ValueError("big endian source")
    frame_bytes = (int(original.Rows) * int(original.Columns) * int(original.SamplesPerPixel) *
                   int(original.BitsAllocated) // 8)
    return original.PixelData[:frame_bytes]


def framed_native(name, original):
    """The fragment of the first frame written here: raw Deflate (RFC 1951, no header) of the
    native bytes, or those bytes as they are with a pad byte to an even length."""
    frame = native_frame(original)
    if name == "deflate":
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        return packer.compress(frame) + packer.flush()
    return frame + b"\0" * (len(frame) % 2)


def stored_values(ds, point_transform):
    bits_stored = int(ds.BitsStored)
    raw = ds.pixel_array.astype(np.int64)
    if raw.ndim == 3 and int(ds.SamplesPerPixel) == 1:
        raw = raw[0]
    mask = (1 << bits_stored) - 1
    values = raw & mask
    if int(ds.PixelRepresentation) == 1:
        sign = 1 << (bits_stored - 1)
        values = (values ^ sign) - sign
    if point_transform:
        values = (values >> point_transform) << point_transform
    return values.astype("<i4")


def write_fixture(stem, syntax, ds, fragment, original, point_transform):
    """stem.bin: the frame's fragment; stem.expect: the original's stored values; stem.meta:
    the encoded file's image description."""
    with open(stem + ".bin", "wb") as f:
        f.write(fragment)
    stored_values(original, point_transform).tofile(stem + ".expect")
    with open(stem + ".meta", "w") as f:
        f.write("%s %d %d %d %d %d %d %d %d %s\n" % (
            syntax, ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored,
            ds.HighBit, ds.PixelRepresentation, int(getattr(ds, "PlanarConfiguration", 0) or 0),
            ds.PhotometricInterpretation))


def main():
    data_dir, out_dir = sys.argv[1], sys.argv[2]
    done_marker = os.path.join(out_dir, ".done")
    if os.path.exists(done_marker):
        print("fixtures already made in %s" % out_dir)
        return 0
    os.makedirs(out_dir, exist_ok=True)
    scratch = os.path.join(out_dir, "dcm")
    os.makedirs(scratch, exist_ok=True)
    made = 0
    for key, rel in SOURCES:
        source = os.path.join(data_dir, "dicom", rel)
        original = pydicom.dcmread(source)
        for name, ts_key, command, point_transform in encodings(key):
            if command is None:
                write_fixture(os.path.join(out_dir, "%s_%s" % (key, name)), TS[ts_key],
                              original, framed_native(name, original), original, 0)
                made += 1
                continue
            target = os.path.join(scratch, "%s_%s.dcm" % (key, name))
            result = subprocess.run(command + [source, target], capture_output=True)
            if result.returncode != 0:
                print("skip %s %s: %s" % (key, name, result.stderr.decode()[:200]))
                continue
            ds = pydicom.dcmread(target)
            if ds.file_meta.TransferSyntaxUID != TS[ts_key]:
                print("skip %s %s: got %s" % (key, name, ds.file_meta.TransferSyntaxUID))
                continue
            frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
            fragment = next(generate_pixel_data_frame(ds.PixelData, frames))
            write_fixture(os.path.join(out_dir, "%s_%s" % (key, name)),
                          ds.file_meta.TransferSyntaxUID, ds, fragment, original,
                          point_transform)
            made += 1
    print("made %d fixtures" % made)
    if made < 40:
        return 1
    open(done_marker, "w").close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
