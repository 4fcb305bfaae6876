"""Write the student copy of the course: every notebook with each exercise's solution replaced by a stub.

A solution is the lines between `### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader's markers) in a
code cell. In the student copy the markers and the lines between them become

    # YOUR CODE HERE: <hint>
    raise NotImplementedError("<hint>")

indented like the BEGIN marker. The hint is the first comment line inside the solution, or else the
comment is plain `# YOUR CODE HERE` and the error says "write your solution here". Everything else (prose,
check cells, other code) is kept; outputs are dropped, and so is the solution cell's `wrong_answers` metadata.

`wrong_answers` (in a solution cell's metadata) lists plausible mistakes, each a small edit of the solution:

    [{"why": "mean instead of sum", "replace": [["x.sum(", "x.mean("]]}, ...]

Each `[old, new]` pair is applied in order to the solution's source (markers removed); `old` must occur exactly once.
tests/test_student.py runs every wrong answer before the check cell, which must fail on each of them.

    make student                       # writes student/NN_name.ipynb for every notebooks/NN_name.ipynb
    python tools/make_student.py OUT   # another folder

nbgrader reads the same markers. `grading_metadata` gives every exercise nbgrader's cell metadata (the
solution cell: an editable solution; its check cell: a locked, autograded test worth `POINTS`, one `grade_id`
per exercise); `tools/sync_notebooks.py` writes it into the source notebooks, so they stay the one truth.
`layout_for_nbgrader(ROOT)` links each notebook into `ROOT/source/NN_name/`, one assignment per notebook, as
nbgrader expects (`make nbgrader`; `nbgrader_config.py` sets the folder and the cell timeout).
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
DEFAULT_HINT = "write your solution here"
POINTS = 1  # points per exercise (its check cell)
_MARK = re.compile(r"^(?P<indent>[ \t]*)(?P<mark>### (?:BEGIN|END) SOLUTION)[ \t]*$")


@dataclass(frozen=True)
class Solution:
    """One solution block of a cell: lines `begin` to `end` (the marker lines, 0-based, inclusive)."""

    begin: int
    end: int
    indent: str
    hint: str


def notebooks(folder: Path = ROOT / "notebooks") -> list[Path]:
    """The course's notebooks, in order (`NN_name.ipynb`)."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def find_solutions(source: str, where: str = "cell") -> list[Solution]:
    """The solution blocks of a cell's source. ValueError (naming `where`) for unbalanced or nested
    markers, or a BEGIN and END indented differently."""
    lines = source.split("\n")
    found: list[Solution] = []
    open_at: tuple[int, str] | None = None
    for i, line in enumerate(lines):
        m = _MARK.match(line)
        if not m:
            if BEGIN in line or END in line:
                raise ValueError(f"{where}, line {i + 1}: a solution marker must stand alone on its line: {line!r}")
            continue
        if m["mark"] == BEGIN:
            if open_at is not None:
                raise ValueError(f"{where}, line {i + 1}: {BEGIN} inside another solution (line {open_at[0] + 1}).")
            open_at = (i, m["indent"])
        else:
            if open_at is None:
                raise ValueError(f"{where}, line {i + 1}: {END} without a {BEGIN} before it.")
            if m["indent"] != open_at[1]:
                raise ValueError(f"{where}, lines {open_at[0] + 1} and {i + 1}: the markers are indented differently.")
            found.append(Solution(open_at[0], i, open_at[1], _hint(lines[open_at[0] + 1:i])))
            open_at = None
    if open_at is not None:
        raise ValueError(f"{where}, line {open_at[0] + 1}: {BEGIN} without an {END}.")
    return found


def _hint(body: list[str]) -> str:
    for line in body:
        text = line.strip()
        if text.startswith("#"):
            hint = text.lstrip("#").strip()
            if hint:
                return hint
    return DEFAULT_HINT


def has_solution(source: str) -> bool:
    """True when the source holds at least one solution block."""
    return any(_MARK.match(line) and BEGIN in line for line in source.split("\n"))


def stub_source(source: str, where: str = "cell") -> str:
    """The source with every solution block replaced by its stub (same indentation)."""
    lines = source.split("\n")
    for sol in reversed(find_solutions(source, where)):
        hint = sol.hint.replace("\\", "\\\\").replace('"', '\\"')
        comment = "# YOUR CODE HERE" if sol.hint == DEFAULT_HINT else f"# YOUR CODE HERE: {sol.hint}"
        stub = [f"{sol.indent}{comment}",
                f'{sol.indent}raise NotImplementedError("{hint}")']
        lines[sol.begin:sol.end + 1] = stub
    return "\n".join(lines)


def solution_source(source: str) -> str:
    """The source with the marker lines removed and the solutions kept (what runs in the teacher's copy,
    minus the markers)."""
    return "\n".join(line for line in source.split("\n") if not _MARK.match(line))


