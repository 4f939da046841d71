"""DICOM files made from PNGs of the data folder, for tests that need radiographs with known
content (written into the build tree or /tmp, never committed): 8-bit MONOCHROME2 with an
identity window, so cxrd renders the PNG's pixels, PA view."""
import numpy as np
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"


def png_dataset(png, path, index, sop_class=SECONDARY_CAPTURE,
                uid_root="1.2.826.0.1.3680043.10.1012", modality="CR"):
    """The image, its SOP class and its study, series and instance UIDs (under uid_root, made
    unique by index); the caller adds the patient and saves."""
    pixels = np.asarray(Image.open(png).convert("L"), np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = "%s.%d" % (uid_root, index)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "%s.100.%d" % (uid_root, index)
    ds.SeriesInstanceUID = "%s.200.%d" % (uid_root, index)
    ds.Modality = modality
    ds.ViewPosition = "PA"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.WindowCenter = 128  # identity window: the pixels as in the PNG
    ds.WindowWidth = 256
    ds.PixelData = pixels.tobytes()
    return ds


def make_dicom(png, path, patient_id, name, accession, index):
    """A Secondary Capture with a full patient and study: UTF-8 name, accession number,
    referring physician, institution, study date and time."""
    ds = png_dataset(png, path, index)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientID = patient_id
    ds.PatientName = name
    ds.PatientSex = "F"
    ds.PatientAge = "041Y"
    ds.PatientBirthDate = "19850314"
    ds.AccessionNumber = accession
    ds.ReferringPhysicianName = "Sato^Hanako=佐藤^花子"
    ds.InstitutionName = "Case Test Clinic"
    ds.StudyDate = "20261127"
    ds.StudyTime = "081512.5"
    ds.save_as(path, write_like_original=False)
