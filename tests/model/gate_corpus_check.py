#!/usr/bin/python3
"""The input gate of the shipped model on real files of the DICOM corpus, through `cxrd infer`
(the same pipeline as the server): each non-chest file is refused with the documented message
and its reason, and chest radiographs are analysed.

usage: gate_corpus_check.py CXRD MODEL.onnx DICOM_DIR SCRATCH_DIR"""
import glob
import os
import shutil
import subprocess
import sys

PREFIX = "Image is not a frontal chest radiograph: "

# file -> the reason that must follow PREFIX (a prefix of it for image scores)
REFUSED = {
    "pydicom-data/693_UNCR.dcm": "Modality CT is not a radiograph (CR or DX)",
    "pydicom-test-files/CT_small.dcm": "Modality CT is not a radiograph (CR or DX)",
    "pydicom-data/US1_UNCR.dcm": "Modality US is not a radiograph (CR or DX)",
    "pydicom-test-files/MR_small.dcm": "Modality MR is not a radiograph (CR or DX)",
    "pydicom-data/RG3_J2KI.dcm": "BodyPartExamined EXTREMITY is not the chest",
    "pylibjpeg-data/JPEGLosslessSV1/RG2_JPLL.dcm": "BodyPartExamined HIP is not the chest",
    # the inverted copy of a chest CR (MONOCHROME1 on MONOCHROME2 pixels): the image layer
    "torchxrayvision/Fake_MONOHR1.dcm": "image score ",
}
ACCEPTED = [
    "pydicom-data/RG1_J2KI.dcm",
    "pylibjpeg-data/JPEG2000Lossless/966_fixed.dcm",
    "dcmbench/gdcm-CR-MONO1-10-chest.dcm",
    "torchxrayvision/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm",
]


def infer(cxrd, model, path, out):
    run = subprocess.run([cxrd, "infer", path, "--output", out, "--model", model,
                          "--patient-id", "GATE"], capture_output=True, text=True, timeout=300)
    return run.returncode, run.stderr


def main(argv):
    cxrd, model, dicom, scratch = argv[1:5]
    shutil.rmtree(scratch, ignore_errors=True)
    failures = 0
    charset = sorted(glob.glob(os.path.join(dicom, "pydicom-charset-files", "*.dcm")))
    cases = [(f, REFUSED[f]) for f in sorted(REFUSED)]
    for path in charset:  # every charset file with pixels: 32 x 32 images
        cases.append((os.path.relpath(path, dicom), "image size 32x32 is not that of a chest "
                      "radiograph"))
    for name, reason in cases:
        out = os.path.join(scratch, "refused", os.path.basename(name))
        code, err = infer(cxrd, model, os.path.join(dicom, name), out)
        if "unable to render the pixel data" in err or "unable to fetch patient ID" in err:
            print("skip %s: no pixel data" % name)
            continue
        ok = code == 1 and (PREFIX + reason) in err and not os.path.exists(
            os.path.join(out, "GATE"))
        print("%s %s: %s" % ("ok  " if ok else "FAIL", name, err.strip().splitlines()[0]))
        failures += not ok
    for name in ACCEPTED:
        out = os.path.join(scratch, "accepted", os.path.basename(name))
        code, err = infer(cxrd, model, os.path.join(dicom, name), out)
        ok = code == 0 and os.path.exists(os.path.join(out, "GATE", "GATE_predictions.json"))
        print("%s %s: accepted" % ("ok  " if ok else "FAIL", name) if ok else
              "FAIL %s: %s" % (name, err.strip()))
        failures += not ok
    print("%d failures" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
