"""Keep the notebooks tidy: write the canonical setup cell (helpers.colab.setup_cell_source) as each
notebook's first code cell, strip outputs and execution counts, give the exercises nbgrader's metadata
(tools/make_student.py's `grading_metadata`), and regenerate the README's "Open in Colab" table. Run after editing a notebook: `.venv/bin/python tools/sync_notebooks.py`.
"""
from __future__ import annotations

import re
from pathlib import Path

import sys

import nbformat
import nbformat.corpus.words

from helpers.colab import colab_url, setup_cell_source

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling tool, also when this file is loaded by path
from make_student import grading_metadata  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SETUP_MARK = "# Setup."


def sync_notebook(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    if code and code[0].source.startswith(SETUP_MARK):
        code[0].source = setup_cell_source()
    else:
        raise SystemExit(f"{path}: the first code cell must be the setup cell (starting {SETUP_MARK!r})")
    for cell in nb.cells:
        if "id" not in cell:  # nbformat 4.5 wants an id on every cell
            cell["id"] = nbformat.corpus.words.generate_corpus_id()
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    grading_metadata(nb, path.name)
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    after = nbformat.writes(nb)
    if after != before:
        nbformat.write(nb, path)
    return after != before


def colab_table() -> str:
    rows = ["| notebook | Colab |", "|---|---|"]
    for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        rows.append(f"| `{p.name}` | [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                    f"({colab_url(p.name)}) |")
    return "\n".join(rows)


def sync_readme() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = re.sub(r"(<!-- colab:start -->\n).*?(<!-- colab:end -->)",
                 lambda m: m.group(1) + colab_table() + "\n" + m.group(2), text, flags=re.S)
    if new != text:
        readme.write_text(new)


if __name__ == "__main__":
    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if sync_notebook(nb_path):
            print("synced", nb_path.name)
    sync_readme()
