"""The student copy (`make student`, tools/make_student.py) and the exercises of every notebook.

For each notebook (found by glob, so notebooks added later are covered) one kernel runs it cell by cell in
the smoke profile; at each exercise it runs the stub (the student's starting point), then the check cell,
which must fail, then each wrong answer recorded in the solution cell's metadata (a plausible mistake: see
tools/make_student.py), then the check cell, which must fail on each, then the solution, then the check cell,
which must pass, and goes on. Nothing else runs twice.
"""
from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_tool():
    spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_student", module)
    spec.loader.exec_module(module)
    return module


ms = _load_tool()
NOTEBOOKS = ms.notebooks()


# ------------------------------------------------------------------------------------ the stubs
def test_stub_keeps_the_indentation_and_takes_the_hint_from_the_first_comment():
    src = ("def f(x):\n"
           "    y = 1\n"
           "    ### BEGIN SOLUTION\n"
           "    # add y to x\n"
           "    return x + y\n"
           "    ### END SOLUTION\n"
           "\n"
           "print('after')")
    assert ms.stub_source(src) == ("def f(x):\n"
                                   "    y = 1\n"
                                   "    # YOUR CODE HERE: add y to x\n"
                                   '    raise NotImplementedError("add y to x")\n'
                                   "\n"
                                   "print('after')")


def test_stub_at_top_level_and_several_blocks_in_one_cell():
    src = ("### BEGIN SOLUTION\n"
           "a = 1\n"
           "### END SOLUTION\n"
           "class C:\n"
           "    def g(self):\n"
           "        ### BEGIN SOLUTION\n"
           "        return 'say \"hi\"'  # not a hint: not the first line\n"
           "        ### END SOLUTION\n")
    out = ms.stub_source(src)
    assert out == ("# YOUR CODE HERE\n"
                   'raise NotImplementedError("write your solution here")\n'
                   "class C:\n"
                   "    def g(self):\n"
                   "        # YOUR CODE HERE\n"
                   '        raise NotImplementedError("write your solution here")\n')
    ast.parse(out)
    assert ms.solution_source(src) == "a = 1\nclass C:\n    def g(self):\n        return 'say \"hi\"'  # not a hint: not the first line\n"


def test_a_hint_with_quotes_gives_valid_python():
    src = '    ### BEGIN SOLUTION\n    # use "mean" and a \\ backslash\n    pass\n    ### END SOLUTION'
    out = ms.stub_source(src)
    tree = ast.parse("def f():\n" + out)
    raised = tree.body[0].body[0].exc.args[0].value
    assert raised == 'use "mean" and a \\ backslash'