def wrong_answers(cell: nbformat.NotebookNode, where: str = "cell") -> list[tuple[str, str]]:
    """(why, source) for each wrong answer recorded in a solution cell's metadata: the solution's source
    (markers removed) with that answer's `[old, new]` replacements applied in order. ValueError (naming `where`)
    for a malformed entry or an `old` that does not occur exactly once."""
    out = []
    for k, entry in enumerate(cell.get("metadata", {}).get("wrong_answers", [])):
        why, pairs = entry.get("why"), entry.get("replace")
        if not isinstance(why, str) or not why or not isinstance(pairs, list) or not pairs:
            raise ValueError(f"{where}: wrong answer {k} needs a non-empty 'why' and a non-empty 'replace' list.")
        source = solution_source(cell.source)
        for pair in pairs:
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise ValueError(f"{where}: wrong answer {why!r}: each replacement must be [old, new] strings.")
            old, new = pair
            count = source.count(old)
            if count != 1:
                raise ValueError(f"{where}: wrong answer {why!r}: {old!r} occurs {count} times in the solution "
                                 "(it must occur exactly once).")
            source = source.replace(old, new)
        out.append((why, source))
    return out


def exercises(nb: nbformat.NotebookNode, where: str = "notebook") -> list[tuple[int, int]]:
    """(solution cell index, check cell index) for each exercise: the check is the next code cell.
    ValueError when a solution cell has no code cell after it."""
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    pairs = []
    for pos, i in enumerate(code):
        if has_solution(nb.cells[i].source):
            find_solutions(nb.cells[i].source, f"{where}, cell {i}")
            if pos + 1 >= len(code):
                raise ValueError(f"{where}, cell {i}: an exercise needs a check cell after it.")
            pairs.append((i, code[pos + 1]))
    return pairs


def grading_metadata(nb: nbformat.NotebookNode, where: str = "notebook") -> bool:
    """Give every exercise nbgrader's metadata, in place: the solution cell `exercise_K` (solution, not
    graded, editable), its check cell `exercise_K_check` (graded, locked, `POINTS` points); other cells carry
    none. Returns True when something changed."""
    wanted: dict[int, dict] = {}
    for k, (sol, check) in enumerate(exercises(nb, where), start=1):
        wanted[sol] = {"grade": False, "grade_id": f"exercise_{k}", "locked": False, "schema_version": 3,
                       "solution": True, "task": False}
        wanted[check] = {"grade": True, "grade_id": f"exercise_{k}_check", "locked": True, "points": POINTS,
                         "schema_version": 3, "solution": False, "task": False}
    changed = False
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader") != wanted.get(i):
            changed = True
            if i in wanted:
                cell.metadata["nbgrader"] = wanted[i]
            else:
                cell.metadata.pop("nbgrader", None)
    return changed


def layout_for_nbgrader(root: Path, source_dir: Path = ROOT / "notebooks") -> list[Path]:
    """nbgrader's course folder: `root/source/NN_name/NN_name.ipynb`, a link to each source notebook (one
    assignment per notebook). Returns the links."""
    links = []
    for path in notebooks(source_dir):
        folder = root / "source" / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / path.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(path.resolve())
        links.append(link)
    return links


def student_notebook(nb: nbformat.NotebookNode, where: str = "notebook") -> nbformat.NotebookNode:
    """A copy of `nb` with stubs instead of solutions and no outputs."""
    out = nbformat.from_dict(nb)
    out = nbformat.reads(nbformat.writes(out), as_version=4)  # a deep copy
    for i, cell in enumerate(out.cells):
        if cell.cell_type == "code":
            if has_solution(cell.source):
                cell.source = stub_source(cell.source, f"{where}, cell {i}")
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("wrong_answers", None)
            cell.metadata.pop("nbgrader", None)
    return out


def make_student(out_dir: Path = ROOT / "student", source_dir: Path = ROOT / "notebooks") -> list[Path]:
    """Write the student copy of every notebook into `out_dir`; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks(source_dir):
        nb = nbformat.read(path, as_version=4)
        target = out_dir / path.name
        nbformat.write(student_notebook(nb, path.name), target)
        written.append(target)
    return written


if __name__ == "__main__":
    if sys.argv[1:2] == ["--nbgrader"]:
        root = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "grading"
        print(f"linked {len(layout_for_nbgrader(root))} notebooks into {root / 'source'} (one assignment each)")
        sys.exit(0)
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "student"
    paths = make_student(out)
    n = sum(len(exercises(nbformat.read(p, as_version=4))) for p in notebooks())
    print(f"wrote {len(paths)} student notebooks with {n} exercises stubbed to {out}")
