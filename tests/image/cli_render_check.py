#!/usr/bin/python3
"""`cxrd render` end to end: a MONOCHROME1 chest CR renders to a PNG of the image's size
that equals dcm2pnm +Wi 1 within one grey level, and to the same PNG from an Encapsulated
Uncompressed copy (written here: DCMTK 3.6.7 does not know the syntax); copies that pair
MONOCHROME1/2 with each Presentation LUT Shape (native and JPEG-LS) match dcm2pnm too; with
no window in the file, Pixel Padding is left out of the default window; 12 bits stored at
High Bit 15 render alike native and as RLE, JPEG Lossless and JPEG-LS copies; headers other
writers produce (lower-case photometric, half a rescale, decimal commas, a VOI LUT using fewer
bits than declared) render as dcm2pnm does;
replacing an output leaves no temporary file behind; failures (not DICOM, missing, unsupported syntax named in the
message) exit 1 and create no output; usage errors exit 2; --help exits 0.
Usage: cli_render_check.py CXRD DATA_DIR WORK_DIR"""
import os
import subprocess
import sys

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from encapsulated_copy import write_encapsulated  # noqa: E402

ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"


def dcm2pnm_levels(path, work):
    """dcm2pnm +Wi 1 of path, through dcml2pnm (dcm2pnm with DCMTK's JPEG-LS decoder)."""
    return dcmtk_levels(path, ["+Wi", "1"], work)


def dcmtk_levels(path, options, work):
    """dcm2pnm with the given VOI options, through dcml2pnm."""
    pgm = os.path.join(work, "reference.pgm")
    subprocess.run(["dcml2pnm"] + options + ["+op", path, pgm], check=True, capture_output=True)
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


def check_pixel_padding(cxrd, chest, work):
    """The default window (no window in the file) leaves Pixel Padding out (PS3.3 C.7.5.1.1.2):
    the chest padded with a 40-pixel border of unused values renders, inside the border, exactly
    as the chest alone does; without the padding attributes the border flattens the contrast.
    A single Pixel Padding Value and a range (noise between the value and its Range Limit),
    native and as JPEG-LS copies (the decoded-frame path)."""
    original = pydicom.dcmread(chest)
    for keyword in ("WindowCenter", "WindowWidth", "VOILUTSequence"):
        if keyword in original:
            delattr(original, keyword)
    stored = original.pixel_array
    # 12 bits stored (the 10-bit values unchanged), so the border can lie far from the image
    original.BitsStored, original.HighBit = 12, 11
    assert stored.max() < 4000, "the border values below must not occur in the image"
    rng = np.random.default_rng(0)
    margin = 40
    rows, columns = stored.shape

    def save(dataset, pixels, name):
        copy = dataset.copy()
        copy.Rows, copy.Columns = pixels.shape
        copy.PixelData = pixels.astype(np.uint16).tobytes()
        path = os.path.join(work, name)
        copy.save_as(path)
        jpeg_ls = os.path.join(work, "jls_" + name)
        subprocess.run(["dcmcjpls", path, jpeg_ls], check=True, capture_output=True)
        return path, jpeg_ls

    alone = save(original, stored, "alone.dcm")
    for limit in (None, 4000):
        padded_pixels = np.full((rows + 2 * margin, columns + 2 * margin), 4095, np.uint16)
        if limit is not None:
            padded_pixels[:] = rng.integers(limit, 4096, padded_pixels.shape)
        padded_pixels[margin:margin + rows, margin:margin + columns] = stored
        tagged = original.copy()
        # MONOCHROME1: the value is the range's top (black); unsigned pixels, so VR US
        tagged.add_new(0x00280120, "US", 4095)
        if limit is not None:
            tagged.add_new(0x00280121, "US", limit)
        padded = save(tagged, padded_pixels, "padded.dcm")
        untagged = save(original, padded_pixels, "untagged.dcm")
        for alone_path, padded_path, untagged_path in zip(alone, padded, untagged):
            expected = cxrd_levels(cxrd, alone_path, work)
            inside = (slice(margin, margin + rows), slice(margin, margin + columns))
            mine = cxrd_levels(cxrd, padded_path, work)
            assert np.array_equal(mine[inside], expected), (padded_path, limit)
            flattened = cxrd_levels(cxrd, untagged_path, work)[inside]
            assert np.max(np.abs(flattened - expected)) > 100, (untagged_path, limit)
    for name in os.listdir(work):
        if name != "chest.png":
            os.unlink(os.path.join(work, name))


