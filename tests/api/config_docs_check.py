#!/usr/bin/python3
"""The README's configuration table and config/cxrd.example.ini name the same keys, so a user who
copies the example sees every setting the README documents, and the other way round. A key that
the example shows commented out (`; key = ...`) counts as shown; the [thresholds] finding lines
are the README's `<Finding>` row.

usage: config_docs_check.py README.md cxrd.example.ini"""
import re
import sys

ROW = re.compile(r"^\| `([a-z]\w*)` \| `([^`]+)`")  # config rows; CMake options are upper case
SECTION = re.compile(r"^\[(\w+)\]")
KEY = re.compile(r"^;?\s*([A-Za-z_][\w ]*?)\s*=")


def readme_keys(path):
    with open(path, encoding="utf-8") as fh:
        return {(m.group(1), m.group(2)) for m in map(ROW.match, fh) if m}


def example_keys(path):
    keys, section = set(), None
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            match = SECTION.match(line)
            if match:
                section = match.group(1)
                continue
            match = KEY.match(line)
            if section and match:
                key = match.group(1)
                if section == "thresholds" and key[0].isupper():
                    key = "<Finding>"  # a finding line, e.g. Tuberculosis = 0.146
                keys.add((section, key))
    return keys


def main(argv):
    documented, shown = readme_keys(argv[1]), example_keys(argv[2])
    ok = True
    for section, key in sorted(documented - shown):
        print("FAIL: README documents [%s] %s, the example config does not show it" % (
            section, key))
        ok = False
    for section, key in sorted(shown - documented):
        print("FAIL: the example config shows [%s] %s, the README does not document it" % (section,
                                                                                         key))
        ok = False
    print("%d keys documented, %d shown" % (len(documented), len(shown)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
