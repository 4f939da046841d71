#!/usr/bin/python3
"""The DICOM outputs (`cxrd infer --dicom`) against independent readers, on real radiographs of
the corpus with the default model: an Abnormal (SIIM CR), a TB Presumptive (966_fixed DX), a
Normal (an NIH image of the data folder as an 8-bit CR, since no corpus radiograph is Normal under
the default model) and a copy of the SIIM file with a UTF-8 name, accession number and referring
physician (written here with pydicom):

- dciodvfy (dicom3tools) reports no error on any of the three objects of each case;
- dsrdump (DCMTK) reads the SR with no error and shows every finding with its score (to the
  precision written), its presence as the rendering intent, its threshold and the overall result;
- pydicom reads all three: Patient and General Study attributes, accession number and referring
  physician equal the source's; new UIDs (under 2.25. or [dicom] uid_root), one new series per
  object, the source SOP Instance referenced; the Secondary Capture's pixels equal the heatmap
  PNG's (PIL) byte for byte, or for Normal the source PNG's grey in R, G and B; the document
  extracted from the Encapsulated PDF equals <pid>_report.pdf byte for byte;
- without --dicom no .dcm is written, and a rerun without it removes those of an earlier run;
- a bad [dicom] uid_root stops `infer` with a message naming it.

dicom_outputs_test.py CXRD DATA_DIR OUT_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys
import zlib

import numpy
import pydicom
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from png_dicom import make_dicom  # noqa: E402

sys.dont_write_bytecode = True

CXRD, DATA, OUT = sys.argv[1:4]
FINDINGS = ["Tuberculosis", "Cardiomegaly", "Pleural Thickening", "Pleural Effusion",
            "Pneumothorax", "Consolidation", "Atelectasis", "Nodule Mass", "Fibrosis",
            "Infiltration", "Calcification"]
SOP_CLASSES = {"sr": "1.2.840.10008.5.1.4.1.1.88.65", "heatmap": "1.2.840.10008.5.1.4.1.1.7",
               "report": "1.2.840.10008.5.1.4.1.1.104.1"}
UID_ROOT = "1.2.826.0.1.3680043.10.1437"
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL: " + message)


def infer(files, out, extra=(), config=None):
    command = [CXRD, "infer"] + list(files) + ["--output", out] + list(extra)
    if config:
        command += ["--config", config]
    return subprocess.run(command, capture_output=True, text=True)


NORMAL_PNG = "images/nih_darkcovidnet/00001385_000.png"


def source_path(*parts):
    return os.path.join(DATA, "dicom", *parts)


def make_utf8_copy(path):
    """The SIIM radiograph with non-ASCII names and the study attributes set."""
    ds = pydicom.dcmread(source_path("torchxrayvision",
                                     "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"))
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientID = "UTF8PAT"
    ds.PatientName = "Müller^Jürgen=山田^太郎"
    ds.ReferringPhysicianName = "Ødegård^Åsa"
    ds.AccessionNumber = "ACC-7731"
    ds.StudyID = "S42"
    ds.PatientBirthDate = "19700101"
    ds.PatientAge = "056Y"
    ds.save_as(path, write_like_original=False)


def valid_for_vr(keyword, value):
    """PS3.5 6.2 length and character rules for the copied attributes' VRs."""
    vr = pydicom.datadict.dictionary_VR(keyword)
    if value == "":
        return True
    if vr == "DA":
        return re.fullmatch(r"[0-9]{8}", value) is not None
    if vr == "TM":
        return re.fullmatch(r"[0-9]{2}[0-9.]{0,12}", value) is not None
    if vr == "CS":
        return len(value) <= 16 and re.fullmatch(r"[A-Z0-9_ \\]*", value) is not None
    if vr in ("SH", "LO"):
        return len(value) <= (16 if vr == "SH" else 64) and "\\" not in value
    if vr == "PN":
        groups = value.split("=")
        return len(groups) <= 3 and all(len(group) <= 64 for group in groups)
    return True


