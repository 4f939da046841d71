"""Real reports end to end: DICOM files made (in the build tree) from three radiographs of the
data folder, a TBX11K TB case, an NIH image with many findings and an NIH image the default
model calls Normal, carrying a Japanese, a Korean and an Arabic patient name with all their
component groups, an accession number, a referring physician, study date and time. `cxrd
infer` with the default model and `[report] timezone = Asia/Tokyo` writes the outputs; poppler
(pdftotext) must find every name group, the accession number, the study time and the zone's
offset in each PDF; the heatmap PNG (libpng through PIL) must differ from the source for the
non-Normal results and be absent for Normal. The pages are rendered with pdftoppm next to the
outputs for people to look at.

report_cases_test.py CXRD MODEL DATA_DIR OUT_DIR
"""
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from png_dicom import make_dicom  # noqa: E402

CASES = [
    # patient ID, image, Person Name, groups the PDF must show, accession, expected result
    ("TBJA01", "tbx11k_tb/tb0032.png", "Yamada^Tarou=山田^太郎=やまだ^たろう",
     ["Yamada Tarou", "山田 太郎", "やまだ たろう"], "ACC-TB-0001", "TB Presumptive"),
    ("NIHKO02", "nih_darkcovidnet/00002275_019.png", "Hong^Gildong=洪^吉洞=홍^길동",
     ["Hong Gildong", "洪 吉洞", "홍 길동"], "ACC-NIH-0002", None),
    ("NORMAR03", "nih_darkcovidnet/00001385_000.png", "قباني^لنزار", ["قباني لنزار"],
     "ACC-N-0003", "Normal"),
]


def main():
    cxrd, model, data, out = sys.argv[1:5]
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    files = []
    for index, (pid, image, name, _, accession, _) in enumerate(CASES):
        path = os.path.join(out, pid + ".dcm")
        make_dicom(os.path.join(data, "cxr", "images", image), path, pid, name, accession, index)
        files.append(path)
    config = os.path.join(out, "cxrd.ini")
    with open(config, "w") as fh:
        fh.write("[report]\ntimezone = Asia/Tokyo\n")
    results = os.path.join(out, "results")
    subprocess.run([cxrd, "infer", *files, "--output", results, "--config", config,
                    "--model", model], check=True)
    failures = []
    for pid, _, _, groups, accession, expected in CASES:
        folder = os.path.join(results, pid)
        pdf = os.path.join(folder, pid + "_report.pdf")
        text = subprocess.run(["pdftotext", "-enc", "UTF-8", pdf, "-"], check=True,
                              capture_output=True, text=True).stdout
        # poppler splits shaped Arabic words at glyph gaps: compare without spaces and marks.
        squeezed = "".join(c for c in text if c not in " \n\u202b\u202c")
        for needle in groups + [accession, "2026-11-27 08:15:12", "UTC+09:00 (Asia/Tokyo)",
                                "Sato Hanako (佐藤 花子)", "Case Test Clinic"]:
            if needle not in text and needle.replace(" ", "") not in squeezed:
                failures.append("%s: %r not in the PDF text" % (pid, needle))
        result = [ln for ln in text.splitlines() if ln.startswith("Overall result:")][0]
        result = result.split(":", 1)[1].strip()
        if expected and result != expected:
            failures.append("%s: result %s, expected %s" % (pid, result, expected))
        heatmap = os.path.join(folder, pid + "_heatmap.png")
        if result == "Normal":
            if os.path.exists(heatmap):
                failures.append("%s: a Normal result has a heatmap file" % pid)
        else:
            source = np.asarray(Image.open(os.path.join(folder, pid + "_source_image.png")))
            overlay = np.asarray(Image.open(heatmap).convert("RGB")).astype(int)
            height = source.shape[0]
            changed = int((np.abs(overlay[:height] - source[:, :, None].astype(int)).max(2)
                           > 0).sum())
            print("%s: %s, heatmap %dx%d, %d pixels differ from the source" % (
                pid, result, overlay.shape[1], overlay.shape[0], changed))
            if changed == 0:
                failures.append("%s: the heatmap equals the source" % pid)
            if overlay.shape[0] <= height:
                failures.append("%s: no legend strip under the heatmap" % pid)
        subprocess.run(["pdftoppm", "-r", "70", "-singlefile", "-png", pdf,
                        os.path.join(out, pid + "_page")], check=True)
    for failure in failures:
        print("FAIL:", failure)
    print("pages rendered in %s" % out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
