#!/usr/bin/python3
"""Writes the small seed files of the fuzz_dicom_parse corpus (tests/fuzz/dicom_parse/).

Seeds are made here with pydicom rather than copied from the shared corpus, so the repository
holds no third-party data. Each exercises one reader path: transfer syntaxes, sequences of
defined and undefined length, encapsulated pixel data, LUT sequences, character sets, files
without preamble or meta group, Presentation LUT Shape. Run: /usr/bin/python3 tests/dicom/make_fuzz_seeds.py OUTDIR
"""
import io
import os
import sys

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian,
                         ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless)


def image(rows=4, cols=4, bits=16, photometric="MONOCHROME2", samples=1):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyInstanceUID = "1.2.3.4"
    ds.StudyDate = "20240102"
    ds.Modality = "DX"
    ds.PatientName = "Doe^John^Q^Dr^Jr"
    ds.PatientID = "P001"
    ds.PatientSex = "M"
    ds.PatientAge = "045Y"
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = bits
    ds.BitsStored = bits if bits == 8 else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.WindowCenter = [2048, 1000]
    ds.WindowWidth = [4096, 500]
    ds.RescaleSlope = "1.5"
    ds.RescaleIntercept = "-10"
    ds.PixelData = bytes(range(rows * cols * samples * bits // 8 % 256)) * 0 + \
        bytes((i * 7) & 0xFF for i in range(rows * cols * samples * bits // 8))
    return ds


def write(ds, syntax, path, preamble=True, meta=True):
    buffer = io.BytesIO()
    if meta:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
        ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", "1.2.3")
        ds.file_meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", "1.2.3.4")
    ds.is_little_endian = syntax != ExplicitVRBigEndian
    ds.is_implicit_VR = syntax == ImplicitVRLittleEndian
    if preamble and meta:
        ds.preamble = b"\0" * 128
        pydicom.dcmwrite(buffer, ds, write_like_original=False)
    else:
        pydicom.dcmwrite(buffer, ds, write_like_original=True)
    data = buffer.getvalue()
    with open(path, "wb") as out:
        out.write(data)


def functional_groups():
    """An enhanced (functional group) image: no top-level window or rescale; the Shared group
    has a Frame VOI LUT and a Pixel Value Transformation, and frame 1's Per-frame item has its
    own Frame VOI LUT (two windows, SIGMOID), which wins."""
    ds = image()
    del ds.WindowCenter, ds.WindowWidth, ds.RescaleSlope, ds.RescaleIntercept
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.NumberOfFrames = 1
    shared_voi = Dataset()
    shared_voi.WindowCenter = 500
    shared_voi.WindowWidth = 1000
    transform = Dataset()
    transform.RescaleSlope = "2"
    transform.RescaleIntercept = "-5"
    transform.RescaleType = "US"
    shared = Dataset()
    shared.FrameVOILUTSequence = Sequence([shared_voi])
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frame_voi = Dataset()
    frame_voi.WindowCenter = [1200, 300]
    frame_voi.WindowWidth = [800, 100]
    frame_voi.VOILUTFunction = "SIGMOID"
    frame = Dataset()
    frame.FrameVOILUTSequence = Sequence([frame_voi])
    ds.PerFrameFunctionalGroupsSequence = Sequence([frame])
    return ds


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    p = lambda name: os.path.join(out_dir, name)
    write(image(), ExplicitVRLittleEndian, p("explicit_le.dcm"))
    write(image(), ImplicitVRLittleEndian, p("implicit_le.dcm"))
    write(image(), ExplicitVRBigEndian, p("explicit_be.dcm"))
    write(image(), DeflatedExplicitVRLittleEndian, p("deflated.dcm"))
    write(image(), ImplicitVRLittleEndian, p("no_meta_implicit.dcm"), preamble=False, meta=False)

    ds = image(bits=8, photometric="RGB", samples=3)
    write(ds, ExplicitVRLittleEndian, p("rgb.dcm"))
    write(image(bits=8, photometric="RGB", samples=3), ExplicitVRBigEndian, p("rgb_be_ob.dcm"))

    # Encapsulated pixel data: offset table + two fragments (contents are not a real codestream).
    ds = image()
    ds.PixelData = encapsulate([b"\xff\xd8abcdefgh", b"ijklmnop\xff\xd9"], has_bot=True)
    ds["PixelData"].VR = "OB"
    ds.NumberOfFrames = 2
    write(ds, RLELossless, p("encapsulated.dcm"))

    # LUT sequences: a 16-bit modality LUT and an 8-bit VOI LUT packed in words; nested items.
    ds = image()
    lut = Dataset()
    lut.LUTDescriptor = [4, 0, 16]
    lut.ModalityLUTType = "HU"
    lut.add_new(0x00283006, "US", [0, 100, 200, 300])
    ds.ModalityLUTSequence = Sequence([lut])
    voi = Dataset()
    voi.LUTDescriptor = [4, 0, 8]
    voi["LUTDescriptor"].VR = "US"
    voi.add_new(0x00283006, "OW", bytes([0, 85, 170, 255]))
    ds.VOILUTSequence = Sequence([voi])
    del ds.WindowCenter, ds.WindowWidth
    inner = Dataset()
    inner.CodeValue = "T-D3000"
    outer = Dataset()
    outer.ConceptNameCodeSequence = Sequence([inner])
    ds.ReferencedImageSequence = Sequence([outer, Dataset()])
    write(ds, ExplicitVRLittleEndian, p("lut_sequences.dcm"))
    write(ds, ImplicitVRLittleEndian, p("lut_sequences_implicit.dcm"))

    write(functional_groups(), ExplicitVRLittleEndian, p("functional_groups.dcm"))
    write(functional_groups(), ImplicitVRLittleEndian, p("functional_groups_implicit.dcm"))

    # ISO 2022 Japanese person name (the example of PS3.5 H.3.2).
    ds = image(rows=2, cols=2, bits=8)
    ds.SpecificCharacterSet = ["ISO 2022 IR 13", "ISO 2022 IR 87"]
    ds.PatientName = b"\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J="
    write(ds, ExplicitVRLittleEndian, p("charset_iso2022.dcm"))

    # MONOCHROME1 with the Presentation LUT Shape that the DX IOD pairs with it.
    ds = image(photometric="MONOCHROME1")
    ds.PresentationLUTShape = "INVERSE"
    write(ds, ExplicitVRLittleEndian, p("presentation_lut_shape.dcm"))

    # A lateral view coded in the View Code Sequence (PS3.16 CID 4010), with an empty
    # ViewPosition; signed pixels padded with a range (the padding's VR follows Pixel
    # Representation, so the implicit VR copy leaves it to the reader).
    ds = image()
    ds.ViewPosition = ""
    view = Dataset()
    view.CodeValue = "399173006"
    view.CodingSchemeDesignator = "SCT"
    view.CodeMeaning = "left lateral"
    ds.ViewCodeSequence = Sequence([view])
    ds.PixelRepresentation = 1
    ds.add_new(0x00280120, "SS", -2000)
    ds.add_new(0x00280121, "SS", -1990)
    write(ds, ExplicitVRLittleEndian, p("view_code_padding.dcm"))
    write(ds, ImplicitVRLittleEndian, p("view_code_padding_implicit.dcm"))


if __name__ == "__main__":
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1].startswith("-")):
        sys.exit("usage: make_fuzz_seeds.py [OUTDIR]  (default tests/fuzz/dicom_parse)")
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/dicom_parse")