def dciodvfy_errors(path):
    run = subprocess.run(["dciodvfy", path], capture_output=True, text=True)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def check_case(name, folder, pid, source_file, expect_result):
    """All checks of one analysed file; returns the three datasets."""
    with open(os.path.join(folder, pid + "_predictions.json")) as saved:
        data = json.load(saved)
    check(data["result"] == expect_result, "%s: result %s, expected %s" %
          (name, data["result"], expect_result))
    source = pydicom.dcmread(source_file, stop_before_pixels=True)
    objects = {}
    for kind in ("sr", "heatmap", "report"):
        path = os.path.join(folder, "%s_%s.dcm" % (pid, kind))
        check(os.path.isfile(path), "%s: %s missing" % (name, path))
        if not os.path.isfile(path):
            return None
        errors = dciodvfy_errors(path)
        check(errors == [], "%s: dciodvfy %s: %s" % (name, kind, errors))
        ds = pydicom.dcmread(path)
        objects[kind] = ds
        check(ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1",
              "%s %s: transfer syntax %s" % (name, kind, ds.file_meta.TransferSyntaxUID))
        check(ds.SOPClassUID == SOP_CLASSES[kind] and
              ds.file_meta.MediaStorageSOPClassUID == SOP_CLASSES[kind],
              "%s %s: SOP class %s" % (name, kind, ds.SOPClassUID))
        check(ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID,
              "%s %s: meta instance UID differs" % (name, kind))
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                        "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",
                        "ReferringPhysicianName", "StudyID"):
            mine, theirs = str(ds.get(keyword, "")), str(source.get(keyword, ""))
            if not valid_for_vr(keyword, theirs):
                theirs = ""  # an invalid source value is written empty
            check(mine == theirs, "%s %s: %s %r, source %r" % (name, kind, keyword, mine, theirs))
        for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID):
            check(uid.startswith("2.25.") and len(uid) <= 64 and uid != source.SOPInstanceUID,
                  "%s %s: UID %s" % (name, kind, uid))
        check(ds.SeriesInstanceUID != source.get("SeriesInstanceUID", ""),
              "%s %s: reuses the source series" % (name, kind))
        check("AI" in ds.SeriesDescription, "%s %s: Series Description %r" %
              (name, kind, ds.SeriesDescription))
    series = {ds.SeriesInstanceUID for ds in objects.values()}
    check(len(series) == 3, "%s: the three objects share a series" % name)

    # References to the source instance.
    sr, sc, pdf = objects["sr"], objects["heatmap"], objects["report"]
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    ref = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    check(ref.ReferencedSOPInstanceUID == source.SOPInstanceUID and
          evidence.StudyInstanceUID == source.StudyInstanceUID,
          "%s: SR evidence does not name the source" % name)
    check(sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID,
          "%s: SC Source Image Sequence does not name the source" % name)
    check(pdf.SourceInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID,
          "%s: PDF Source Instance Sequence does not name the source" % name)

    # The PDF, byte for byte.
    with open(os.path.join(folder, pid + "_report.pdf"), "rb") as report:
        expected = report.read()
    document = bytes(pdf.EncapsulatedDocument)[:pdf.EncapsulatedDocumentLength]
    check(document == expected and len(pdf.EncapsulatedDocument) in
          (len(expected), len(expected) + 1), "%s: encapsulated PDF differs" % name)
    check(pdf.MIMETypeOfEncapsulatedDocument == "application/pdf", "%s: MIME type" % name)

    # The Secondary Capture's pixels.
    pixels = sc.pixel_array
    heatmap_png = os.path.join(folder, pid + "_heatmap.png")
    if expect_result == "Normal":
        check(not os.path.exists(heatmap_png), "%s: Normal has a heatmap PNG" % name)
        grey = numpy.asarray(Image.open(os.path.join(folder, pid + "_source_image.png")))
        expected_pixels = numpy.stack([grey] * 3, axis=-1)
        check(sc.BurnedInAnnotation == "NO", "%s: Normal SC burnt in" % name)
        check("Normal" in sc.SeriesDescription, "%s: Normal SC description" % name)
    else:
        expected_pixels = numpy.asarray(Image.open(heatmap_png).convert("RGB"))
        check(sc.BurnedInAnnotation == "YES", "%s: SC legend not declared" % name)
    check(sc.PhotometricInterpretation == "RGB" and sc.SamplesPerPixel == 3,
          "%s: SC is not RGB" % name)
    check(pixels.shape == expected_pixels.shape and numpy.array_equal(pixels, expected_pixels),
          "%s: SC pixels differ from the PNG (%s vs %s)" %
          (name, pixels.shape, expected_pixels.shape))

    # The SR through DCMTK: every finding, its score, presence and threshold.
    run = subprocess.run(["dsrdump", "-Ee", os.path.join(folder, pid + "_sr.dcm")],
                         capture_output=True, text=True)
    check(run.returncode == 0, "%s: dsrdump rc %d: %s" % (name, run.returncode, run.stderr))
    errors = [line for line in (run.stdout + run.stderr).splitlines()
              if line.startswith(("E:", "F:"))]
    check(errors == [], "%s: dsrdump errors %s" % (name, errors))
    dump = run.stdout
    check('"Chest CAD Report"' in dump, "%s: dsrdump: no Chest CAD Report root" % name)
    check('(,,"Overall result")="%s"' % data["result"] in dump,
          "%s: dsrdump: overall result missing" % name)
    blocks = re.split(r'<inferred from CODE:\(,,"Single Image Finding"\)=', dump)[1:]
    check(len(blocks) == len(FINDINGS), "%s: dsrdump shows %d findings" % (name, len(blocks)))
    for finding, block in zip(data["findings"], blocks):
        meaning = re.match(r'\([^,]*,[^,]*,"([^"]*)"\)', block)
        check(meaning is not None and meaning.group(1).lower() == finding["name"].lower(),
              "%s: dsrdump finding %s is %s" % (name, finding["name"],
                                                 meaning and meaning.group(1)))
        certainty = re.search(r'"Certainty of Finding"\)="([^"]+)" \(%', block)
        check(certainty is not None and
              abs(float(certainty.group(1)) - 100 * finding["confidence"]) < 1e-3,
              "%s: %s certainty %s vs confidence %s" %
              (name, finding["name"], certainty and certainty.group(1), finding["confidence"]))
        intent = "111150" if finding["presence"] else "111152"
        check('"Rendering Intent")=(%s,DCM' % intent in block,
              "%s: %s rendering intent, presence %s" % (name, finding["name"],
                                                          finding["presence"]))
        check(re.search(r'"CAD Operating Point"\)="[0-9.]+"', block) is not None,
              "%s: %s has no operating point" % (name, finding["name"]))
        check('"Algorithm Version")="%s"' % data["metadata"]["model_version"] in block,
              "%s: %s algorithm version" % (name, finding["name"]))
    return objects


