#!/usr/bin/python3
"""Reads every file of the shared DICOM corpus with `cxrd dump` and compares the metadata and
pixel description with DCMTK's dcmdump (run here, at test time) and, for text in a
non-ASCII character set, with pydicom's decoding.

Usage: corpus_compare.py CXRD DICOM_DIR
Prints one line per mismatch, the files DCMTK itself rejects, and a summary. Fails when a
field differs, when cxrd crashes, when cxrd rejects a file dcmdump reads, or when a known-broken
file is accepted.
"""
import concurrent.futures
import json
import os
import re
import struct
import subprocess
import sys

import pydicom

# Files the corpus README lists as broken in the DICOM structure: the reader must refuse them
# (parse error, or a pixel description error). 966.dcm, JPEG2000-embedded-sequence-delimiter.dcm
# and bad_sequence.dcm are broken inside their codestreams, which is codec/'s to refuse: their
# DICOM structure is valid and dcmdump reads them, so here they are compared like any file.
KNOWN_BROKEN = {"MR_truncated.dcm", "rtplan_truncated.dcm", "no_meta.dcm", "badVR.dcm",
                "emri_small_jpeg_2k_lossless_too_short.dcm"}

# Files dcmdump reads and cxrd refuses on purpose, with the reason; the test checks that cxrd
# still refuses them, so the list cannot go stale.
EXPECTED_REFUSALS = {
    "DICOMDIR-nooffset": "its last directory record declares 248 bytes but the file ends 24 "
                         "bytes early; DCMTK reads what is there, cxrd refuses truncated input",
}

SYNTAX_NAMES = {
    "Little Endian Implicit": "1.2.840.10008.1.2",
    "Little Endian Explicit": "1.2.840.10008.1.2.1",
    "Big Endian Explicit": "1.2.840.10008.1.2.2",
}

TEXT_FIELDS = {  # dump key: (tag, pydicom keyword)
    "patient_id": ("0010,0020", "PatientID"),
    "patient_name_raw": ("0010,0010", "PatientName"),
    "sop_instance_uid": ("0008,0018", "SOPInstanceUID"),
    "study_date": ("0008,0020", "StudyDate"),
    "modality": ("0008,0060", "Modality"),
}
INT_FIELDS = {  # pixel key: tag
    "rows": "0028,0010",
    "columns": "0028,0011",
    "bits_allocated": "0028,0100",
    "bits_stored": "0028,0101",
}

PYDICOM_FIELDS = [0]  # fields whose reference was pydicom (non-ASCII text, LUT sequences)

LINE = re.compile(r"^\(([0-9a-f]{4},[0-9a-f]{4})\) (\S\S) (.*?)\s+#\s*(\d+|u/l),")
HEX = re.compile(r"^[0-9a-f]{2}(\\[0-9a-f]{2})*$")


def parse_dcmdump(text):
    """Top-level elements of one file's dcmdump output as {tag: value text}; values that
    dcmdump prints as hex bytes (VR UN, OB) are decoded to text."""
    elements = {}
    for line in text.split("\n"):
        if line.startswith("# Used TransferSyntax: "):
            elements["syntax"] = line[len("# Used TransferSyntax: "):].strip()
        match = LINE.match(line)
        if not match:
            continue
        tag, vr, value = match.group(1).upper(), match.group(2), match.group(3)
        if tag in elements:
            continue
        if value.startswith("(no value available)"):
            value = ""
        elif value.startswith("[") and value.endswith("]"):
            value = value[1:-1]
        elif vr in ("UN", "OB", "??") and HEX.match(value):
            value = bytes.fromhex(value.replace("\\", "")).decode("latin-1")
        elements[tag] = value
    return elements


