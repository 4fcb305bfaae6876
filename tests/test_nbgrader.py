"""nbgrader grades the course as it is: every exercise carries nbgrader's metadata (written by
tools/sync_notebooks.py from the solution markers), and nbgrader itself, with the course's nbgrader_config.py
and no flags, generates the student version of a notebook and autogrades a submission of the stubs (0 points)
and one of the solutions (full points), with the check cells locked."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import make_student as ms  # noqa: E402

NOTEBOOK = "00_setup_and_tour"


@pytest.mark.parametrize("path", ms.notebooks(), ids=lambda p: p.name[:2])
def test_every_exercise_carries_nbgrader_metadata(path):
    nb = nbformat.read(path, as_version=4)
    assert not ms.grading_metadata(nb, path.name), f"run tools/sync_notebooks.py: {path.name}'s nbgrader metadata is stale"
    graded = [c.metadata["nbgrader"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(graded) == len(ms.exercises(nb)) and all(g["locked"] and g["points"] > 0 for g in graded)
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)) == 2 * len(graded)


def test_grading_metadata_marks_solutions_and_locks_checks():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("assert f() == 1"),
    ])
    nb.cells[0].metadata["nbgrader"] = {"grade": True}  # stale metadata on a cell that is no exercise
    assert ms.grading_metadata(nb)
    assert "nbgrader" not in nb.cells[0].metadata
    assert nb.cells[1].metadata["nbgrader"]["solution"] and not nb.cells[1].metadata["nbgrader"]["locked"]
    check = nb.cells[3].metadata["nbgrader"]
    assert check["grade"] and check["locked"] and check["points"] == ms.POINTS
    assert not ms.grading_metadata(nb)  # already up to date


def _nbgrader(root: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("nbgrader")
    env = {**os.environ, "COURSE_PROFILE": "smoke", "COURSE_DATA": str(root / "data"), "MPLBACKEND": "Agg",
           "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # nbgrader runs alembic from there
    result = subprocess.run([str(exe), *args], cwd=root, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def test_nbgrader_scores_stubs_zero_and_solutions_full(tmp_path):
    pytest.importorskip("nbgrader")
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    ms.layout_for_nbgrader(tmp_path / "grading")
    _nbgrader(tmp_path, "generate_assignment", NOTEBOOK)  # no flags: the config says where
    release = tmp_path / "grading" / "release" / NOTEBOOK / f"{NOTEBOOK}.ipynb"
    student = json.loads(release.read_text())
    assert "BEGIN SOLUTION" not in release.read_text() and "wrong_answers" not in release.read_text()
    checks = [c for c in student["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert checks and all(c["metadata"]["nbgrader"]["locked"] for c in checks)
    for who, source in (("stubs", release), ("solutions", ROOT / "notebooks" / f"{NOTEBOOK}.ipynb")):
        folder = tmp_path / "grading" / "submitted" / who / NOTEBOOK
        folder.mkdir(parents=True)
        shutil.copy(source, folder / f"{NOTEBOOK}.ipynb")
    _nbgrader(tmp_path, "autograde", NOTEBOOK)
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{tmp_path / 'grading' / 'gradebook.db'}") as gb:
        stubs = gb.find_submission(NOTEBOOK, "stubs")
        solutions = gb.find_submission(NOTEBOOK, "solutions")
        assert stubs.max_score == solutions.max_score == ms.POINTS * len(checks)
        assert stubs.score == 0
        assert solutions.score == solutions.max_score