def identity_variant(path, index, charset, fields, raw=None):
    """The corpus's CR chest (gdcm-CR-MONO1-10-chest) with its own study and the given
    patient attributes; raw: {tag: (VR, bytes)} written as they are."""
    ds = pydicom.dcmread(source_path("dcmbench", "gdcm-CR-MONO1-10-chest.dcm"))
    for group in (0x0008, 0x0010, 0x0018, 0x0020, 0x0028):  # stale group lengths
        if (group, 0) in ds:
            del ds[(group, 0)]
    ds.StudyInstanceUID = "%s.7.%d" % (UID_ROOT, index)
    ds.SeriesInstanceUID = "%s.8.%d" % (UID_ROOT, index)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "%s.9.%d" % (UID_ROOT, index)
    ds.StudyDate, ds.StudyTime = "20240102", "101500"
    if charset:
        ds.SpecificCharacterSet = charset
    for keyword, value in fields.items():
        setattr(ds, keyword, value)
    for tag, (vr, value) in (raw or {}).items():
        ds[tag] = pydicom.dataelem.DataElement(tag, vr, value)
    ds.save_as(path, write_like_original=False)


def drawn_not_as_text(pdf_path):
    """Text of the PDF's ActualText spans: where the glyphs drawn are not the characters (cairo
    marks a glyph cluster that way: an ellipsis standing for the characters it hides, a hyphen
    pango added at a line break)."""
    with open(pdf_path, "rb") as pdf:
        data = pdf.read()
    spans = []
    for stream in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:
            content = zlib.decompress(stream.group(1))
        except zlib.error:
            continue
        for hex_text in re.findall(rb"/ActualText\s*<([0-9a-fA-F]*)>", content):
            spans.append(bytes.fromhex(hex_text.decode()).decode("utf-16"))
    return spans


