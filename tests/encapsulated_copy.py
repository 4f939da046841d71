"""Copies of DICOM data sets with their frame encapsulated in a transfer syntax no tool here
writes (Encapsulated Uncompressed, JPEG XL), for tests (written into the build tree, never
committed)."""
from pydicom.encaps import encapsulate
from pydicom.uid import UID_dictionary


def write_encapsulated(ds, fragment, syntax, target, name="test syntax"):
    """ds (a pydicom data set, changed) saved to target with fragment, padded to an even
    length, as its one frame in syntax, explicit VR little endian. pydicom 2.3 predates some
    syntaxes (JPEG XL): an unknown one is added to its UID table as `name`."""
    UID_dictionary.setdefault(syntax, (name, "Transfer Syntax", "", "", ""))
    ds.PixelData = encapsulate([fragment + b"\0" * (len(fragment) % 2)])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = syntax
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(target, write_like_original=True)
