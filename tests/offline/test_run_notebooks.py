"""`make claims`: every notebook executed top to bottom in the `offline` profile with its claims strict
(COURSE_CLAIMS=strict), so a "What to look for" that the run contradicts fails; each executed notebook is kept
in `$COURSE_EXECUTED` (build/executed/), which `make book` renders. Collected only when `make claims` sets
COURSE_EXECUTED (the `offline` run takes about a quarter of an hour on two cores)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if not os.environ.get("COURSE_EXECUTED"):
    pytest.skip("run by `make claims` (it sets COURSE_EXECUTED)", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("run_notebook", ROOT / "tools" / "run_notebook.py")
run_notebook = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_notebook)
SLOWEST_FIRST = ("06", "01", "04", "07")  # so that two workers finish together
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"),
                   key=lambda p: (SLOWEST_FIRST.index(p.name[:2]) if p.name[:2] in SLOWEST_FIRST else 9, p.name))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_offline_as_its_text_says(path):
    out = Path(os.environ["COURSE_EXECUTED"]) / path.name
    _, failed, seconds = run_notebook.execute(path, out, profile="offline", strict=True)
    print(f"{path.name}: {seconds:.0f} s")
    assert failed is None, f"{path.name} (executed copy in {out}):\n{str(failed)[-3000:]}"