@pytest.mark.parametrize("src, message", [
    ("### BEGIN SOLUTION\nx = 1\n", "without an"),
    ("x = 1\n### END SOLUTION\n", "without a"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
    ("def f():\n    ### BEGIN SOLUTION\n    pass\n### END SOLUTION\n", "indented differently"),
    ("x = 1  ### BEGIN SOLUTION\n", "alone on its line"),
])
def test_broken_markers_are_reported(src, message):
    with pytest.raises(ValueError, match=message):
        ms.stub_source(src, "nb.ipynb, cell 3")


def test_make_student_writes_every_notebook_with_stubs_only(tmp_path):
    written = ms.make_student(tmp_path / "student")
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for src_path, out_path in zip(NOTEBOOKS, written):
        src, out = nbformat.read(src_path, as_version=4), nbformat.read(out_path, as_version=4)
        assert len(src.cells) == len(out.cells)
        for a, b in zip(src.cells, out.cells):
            assert a.cell_type == b.cell_type
            if a.cell_type == "code" and ms.has_solution(a.source):
                assert b.source == ms.stub_source(a.source)
                assert "SOLUTION" not in b.source and "NotImplementedError" in b.source
                ast.parse(b.source)  # still valid Python
            else:
                assert a.source == b.source
            if b.cell_type == "code":
                assert b.outputs == [] and b.execution_count is None
                assert "wrong_answers" not in b.metadata


def test_wrong_answers_are_edits_of_the_solution():
    cell = nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return x.sum() + 1\n    ### END SOLUTION")
    cell.metadata["wrong_answers"] = [{"why": "mean", "replace": [["x.sum()", "x.mean()"]]},
                                      {"why": "two edits", "replace": [["+ 1", "- 1"], ["return", "return -"]]}]
    assert ms.wrong_answers(cell) == [("mean", "def f(x):\n    return x.mean() + 1"),
                                      ("two edits", "def f(x):\n    return - x.sum() - 1")]
    cell.metadata["wrong_answers"] = [{"why": "absent", "replace": [["x.max()", "x.min()"]]}]
    with pytest.raises(ValueError, match="occurs 0 times"):
        ms.wrong_answers(cell, "nb, cell 1")
    cell.metadata["wrong_answers"] = [{"why": "", "replace": []}]
    with pytest.raises(ValueError, match="non-empty"):
        ms.wrong_answers(cell)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_exercise_lists_two_plausible_wrong_answers(path):
    nb = nbformat.read(path, as_version=4)
    few = [f"cell {i} has {len(ms.wrong_answers(nb.cells[i], f'{path.name}, cell {i}'))}"
           for i, _ in ms.exercises(nb, path.name)
           if len(ms.wrong_answers(nb.cells[i], f"{path.name}, cell {i}")) < 2]
    assert not few, f"{path.name}: every exercise needs at least two wrong answers in its metadata; " + "; ".join(few)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_has_two_to_four_exercises(path):
    n = len(ms.exercises(nbformat.read(path, as_version=4), path.name))
    assert 2 <= n <= 4, f"{path.name} has {n} exercises; the course asks for 2 to 4"


# ------------------------------------------------------------------ every exercise, in a kernel
def _errors(cell) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"]


def run_exercises(path: Path) -> list[tuple[int, list[str], list[str], list[str]]]:
    """Run notebook `path` once in a kernel; at each exercise run stub, check, each wrong answer and the check,
    then solution, check. Returns (solution cell index, errors of the check on the stub, the `why` of every wrong
    answer that the check let pass, errors of the check on the solution) per exercise; an error anywhere else
    fails at once."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    pairs = dict(ms.exercises(nb, path.name))
    checks = set(pairs.values())
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    verdicts = []
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or i in checks:
                continue
            if i not in pairs:
                client.execute_cell(cell, i)
                assert not _errors(cell), f"{path.name}, cell {i} failed: {_errors(cell)}"
                continue
            check = nb.cells[pairs[i]]
            stub = nbformat.v4.new_code_cell(ms.stub_source(cell.source))
            client.execute_cell(stub, i)  # may raise NotImplementedError itself (top-level stubs)
            client.execute_cell(check, pairs[i])
            on_stub = _errors(check)
            passed_wrong = []
            for why, source in ms.wrong_answers(cell, f"{path.name}, cell {i}"):
                client.execute_cell(nbformat.v4.new_code_cell(source), i)  # may raise itself: then the check fails
                client.execute_cell(check, pairs[i])
                if not _errors(check):
                    passed_wrong.append(why)
            solution = nbformat.v4.new_code_cell(ms.solution_source(cell.source))
            client.execute_cell(solution, i)
            assert not _errors(solution), f"{path.name}, cell {i}: the solution fails: {_errors(solution)}"
            client.execute_cell(check, pairs[i])
            verdicts.append((i, on_stub, passed_wrong, _errors(check)))
    return verdicts


def test_the_harness_catches_a_check_that_passes_on_the_stub(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in [
        "answer = 0",
        "def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION",
        "assert f() == 42",  # a good check
        "### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION",
        "assert answer is not None",  # a weak check: passes on the stub too
        "### BEGIN SOLUTION\nbroken = 1\n### END SOLUTION",
        "assert broken == 2",  # a wrong check: fails on the solution
    ]]
    nb.cells[1].metadata["wrong_answers"] = [{"why": "off by one", "replace": [["42", "43"]]},
                                             {"why": "sign", "replace": [["42", "-42"]]}]
    nb.cells[3].metadata["wrong_answers"] = [{"why": "caught by nothing", "replace": [["42", "41"]]}]
    path = tmp_path / "99_toy.ipynb"
    nbformat.write(nb, path)
    verdicts = run_exercises(path)
    assert [(i, bool(s), w, bool(o)) for i, s, w, o in verdicts] == [
        (1, True, [], False), (3, False, ["caught by nothing"], False), (5, True, [], True)]
    assert "NotImplementedError" in verdicts[0][1][0] and "AssertionError" in verdicts[2][3][0]


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if ms.exercises(nbformat.read(p, as_version=4), p.name)],
                         ids=lambda p: p.stem)
def test_check_cells_fail_on_the_stub_and_pass_on_the_solution(path, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # its own data folder: `make test` may run the same notebook under nbval at the same time (two workers)
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "data"))
    verdicts = run_exercises(path)
    bad = [f"cell {i}: the check passes on the stub" for i, s, w, o in verdicts if not s]
    bad += [f"cell {i}: the check passes on the wrong answer {why!r}" for i, s, w, o in verdicts for why in w]
    bad += [f"cell {i}: the check fails on the solution: {o}" for i, s, w, o in verdicts if o]
    assert verdicts and not bad, f"{path.name}: " + "; ".join(bad)