def check_high_bit_in_codestreams(cxrd, chest, work):
    """12 bits stored at High Bit 15 (and 10 at 13), the bits below High Bit's field filled with
    junk: DCMTK's lossless encoders (RLE, JPEG Lossless, JPEG-LS) keep the whole 16-bit word, so
    the stored value sits at High Bit in the decoded frame as in native data. Every copy renders
    as the native file does, which matches dcm2pnm."""
    original = pydicom.dcmread(chest)
    stored = original.pixel_array.astype(np.uint32) * 4  # 10 bits to 12
    junk = np.random.default_rng(1).integers(0, 1 << 16, stored.shape, dtype=np.uint32)
    for bits_stored, high_bit in ((12, 15), (10, 13)):
        shift = high_bit + 1 - bits_stored
        values = stored >> (12 - bits_stored)
        words = (values << shift) | (junk & ((1 << shift) - 1))
        if high_bit < 15:
            words |= junk & (0xFFFF << (high_bit + 1)) & 0xFFFF  # overlay-like bits above
        copy = original.copy()
        copy.BitsStored, copy.HighBit = bits_stored, high_bit
        copy.WindowCenter, copy.WindowWidth = 1 << (bits_stored - 1), 1 << bits_stored
        copy.PixelData = words.astype("<u2").tobytes()
        native = os.path.join(work, "high_bit.dcm")
        copy.save_as(native)
        expected = cxrd_levels(cxrd, native, work)
        assert np.max(np.abs(expected - dcm2pnm_levels(native, work))) <= 1, (bits_stored,
                                                                             high_bit)
        for tool in ("dcmcrle", "dcmcjpeg", "dcmcjpls"):
            encoded = os.path.join(work, "high_bit_%s.dcm" % tool)
            subprocess.run([tool, native, encoded], check=True, capture_output=True)
            assert np.array_equal(cxrd_levels(cxrd, encoded, work), expected), (
                tool, bits_stored, high_bit)
            os.unlink(encoded)
        os.unlink(native)


def set_raw(dataset, tag, vr, text):
    """Writes a value byte for byte, as a careless writer would (pydicom would check it)."""
    value = text.encode("latin-1")
    value += b" " * (len(value) % 2)
    dataset[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def voi_table(bits_declared, largest):
    """A VOI LUT over the chest's 10-bit values whose entries reach only `largest`."""
    item = Dataset()
    item.add_new(0x00283002, "US", [1024, 0, bits_declared])
    curve = np.round(largest * (np.arange(1024) / 1023.0) ** 0.6).astype("<u2")
    item.add_new(0x00283006, "OW", curve.tobytes())
    return Sequence([item])


def check_header_variants(cxrd, chest, work):
    """Headers other writers produce, each rendered as dcm2pnm renders it (within 1 level):
    a lower-case photometric interpretation, a rescale with only one of its two values or a
    slope of 0 (all ignored, as DCMTK does), a window with decimal commas, Number of Frames 0,
    and a VOI LUT declared 16 bits whose entries reach 12 or 8 bits (scaled by the bits used:
    dcm2pnm's +Mv)."""
    def lower_case(d):
        set_raw(d, 0x00280004, "CS", "monochrome1")

    def slope_only(d):
        d.RescaleSlope, d.WindowCenter, d.WindowWidth = "2", "1100", "2048"

    def intercept_only(d):
        d.RescaleIntercept, d.WindowCenter, d.WindowWidth = "-50", "500", "1024"

    def slope_zero(d):
        d.RescaleSlope, d.RescaleIntercept = "0", "-50"

    def window_commas(d):
        set_raw(d, 0x00281050, "DS", "550,0")
        set_raw(d, 0x00281051, "DS", "1024,0")

    def no_frames(d):
        set_raw(d, 0x00280008, "IS", "0")

    def voi_lut(bits):
        def apply(d):
            del d.WindowCenter, d.WindowWidth
            d.VOILUTSequence = voi_table(16, (1 << bits) - 1)
        return apply

    variants = [("lower-case MONOCHROME1", lower_case, ["+Wi", "1"]),
                ("Rescale Slope only", slope_only, ["+Wi", "1"]),
                ("Rescale Intercept only", intercept_only, ["+Wi", "1"]),
                ("Rescale Slope 0", slope_zero, ["+Wi", "1"]),
                ("decimal commas", window_commas, ["+Wi", "1"]),
                ("Number of Frames 0", no_frames, ["+Wi", "1"]),
                ("VOI LUT of 12 bits declared 16", voi_lut(12), ["+Wl", "1", "+Mv"]),
                ("VOI LUT of 8 bits declared 16", voi_lut(8), ["+Wl", "1", "+Mv"])]
    path = os.path.join(work, "variant.dcm")
    for name, change, options in variants:
        copy = pydicom.dcmread(chest)
        change(copy)
        copy.save_as(path)
        difference = np.max(np.abs(cxrd_levels(cxrd, path, work) -
                                   dcmtk_levels(path, options, work)))
        assert difference <= 1, (name, difference)
    os.unlink(path)


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
    check_pixel_padding(cxrd, chest, work)
    check_high_bit_in_codestreams(cxrd, chest, work)
    check_header_variants(cxrd, chest, work)

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
