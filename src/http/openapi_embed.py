#!/usr/bin/python3
"""Build step: docs/openapi.yaml -> a C file defining cxr_http_openapi_json, the document as
compact JSON (served at GET /openapi.json). Usage: openapi_embed.py IN.yaml OUT.c"""
import json
import sys

import yaml

with open(sys.argv[1]) as source:
    document = yaml.safe_load(source)
text = json.dumps(document, separators=(",", ":"), ensure_ascii=True)
lines = ['/* Generated from docs/openapi.yaml by src/http/openapi_embed.py: do not edit. */',
         '#include <stddef.h>', '', 'const char cxr_http_openapi_json[] =']
for start in range(0, len(text), 80):
    chunk = text[start:start + 80].replace("\\", "\\\\").replace('"', '\\"')
    lines.append('        "%s"' % chunk)
lines[-1] += ";"
lines.append("const size_t cxr_http_openapi_json_size = sizeof cxr_http_openapi_json - 1;")
with open(sys.argv[2], "w") as out:
    out.write("\n".join(lines) + "\n")
