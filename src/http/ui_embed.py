#!/usr/bin/python3
"""Build step: the worklist page's static files (src/http/ui/) -> a C file defining
cxr_http_ui_files, each file's bytes with the URL that serves it (index.html at /ui).
Usage: ui_embed.py OUT.c FILE..."""
import os
import sys

TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8"}
out_path, inputs = sys.argv[1], sys.argv[2:]
lines = ["/* Generated from src/http/ui/ by src/http/ui_embed.py: do not edit. */",
         '#include "http/http_internal.h"', ""]
entries = []
for index, path in enumerate(inputs):
    name = os.path.basename(path)
    with open(path, "rb") as source:
        data = source.read()
    lines.append("static const unsigned char file%d[] = {" % index)
    for start in range(0, len(data), 16):
        lines.append("    " + ", ".join("0x%02x" % b for b in data[start:start + 16]) + ",")
    lines.append("    0x00};")
    url = "/ui" if name == "index.html" else "/ui/" + name
    entries.append('    {"%s", "%s", file%d, %d},' % (url, TYPES[os.path.splitext(name)[1]],
                                                      index, len(data)))
lines.append("const struct cxr_http_ui_file cxr_http_ui_files[] = {")
lines += entries
lines.append("};")
lines.append("const size_t cxr_http_ui_file_count = %d;" % len(entries))
with open(out_path, "w") as out:
    out.write("\n".join(lines) + "\n")
