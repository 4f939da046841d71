#!/usr/bin/python3
"""Derives the benchmark image once: a 2048x2048 uncompressed DX chest radiograph made from the
shared corpus's 966_fixed.dcm (DX chest PA, MONOCHROME1, 12-bit, JPEG 2000 lossless, 2128x2000):
GDCM decompresses it (gdcmconv --raw), the pixels are resampled (nearest neighbour) to
2048x2048 with numpy, and pydicom writes Explicit VR Little Endian with PatientID BENCH001.

Usage: make_image.py DATA_DIR OUT.dcm
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian

data, out = sys.argv[1:3]
if os.path.exists(out):
    sys.exit(0)
source = None
for folder, _, files in os.walk(os.path.join(data, "dicom")):
    if "966_fixed.dcm" in files:
        source = os.path.join(folder, "966_fixed.dcm")
        break
if source is None:
    sys.exit("966_fixed.dcm not found under %s/dicom" % data)
with tempfile.TemporaryDirectory() as scratch:
    raw = os.path.join(scratch, "raw.dcm")
    subprocess.run(["gdcmconv", "--raw", source, raw], check=True)
    dataset = pydicom.dcmread(raw)
    pixels = dataset.pixel_array
    rows = (np.arange(2048) * pixels.shape[0] // 2048)
    columns = (np.arange(2048) * pixels.shape[1] // 2048)
    resized = np.ascontiguousarray(pixels[rows][:, columns]).astype(np.uint16)
    dataset.Rows = 2048
    dataset.Columns = 2048
    dataset.PixelData = resized.tobytes()
    dataset.PatientID = "BENCH001"
    dataset.PatientName = "Bench^Image"
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for keyword in ["LossyImageCompression", "LossyImageCompressionRatio"]:
        if keyword in dataset:
            delattr(dataset, keyword)
    dataset.save_as(out + ".tmp", write_like_original=False)
    os.replace(out + ".tmp", out)
