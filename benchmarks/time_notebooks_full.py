"""Time notebooks in the `full` profile (real sizes and iteration counts) without pretrained weights, for
machines with no network: a cell run before the setup cell forces the profile with
`helpers.set_profile("full")` and makes `load_model` use random weights. Speed does not depend on the
weights; the pictures are meaningless. Prints each code cell's time and the total.

    .venv/bin/python benchmarks/time_notebooks_full.py notebooks/05_style_transfer.ipynb [more notebooks]

Downloads that a notebook attempts in `full` (paintings in 05) fail fast offline and take the notebook's
fall-back path, as they would for a user without a network.
"""
from __future__ import annotations

import os
import sys
import time

import nbformat
from nbclient import NotebookClient

PREAMBLE = """\
import sys
import helpers
import helpers.models
helpers.set_profile("full")
_load_model = helpers.models.load_model


def _random_weights(name, pretrained=None, device=None, frozen=True):
    return _load_model(name, pretrained=False, device=device, frozen=frozen)


for _m in list(sys.modules.values()):
    if getattr(_m, "__name__", "").split(".")[0] == "helpers" and getattr(_m, "load_model", None) is _load_model:
        _m.load_model = _random_weights
"""


def time_notebook(path: str) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PREAMBLE))
    client = NotebookClient(nb, timeout=3600, kernel_name="python3",
                            resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
    start = time.perf_counter()
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            t = time.perf_counter()
            client.execute_cell(cell, i)
            first = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
            print(f"{time.perf_counter() - t:8.1f} s  {first}", flush=True)
    total = time.perf_counter() - start
    print(f"{path}: {total:.0f} s in total (full profile, random weights, load average "
          f"{os.getloadavg()[0]:.1f} at the end)", flush=True)
    return total


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for p in sys.argv[1:]:
        time_notebook(p)
