"""A DICOM file made from a PNG of the data folder, for tests that need a radiograph with a known
result under the default model (written into the build tree, never committed): Secondary
Capture, CR, PA, 8-bit MONOCHROME2 with an identity window, so cxrd renders the PNG's pixels."""
import numpy as np
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian


def make_dicom(png, path, patient_id, name, accession, index):
    """index makes the UIDs unique among the files of one test."""
    pixels = np.asarray(Image.open(png).convert("L"), np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.1012.%d" % index
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.1012.100.%d" % index
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.1012.200.%d" % index
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
    ds.Modality = "CR"
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
    ds.save_as(path, write_like_original=False)