def check_identity():
    """A patient's identity through every output: names in the character sets of PS3.5 (the
    outputs must carry what pydicom reads from the source), a Patient's Name with two values,
    a Patient ID of the longest valid length, and --patient-id naming another patient than the
    file's PatientID."""
    folder = os.path.join(OUT, "identity")
    os.makedirs(folder, exist_ok=True)
    gb_name = "Zhang^San=乗俓^僜乛"  # GB18030 trail bytes 0x5C and 0x5E: not delimiters
    cases = [
        ("latin1", "ISO_IR 100", {"PatientName": "Müller^Zoë", "PatientID": "ID-LAT1",
                                  "ReferringPhysicianName": "Schäfer^Jörg"}, None, None),
        ("cyrillic", "ISO_IR 144", {"PatientName": "Иванов^Иван^Иванович",
                                    "PatientID": "ID-CYR1"}, None, None),
        ("arabic", "ISO_IR 127", {"PatientName": "قباني^لنزار", "PatientID": "ID-ARA1"}, None,
         None),
        ("jis", "\\ISO 2022 IR 87", {"PatientName": "Yamada^Tarou=山田^太郎=やまだ^たろう",
                                    "PatientID": "ID-JIS1"}, None, None),
        ("gb18030", "GB18030", {"PatientID": "ID-GB1"},
         {(0x0010, 0x0010): ("PN", gb_name.encode("gb18030"))}, gb_name),
        # Patient's Name has VM 1; a second value is dropped, the first kept (it used to leave
        # the objects without a name)
        ("two_names", None, {"PatientID": "ID-TWO1"},
         {(0x0010, 0x0010): ("PN", b"Doe^John\\Roe^Richard")}, "Doe^John"),
        ("longest", "ISO_IR 192", {"PatientID": "W" * 64,
                                   "PatientName": "Wolfeschlegel^Hubert^Blaine=" +
                                   "山" * 30 + "^" + "太" * 33 + "=" + "や" * 30 + "^" +
                                   "た" * 33}, None, None),
    ]
    for index, (name, charset, fields, raw, expected_name) in enumerate(cases):
        path = os.path.join(folder, name + ".dcm")
        identity_variant(path, 100 + index, charset, fields, raw)
        pid = fields["PatientID"]
        run = infer([path], os.path.join(folder, "out"), ["--dicom"])
        check(run.returncode == 0, "identity %s: infer failed: %s" % (name, run.stderr))
        if run.returncode != 0:
            continue
        patient = os.path.join(folder, "out", pid)
        if expected_name is None:
            expected_name = str(pydicom.dcmread(path).PatientName)
        for kind in ("sr", "heatmap", "report"):
            ds = pydicom.dcmread(os.path.join(patient, "%s_%s.dcm" % (pid, kind)))
            check(str(ds.PatientName) == expected_name and ds.PatientID == pid,
                  "identity %s %s: %r %r, expected %r %r" %
                  (name, kind, str(ds.PatientName), ds.PatientID, expected_name, pid))
            check(ds.get("SpecificCharacterSet", "") ==
                  ("" if str(ds.PatientName).isascii() else "ISO_IR 192"),
                  "identity %s %s: character set %r" %
                  (name, kind, ds.get("SpecificCharacterSet")))
        report = os.path.join(patient, pid + "_report.pdf")
        text = subprocess.run(["pdftotext", report, "-"], capture_output=True,
                              text=True).stdout
        flat = "".join(text.split())
        for part in re.split(r"[\^=]", expected_name):
            check("".join(part.split()) in flat,
                  "identity %s: PDF lacks name part %r" % (name, part))
        check(pid in flat, "identity %s: PDF lacks the Patient ID" % name)
        # Every glyph of the ID and the name is drawn as itself: no ellipsis hides a part of
        # them, no hyphen is added where a line breaks inside them (pdftotext reads the hidden
        # characters back, so it cannot see either).
        hidden = [span for span in drawn_not_as_text(report)
                  if span not in ("ff", "fi", "fl", "ffi", "ffl")  # DejaVu's ligatures
                  and any(c in pid + expected_name for c in span if c.isalnum())]
        check(hidden == [], "identity %s: PDF draws the ID or name otherwise than as its "
              "characters: %r" % (name, hidden))

    # --patient-id names another patient than the file: the folder and the JSON use it, the
    # DICOM outputs keep the file's PatientID (the PACS files them with the source's study),
    # and the PDF (also inside the Encapsulated PDF) prints both.
    source = os.path.join(folder, "latin1.dcm")
    run = infer([source], os.path.join(folder, "override"), ["--dicom", "--patient-id", "REQ-7"])
    check(run.returncode == 0, "identity override: infer failed: %s" % run.stderr)
    patient = os.path.join(folder, "override", "REQ-7")
    if run.returncode == 0:
        with open(os.path.join(patient, "REQ-7_predictions.json")) as saved:
            check(json.load(saved)["metadata"]["patient_id"] == "REQ-7", "override: JSON ID")
        for kind in ("sr", "heatmap", "report"):
            ds = pydicom.dcmread(os.path.join(patient, "REQ-7_%s.dcm" % kind))
            check(ds.PatientID == "ID-LAT1", "override %s: Patient ID %r" % (kind, ds.PatientID))
        text = subprocess.run(["pdftotext", os.path.join(patient, "REQ-7_report.pdf"), "-"],
                              capture_output=True, text=True).stdout
        check("REQ-7" in text and "(DICOM Patient ID: ID-LAT1)" in text,
              "override: the PDF does not show both IDs: %r" % text[:400])
    # Without --patient-id the two are one: printed once.
    text = subprocess.run(["pdftotext", os.path.join(folder, "out", "ID-LAT1",
                                                     "ID-LAT1_report.pdf"), "-"],
                          capture_output=True, text=True).stdout
    check("DICOM Patient ID" not in text, "the PDF names the DICOM Patient ID apart")


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    utf8 = os.path.join(OUT, "utf8.dcm")
    make_utf8_copy(utf8)
    # no corpus radiograph is Normal under the default model: one made from an NIH image that is
    normal = os.path.join(OUT, "normal.dcm")
    make_dicom(os.path.join(DATA, "cxr", NORMAL_PNG), normal, "NORMAL01", "Normal^Case",
               "ACC-N-0001", 1)
    siim = source_path("torchxrayvision",
                       "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm")
    cases = [
        ("abnormal", siim, "16d7f894-55d7-4d95-8957-d18987f0e981", "Abnormal"),
        ("tb", source_path("pylibjpeg-data", "JPEG2000Lossless", "966_fixed.dcm"),
         "2010101610-1", "TB Presumptive"),
        ("normal", normal, "NORMAL01", "Normal"),
        ("utf8", utf8, "UTF8PAT", "Abnormal"),
    ]
    out = os.path.join(OUT, "out")
    for name, path, pid, result in cases:
        run = infer([path], out, ["--dicom"])
        check(run.returncode == 0, "%s: infer failed: %s" % (name, run.stderr))
        objects = check_case(name, os.path.join(out, pid), pid, path, result)
        if name == "utf8" and objects:
            for ds in objects.values():
                check(ds.SpecificCharacterSet == "ISO_IR 192" and
                      str(ds.PatientName) == "Müller^Jürgen=山田^太郎",
                      "utf8: name %r in %s" % (str(ds.PatientName), ds.SpecificCharacterSet))
        if name == "abnormal" and objects:
            check("SpecificCharacterSet" not in objects["sr"], "ASCII case names a charset")

    # Default: no DICOM outputs; a rerun without --dicom removes an earlier run's.
    plain = os.path.join(OUT, "plain")
    run = infer([siim], plain)
    folder = os.path.join(plain, cases[0][2])
    check(run.returncode == 0 and not any(n.endswith(".dcm") for n in os.listdir(folder)),
          "default run wrote DICOM files: %s" % os.listdir(folder))
    folder = os.path.join(out, cases[0][2])
    run = infer([siim], out)
    check(run.returncode == 0 and not any(n.endswith(".dcm") for n in os.listdir(folder)),
          "rerun without --dicom kept DICOM files: %s" % os.listdir(folder))

    # A source without a Study or a Series Instance UID cannot anchor the outputs (the SR's
    # evidence names both): refused, nothing written.
    for attribute, pid in (("StudyInstanceUID", "NOSTUDY"), ("SeriesInstanceUID", "NOSERIES")):
        source = os.path.join(OUT, pid.lower() + ".dcm")
        ds = pydicom.dcmread(siim)
        delattr(ds, attribute)
        ds.PatientID = pid
        ds.save_as(source)
        run = infer([source], os.path.join(OUT, pid.lower()), ["--dicom"])
        check(run.returncode != 0 and "Cannot make DICOM outputs from this image" in run.stderr
              and not os.path.exists(os.path.join(OUT, pid.lower(), pid)),
              "source without %s: rc %d %s" % (attribute, run.returncode, run.stderr))

    # A source UID that is no UID (a formula, too long) would be copied into the outputs'
    # references, which a PACS may refuse: refused, nothing written. Leading zeros in a
    # component are common and kept, so that the reference still equals the source's UID.
    for uid, pid, refused in (('=HYPERLINK("x")', "BADUID", True),
                              ("1.2.840." + "1" * 70, "LONGUID", True),
                              ("1.2.03.4", "ZEROUID", False)):
        source = os.path.join(OUT, pid.lower() + ".dcm")
        ds = pydicom.dcmread(siim)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.PatientID = pid
        ds.save_as(source)
        run = infer([source], os.path.join(OUT, pid.lower()), ["--dicom"])
        written = os.path.join(OUT, pid.lower(), pid)
        if refused:
            check(run.returncode != 0 and "is not a UID" in run.stderr
                  and not os.path.exists(written), "source SOP Instance UID %r: rc %d %s"
                  % (uid, run.returncode, run.stderr))
        else:
            check(run.returncode == 0, "source SOP Instance UID %r: %s" % (uid, run.stderr))
            if run.returncode == 0:
                sr = pydicom.dcmread(os.path.join(written, pid + "_sr.dcm"))
                evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
                reference = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
                check(reference.ReferencedSOPInstanceUID == uid,
                      "SR refers to %r, not %r" % (reference.ReferencedSOPInstanceUID, uid))

    # [dicom] uid_root.
    config = os.path.join(OUT, "root.ini")
    with open(config, "w") as ini:
        ini.write("[dicom]\nuid_root = %s\n" % UID_ROOT)
    rooted = os.path.join(OUT, "rooted")
    run = infer([siim], rooted, ["--dicom"], config)
    check(run.returncode == 0, "uid_root run failed: %s" % run.stderr)
    for kind in ("sr", "heatmap", "report"):
        path = os.path.join(rooted, cases[0][2], "%s_%s.dcm" % (cases[0][2], kind))
        if os.path.isfile(path):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID):
                check(uid.startswith(UID_ROOT + ".") and len(uid) <= 64 and
                      re.fullmatch(r"[0-9.]+", uid) is not None,
                      "uid_root: %s UID %s" % (kind, uid))
    with open(config, "w") as ini:
        ini.write("[dicom]\nuid_root = 1.02.3\n")
    run = infer([siim], os.path.join(OUT, "badroot"), ["--dicom"], config)
    check(run.returncode != 0 and "uid_root" in run.stderr and "leading zero" in run.stderr,
          "bad uid_root accepted: rc %d %s" % (run.returncode, run.stderr))

    check_identity()

    if failures:
        print("%d failures" % len(failures))
        sys.exit(1)
    print("dicom outputs: all checks passed")


main()
