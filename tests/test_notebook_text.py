"""The notebooks' text keeps the syllabus's rules that can be read off the source: word limits, few decimal
numbers in prose, and a claim cell right after every "What to look for"."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("0*.ipynb"))
WORD_LIMIT = {"06": 4000, "07": 4000}  # the others: 3,500
DECIMALS_LIMIT = 150  # decimal numbers in all the notebooks' markdown together
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+")
LOOK = re.compile(r"what to look for", re.IGNORECASE)


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _markdown(path):
    return ["".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_words_within_the_syllabus_limit(path):
    words = sum(len(m.split()) for m in _markdown(path))
    assert words <= WORD_LIMIT.get(path.name[:2], 3500), f"{path.name}: {words} words of markdown"


def test_few_decimal_numbers_in_prose():
    counts = {p.name[:2]: sum(len(DECIMAL.findall(m)) for m in _markdown(p)) for p in NOTEBOOKS}
    assert sum(counts.values()) <= DECIMALS_LIMIT, counts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_what_to_look_for_is_followed_by_a_claim_cell(path):
    cells = _cells(path)
    missing = []
    for i, c in enumerate(cells):
        if c["cell_type"] == "markdown" and LOOK.search("".join(c["source"])):
            nxt = cells[i + 1] if i + 1 < len(cells) else None
            if nxt is None or nxt["cell_type"] != "code" or "claim(" not in "".join(nxt["source"]):
                missing.append(i)
    assert not missing, f"{path.name}: cells {missing} say what to look for but the next cell checks no claim"
