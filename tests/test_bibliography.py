"""The bibliography is complete and renders cleanly (issue 21, item 6).

Every work the text names ("Hsieh et al.", "Jelasity, Montresor and Babaoglu,
2005", a named method such as CHOCO-SGD) has an entry in references.bib; every
cited key exists; names are Unicode (LaTeX accent commands made pybtex's labels
garbled: "OrmandiHegedHusJ13").
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pybtex.database import parse_file
from pybtex.plugin import find_plugin

from book_helpers import ROOT

BIB = parse_file(str(ROOT / "references.bib"))
PAGES = sorted(p for p in ROOT.glob("**/*.md")
               if not {"_build", ".venv", "_vendor", "node_modules", ".pytest_cache"}
               & set(p.relative_to(ROOT).parts)
               and p.relative_to(ROOT).parts[0] not in {"benchmarks", "binder", "tests"}
               and p.name not in {"README.md", "status.md"})
# Works the text names by method or topic, and the entries that must back them.
NAMED = {
    "CHOCO-SGD": ["koloskova2019choco"],
    "error feedback": ["seide2014onebit", "karimireddy2019errorfeedback"],
    "gradient tracking": ["nedic2017tracking"],
    "Metropolis": ["xiao2004fast"],
    "α–β": ["hockney1994communication", "thakur2005collectives"],
    "consensus distance": ["kong2021consensus"],
    "BytePS": ["jiang2020byteps"],
    "peephole": ["gers2002peephole"],
    "Jelasity": ["jelasity2005aggregation"],
}
WORD = r"[A-Z][\w\u00c0-\u017f'-]+"
ET_AL = re.compile(rf"({WORD}) et al\.")
PAIR = re.compile(rf"({WORD})(?:, {WORD})? and ({WORD}),? \(?((?:19|20)\d\d)")


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def _first_authors() -> dict[str, set[str]]:
    """Last name of each entry's first author -> years."""
    out: dict[str, set[str]] = {}
    for entry in BIB.entries.values():
        first = entry.persons["author"][0]
        out.setdefault(" ".join(first.last_names), set()).add(entry.fields["year"])
    return out


def test_pages_were_found():
    names = {p.name for p in PAGES}
    assert {"intro.md", "glossary.md", "ex1_fl_bandwidth.md", "ex6_dpsgd.md"} <= names


def test_every_author_named_in_the_text_has_an_entry():
    authors = _first_authors()
    missing = set()
    for page in PAGES:
        text = _text(page)
        for name in ET_AL.findall(text):
            if name not in authors:
                missing.add((page.name, f"{name} et al."))
        for first, _second, year in PAIR.findall(text):
            if year not in authors.get(first, set()):
                missing.add((page.name, f"{first} ... {year}"))
    assert missing == set(), f"named in the text, not in references.bib: {sorted(missing)}"


def test_every_work_named_by_method_has_its_entries():
    text = "\n".join(_text(p) for p in PAGES)
    for phrase, keys in NAMED.items():
        if phrase.lower() in text.lower():
            absent = [k for k in keys if k not in BIB.entries]
            assert absent == [], f"{phrase!r} is named; add {absent} to references.bib"


def test_every_cited_key_exists():
    cited = set()
    for page in PAGES:
        for group in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", _text(page)):
            cited |= {k.strip() for k in group.split(",")}
    assert cited - set(BIB.entries) == set()


def test_names_are_unicode_and_labels_clean():
    raw = (ROOT / "references.bib").read_text(encoding="utf-8")
    for line in raw.splitlines():
        if line.strip().startswith("author"):
            assert "\\" not in line, f"LaTeX accents garble the labels: {line.strip()}"
    style = find_plugin("pybtex.style.labels", "alpha")()
    labels = list(style.format_labels(BIB.entries.values()))
    bad = [lab for lab in labels if not re.fullmatch(r"[A-Z][A-Za-z\u00c0-\u017f]*\+?\d\d[a-z]?",
                                                     lab)]
    assert bad == [], f"garbled labels: {bad}"
    assert "OHJ13" in labels


@pytest.mark.parametrize("key", sorted(BIB.entries))
def test_entries_are_complete(key):
    entry = BIB.entries[key]
    assert entry.persons.get("author"), key
    assert re.fullmatch(r"(19|20)\d\d", entry.fields.get("year", "")), key
    assert entry.fields.get("title"), key
    venue = {"journal", "booktitle", "howpublished"} & set(entry.fields)
    assert venue, f"{key}: no venue"