def dcmdump_batch(paths):
    """{path: elements or None (DCMTK rejects the file)} from one dcmdump run."""
    result = subprocess.run(["dcmdump", "-M", "+L", "-Un", "+F"] + paths, capture_output=True,
                            timeout=600)
    stdout = result.stdout.decode("latin-1")
    stderr = result.stderr.decode("latin-1")
    rejected = set(re.findall(r"^E: dcmdump: .*?reading file: (.*)$", stderr, re.M))
    sections = {}
    current = None
    for line in stdout.split("\n"):
        header = re.match(r"^# dcmdump \((\d+)/\d+\): (.*)$", line)
        if header:
            current = paths[int(header.group(1)) - 1]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {path: None if path in rejected or path not in sections
            else parse_dcmdump("\n".join(sections[path])) for path in paths}


def cxrd_batch(cxrd, paths):
    """{path: (rc, dump or None, message)}. One process for all files; after a crash the files
    are run one by one to name the culprit."""
    result = subprocess.run([cxrd, "dump"] + paths, capture_output=True, timeout=600)
    if result.returncode not in (0, 1):
        if len(paths) == 1:
            return {paths[0]: (result.returncode, None,
                               result.stderr.decode("utf-8", "replace")[-2000:])}
        out = {}
        for path in paths:
            out.update(cxrd_batch(cxrd, [path]))
        return out
    out = {}
    for line in result.stdout.decode("utf-8").splitlines():
        dump = json.loads(line)
        if "error" in dump:
            out[dump["file"]] = (1, None, dump["error"]["message"])
        else:
            out[dump["file"]] = (0, dump, "")
    return out


def pydicom_text(path, keyword):
    """The element's bytes as stored, decoded by pydicom in the file's character set (keeping
    empty trailing Person Name groups, which pydicom's PersonName formatting would drop)."""
    dataset = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    if keyword not in dataset:
        return ""
    raw = dataset.get_item(keyword).value
    if not isinstance(raw, bytes):
        return str(raw)
    encodings = pydicom.charset.convert_encodings(
        dataset.get("SpecificCharacterSet", "ISO_IR 6") or "ISO_IR 6")
    delimiters = {0x5E, 0x3D, 0x5C} if keyword == "PatientName" else {0x0D, 0x0A, 0x09, 0x0C,
                                                                        0x5C}
    return pydicom.charset.decode_bytes(raw, encodings, delimiters)


def pydicom_lut(path, keyword):
    """(entry_count, first_mapped, bits_per_entry, sum, min, max) of the first item of a LUT
    sequence as pydicom reads it, or None when there is none."""
    dataset = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    sequence = dataset.get(keyword)
    if not sequence or "LUTDescriptor" not in sequence[0] or not sequence[0].LUTDescriptor:
        return None
    descriptor = sequence[0].LUTDescriptor
    count = descriptor[0] or 65536
    data = sequence[0].LUTData
    if isinstance(data, bytes):
        if descriptor[2] <= 8 and len(data) < 2 * count:
            entries = list(data[:count])  # 8-bit entries packed two to a word
        else:
            entries = list(struct.unpack("<%dH" % count, data[:2 * count]))
    else:
        entries = list(data if isinstance(data, (list, pydicom.multival.MultiValue)) else [data])
        entries = entries[:count]
    return (count, descriptor[1], descriptor[2], sum(entries), min(entries), max(entries))


def pydicom_frame_window(path):
    """(centers, widths) text of frame 1's Frame VOI LUT macro (Per-frame Functional Groups
    item 1, else the Shared Functional Groups item) as pydicom reads it, or None."""
    dataset = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    for keyword in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        groups = dataset.get(keyword)
        if not groups:
            continue
        macro = groups[0].get("FrameVOILUTSequence")
        if macro and "WindowCenter" in macro[0] and "WindowWidth" in macro[0]:
            element = macro[0]

            def text(value):
                values = value if isinstance(value, pydicom.multival.MultiValue) else [value]
                return "\\".join(str(v) for v in values)
            return text(element.WindowCenter), text(element.WindowWidth)
    return None


def decimal_values(text):
    values = []
    for part in text.split("\\"):
        try:
            values.append(float(part.strip(" \0")))
        except ValueError:
            values.append(None)
    return values


