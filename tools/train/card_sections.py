"""Puts markdown sections into a model card, both the file and the copy inside the model
(`cxr.model_card`): a section "## Title" replaces the card's section of the same title, or is
inserted before `--before` (or appended). Used when a shipped network gets new operating points
or an input gate without retraining, so the card still states every number the model uses.

    card_sections.py MODEL.onnx CARD.md SECTION.md [SECTION.md ...] [--title TEXT]
        [--preface TEXT] [--before "## Title"]
"""
import argparse
import os

import onnx


def set_section(card, section, before=None):
    title = section.strip().splitlines()[0]
    assert title.startswith("## "), "a section starts with '## '"
    body = section.strip() + "\n\n"
    lines = card.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip() == title), None)
    if start is not None:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        return "".join(lines[:start]) + body + "".join(lines[end:])
    at = next((i for i, l in enumerate(lines) if before and l.rstrip() == before), len(lines))
    return "".join(lines[:at]) + body + "".join(lines[at:])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("card")
    p.add_argument("sections", nargs="+")
    p.add_argument("--title", help="new first line of the card (# ...)")
    p.add_argument("--preface", help="paragraph placed right under the title")
    p.add_argument("--before", help="insert new sections before this '## ' line")
    args = p.parse_args()
    with open(args.card) as fh:
        card = fh.read()
    for path in args.sections:
        with open(path) as fh:
            card = set_section(card, fh.read(), args.before)
    lines = card.splitlines(keepends=True)
    if args.title:
        lines[0] = args.title.rstrip() + "\n"
    if args.preface:
        lines.insert(1, "\n" + args.preface.strip() + "\n")
    card = "".join(lines)
    m = onnx.load(args.model)
    {p.key: p for p in m.metadata_props}["cxr.model_card"].value = card
    onnx.save(m, args.model + ".tmp")
    os.replace(args.model + ".tmp", args.model)
    with open(args.card + ".tmp", "w") as fh:
        fh.write(card)
    os.replace(args.card + ".tmp", args.card)


if __name__ == "__main__":
    main()
