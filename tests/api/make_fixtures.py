#!/usr/bin/python3
"""Fixtures for the server tests, made in the build tree, and made again whenever this generator,
the model exporter or the source image changes (the stamp is a SHA-256 of them): three test
models whose overall result is pinned (TB Presumptive, Abnormal, Normal;
tools/export/test_model.py thresholds) and DICOM files derived from a chest CR of the shared
corpus with DCMTK's dcmodify (distinct PatientIDs, names, a UTF-8 Greek name, a PatientID that
is not a safe folder name, none at all, two studies of one patient, one relabelled as a CT), and
one large image in large/ (the chest CR enlarged to 4096x4096 with pydicom), slow enough to
queue requests behind it.

Usage: make_fixtures.py TOOLS_EXPORT_DIR DATA_DIR OUT_DIR
"""
import hashlib
import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True

tools, data, out = sys.argv[1:4]
chest = os.path.join(data, "dicom", "dcmbench", "gdcm-CR-MONO1-10-chest.dcm")


def inputs_digest():
    """SHA-256 over everything the fixtures are made from: this generator, the model exporter
    and its helper, and the source image. A change to any of them remakes the fixtures."""
    digest = hashlib.sha256()
    for path in (os.path.abspath(__file__), os.path.join(tools, "test_model.py"),
                 os.path.join(tools, "contract.py"), chest):
        digest.update(path.encode() + b"\0")
        with open(path, "rb") as source:
            digest.update(hashlib.sha256(source.read()).digest())
    return digest.hexdigest()


os.makedirs(out, exist_ok=True)
stamp = os.path.join(out, "fixtures.sha256")
expected = inputs_digest()
if os.path.exists(stamp):
    with open(stamp) as made:
        if made.read().strip() == expected:
            sys.exit(0)
    os.remove(stamp)
# Made from other inputs (or half made): start from an empty folder.
for entry in os.listdir(out):
    path = os.path.join(out, entry)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)

models = {
    "model-tb.onnx": ["--all-thresholds", "1.01", "--threshold", "Tuberculosis=0"],
    "model-abnormal.onnx": ["--all-thresholds", "1.01", "--threshold", "Cardiomegaly=0"],
    "model-normal.onnx": ["--all-thresholds", "1.01"],
}
for name, args in models.items():
    subprocess.run(["/usr/bin/python3", os.path.join(tools, "test_model.py"), "--out",
                    os.path.join(out, name), "--model-version", "test-" + name[6:-5]] + args,
                   check=True)

dicom = os.path.join(out, "dicom")
os.makedirs(dicom, exist_ok=True)


def derive(name, *tags):
    path = os.path.join(dicom, name)
    shutil.copyfile(chest, path)
    if tags:
        command = ["dcmodify", "-nb", "-gin"]
        for tag in tags:
            command += ["-i", tag]
        subprocess.run(command + [path], check=True, stdout=subprocess.DEVNULL)
    return path


derive("pat001.dcm", "(0010,0020)=PAT001", "(0010,0010)=Doe^John", "(0010,1010)=045Y",
       "(0010,0040)=M", "(0008,0018)=1.2.826.0.1.3680043.10.1001.1")
derive("greek.dcm", "(0008,0005)=ISO_IR 192", "(0010,0020)=PATGR1",
       "(0010,0010)=Παπαδόπουλος^Νίκος", "(0010,1010)=061Y", "(0010,0040)=F",
       "(0008,0018)=1.2.826.0.1.3680043.10.1001.2")
derive("badid.dcm", "(0010,0020)=../evil", "(0008,0018)=1.2.826.0.1.3680043.10.1001.3")
derive("noid.dcm")
for i in range(8):
    derive("conc%d.dcm" % i, "(0010,0020)=PATC%d" % i, "(0010,0010)=Client^Number%d" % i,
           "(0008,0018)=1.2.826.0.1.3680043.10.1002.%d" % i)
# Two studies of one patient (distinct SOP Instance UIDs), and a chest file relabelled as CT.
derive("twin1.dcm", "(0010,0020)=TWIN1", "(0008,0018)=1.2.826.0.1.3680043.10.1003.1")
derive("twin2.dcm", "(0010,0020)=TWIN1", "(0008,0018)=1.2.826.0.1.3680043.10.1003.2")
derive("ct.dcm", "(0010,0020)=PATCT", "(0008,0060)=CT", "(0008,0018)=1.2.826.0.1.3680043.10.1004.1")
# A child's study with no PatientAge: the age comes from the birth and study dates.
derive("child.dcm", "(0010,0020)=PATKID", "(0010,0030)=20120410", "(0008,0020)=20210409",
       "(0008,0018)=1.2.826.0.1.3680043.10.1004.2")
# The detector's raw data, which a modality may also send to an AI node.
derive("forprocessing.dcm", "(0010,0020)=PATRAW", "(0008,0060)=DX", "(0008,0068)=FOR PROCESSING",
       "(0008,0018)=1.2.826.0.1.3680043.10.1004.3")
# A lateral view named only by the View Code Sequence (PS3.16 CID 4010), ViewPosition empty.
derive("lateral_coded.dcm", "(0010,0020)=PATLAT", "(0018,5101)=",
       "(0054,0220)[0].(0008,0100)=399173006", "(0054,0220)[0].(0008,0102)=SCT",
       "(0054,0220)[0].(0008,0104)=left lateral", "(0008,0018)=1.2.826.0.1.3680043.10.1004.4")
with open(os.path.join(dicom, "junk.dcm"), "wb") as junk:
    junk.write(b"this is not a DICOM file\n" * 10)
shutil.copyfile(os.path.join(dicom, "pat001.dcm"), os.path.join(dicom, "pat001.png"))

# Nearest-neighbour enlargement of pat001's pixels; Explicit VR Little Endian, 16 bits stored as
# in the source.
import numpy as np  # noqa: E402 - only this fixture needs them
import pydicom  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian  # noqa: E402

big = pydicom.dcmread(os.path.join(dicom, "pat001.dcm"))
pixels = big.pixel_array
rows = np.arange(4096) * pixels.shape[0] // 4096
columns = np.arange(4096) * pixels.shape[1] // 4096
big.PixelData = np.ascontiguousarray(pixels[rows][:, columns]).astype(pixels.dtype).tobytes()
big.Rows, big.Columns = 4096, 4096
big.PatientID = "PATBIG"
big.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
os.makedirs(os.path.join(out, "large"), exist_ok=True)
big.save_as(os.path.join(out, "large", "big.dcm"), write_like_original=False)
with open(stamp, "w") as made:
    made.write(expected + "\n")