def compare(path, reference, dump, problems):
    """Appends mismatch descriptions; returns the number of fields compared."""
    compared = 0
    meta = dump["meta"]
    pixels = dump.get("pixels")

    for key, (tag, keyword) in TEXT_FIELDS.items():
        raw = reference.get(tag, "")
        ours = meta[key]
        if any(ord(c) > 0x7E or ord(c) < 0x20 for c in raw):
            expected = pydicom_text(path, keyword).rstrip(" \0")
            if key != "patient_name_raw":
                expected = expected.strip(" ")
            source = "pydicom"
            PYDICOM_FIELDS[0] += 1
        else:
            expected = raw.rstrip(" \0")
            if key != "patient_name_raw":
                expected = expected.strip(" ")
            source = "dcmdump"
        compared += 1
        if ours != expected:
            problems.append(f"{key}: cxrd {ours!r}, {source} {expected!r}")

    syntax = reference.get("0002,0010", "").rstrip("\0 ")
    if not syntax:
        syntax = SYNTAX_NAMES.get(reference.get("syntax"), "")
    if syntax:
        compared += 1
        if meta["transfer_syntax_uid"] != syntax:
            problems.append(f"transfer_syntax_uid: cxrd {meta['transfer_syntax_uid']!r}, "
                            f"dcmdump {syntax!r}")

    has_image = all(tag in reference and reference[tag] for tag in
                    ("0028,0010", "0028,0011", "0028,0100")) and "7FE0,0010" in reference
    if not has_image:
        return compared
    if pixels is None:
        problems.append(f"pixel description refused: {dump.get('pixels_error')}")
        return compared
    for key, tag in INT_FIELDS.items():
        if tag in reference and reference[tag]:
            compared += 1
            if pixels[key] != int(reference[tag].split("\\")[0]):
                problems.append(f"{key}: cxrd {pixels[key]}, dcmdump {reference[tag]}")
    photometric = reference.get("0028,0004", "").strip(" \0")
    compared += 1
    if pixels["photometric_interpretation"] != photometric:
        problems.append(f"photometric: cxrd {pixels['photometric_interpretation']!r}, "
                        f"dcmdump {photometric!r}")
    shape = reference.get("2050,0020", "").strip(" \0")
    compared += 1
    if pixels["presentation_lut_shape"] != (shape if shape in ("IDENTITY", "INVERSE") else None):
        problems.append(f"presentation_lut_shape: cxrd {pixels['presentation_lut_shape']!r}, "
                        f"dcmdump {shape!r}")
    padding = reference.get("0028,0120", "")
    expected_padding = None
    if padding:  # US or SS by Pixel Representation, which dcmdump applies too
        low = high = int(padding.split("\\")[0])
        limit = reference.get("0028,0121", "")
        if limit:
            low, high = sorted((low, int(limit.split("\\")[0])))
        expected_padding = {"low": low, "high": high}
    compared += 1
    if pixels["pixel_padding"] != expected_padding:
        problems.append(f"pixel_padding: cxrd {pixels['pixel_padding']}, dcmdump {padding!r}")
    frames = reference.get("0028,0008", "").strip()
    compared += 1
    if pixels["number_of_frames"] != (int(frames) if frames else 1):
        problems.append(f"number_of_frames: cxrd {pixels['number_of_frames']}, dcmdump {frames!r}")

    for key, keyword in (("modality_lut", "ModalityLUTSequence"), ("voi_lut", "VOILUTSequence")):
        expected_lut = pydicom_lut(path, keyword)
        lut = pixels[key]
        ours_lut = None if lut is None else (
            lut["entry_count"], lut["first_mapped"], lut["bits_per_entry"], lut["entries_sum"],
            lut["entries_min"], lut["entries_max"])
        if expected_lut is not None or ours_lut is not None:
            compared += 1
            PYDICOM_FIELDS[0] += 1
            if ours_lut != expected_lut:
                problems.append(f"{key}: cxrd {ours_lut}, pydicom {expected_lut}")

    center_text, width_text = reference.get("0028,1050", ""), reference.get("0028,1051", "")
    window_reference = "dcmdump"
    if not center_text:
        # An enhanced object's window is in frame 1's functional groups (dcmdump's nested
        # lines are not parsed here): pydicom reads it.
        frame_window = pydicom_frame_window(path)
        if frame_window is not None:
            center_text, width_text = frame_window
            window_reference = "pydicom (functional groups)"
            PYDICOM_FIELDS[0] += 1
    centers = decimal_values(center_text) if center_text else []
    widths = decimal_values(width_text) if width_text else []
    expected = [(c, w) for c, w in zip(centers, widths)
                if c is not None and w is not None and w > 0]
    ours = [(w["center"], w["width"]) for w in pixels["windows"]]
    compared += 1
    if len(ours) != len(expected) or any(
            abs(a - c) > 1e-6 * max(1, abs(c)) or abs(b - d) > 1e-6 * max(1, abs(d))
            for (a, b), (c, d) in zip(ours, expected)):
        problems.append(f"windows: cxrd {ours}, {window_reference} {expected}")
    return compared


def main():
    cxrd, root = sys.argv[1], sys.argv[2]
    paths = sorted(os.path.join(folder, name) for folder, _, names in os.walk(root)
                   for name in names)
    half = (len(paths) + 1) // 2
    chunks = [paths[:half], paths[half:]]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        references = pool.map(dcmdump_batch, chunks)
        dumps = pool.map(lambda chunk: cxrd_batch(cxrd, chunk), chunks)
        reference_of = {k: v for part in references for k, v in part.items()}
        dump_of = {k: v for part in dumps for k, v in part.items()}
    results = []
    for path in paths:
        rc, dump, message = dump_of.get(path, (-1, None, "no output from cxrd"))
        results.append((path, reference_of[path], rc, dump, message))

    failures = 0
    read = compared_files = fields = mismatched = 0
    dcmtk_rejects = []
    for path, reference, rc, dump, message in results:
        name = os.path.relpath(path, root)
        base = os.path.basename(path)
        if rc not in (0, 1):
            print(f"CRASH {name}: cxrd exit status {rc}: {message}")
            failures += 1
            continue
        refused = rc == 1 or (dump is not None and dump.get("pixels") is None and
                              dump.get("pixels_error", {}).get("status") != "CXR_ERR_NOT_FOUND")
        if base in KNOWN_BROKEN:
            if not refused:
                print(f"FAIL {name}: known-broken file accepted")
                failures += 1
            else:
                reason = message if rc == 1 else dump["pixels_error"]["message"]
                print(f"known-broken {name}: refused: {reason}")
        if reference is None:
            state = "cxrd refuses it too" if rc == 1 else "cxrd reads it"
            dcmtk_rejects.append(f"{name} ({state})")
            continue
        if base in EXPECTED_REFUSALS:
            if rc != 1:
                print(f"FAIL {name}: expected cxrd to refuse it ({EXPECTED_REFUSALS[base]})")
                failures += 1
            else:
                print(f"expected refusal {name}: {EXPECTED_REFUSALS[base]}: {message}")
            continue
        if rc == 1:
            if base not in KNOWN_BROKEN:
                print(f"FAIL {name}: dcmdump reads it, cxrd does not: {message}")
                failures += 1
            continue
        read += 1
        if base in KNOWN_BROKEN:
            continue
        problems = []
        fields += compare(path, reference, dump, problems)
        compared_files += 1
        if problems:
            mismatched += 1
            failures += 1
            for problem in problems:
                print(f"MISMATCH {name}: {problem}")

    print(f"\nDCMTK dcmdump rejects {len(dcmtk_rejects)} of {len(paths)} files:")
    for entry in dcmtk_rejects:
        print(f"  {entry}")
    print(f"\nsummary: {len(paths)} files, {len(paths) - len(dcmtk_rejects)} read by dcmdump, "
          f"{read} of them read by cxrd, {compared_files} compared ({fields} fields, "
          f"{PYDICOM_FIELDS[0]} against pydicom), "
          f"{mismatched} mismatched, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
