"""The helpers package: the lessons' modules flat, plumbing in two subpackages (`data`, `explorer`); every
package's docstring lists its modules in one line each; every module says its concern and stays short."""
import ast
import re
from pathlib import Path

import helpers

HELPERS = Path(helpers.__file__).resolve().parent
SUBPACKAGES = ("data", "explorer")
MAX_LINES = 320


def _listed(doc: str) -> list[str]:
    return re.findall(r"^- `(\w+)/?`(?: \(subpackage\))?: \S", doc, flags=re.M)


def test_every_module_is_listed_once_in_its_package_docstring():
    dirs = sorted(p.name for p in HELPERS.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert dirs == sorted(SUBPACKAGES), f"subpackages: {dirs}; the lessons' modules stay flat"
    for folder, extra in [(HELPERS, list(SUBPACKAGES))] + [(HELPERS / s, []) for s in SUBPACKAGES]:
        modules = sorted([p.stem for p in folder.glob("*.py") if p.stem != "__init__"] + extra)
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        listed = _listed(doc)
        assert sorted(listed) == modules, (f"{folder.name}: not listed: {set(modules) - set(listed)}; listed but "
                                           f"missing: {set(listed) - set(modules)}")


def test_every_module_says_its_concern_in_its_docstring_and_stays_short():
    for path in sorted(HELPERS.rglob("*.py")):
        text = path.read_text()
        doc = ast.get_docstring(ast.parse(text))
        assert doc and len(doc.splitlines()[0]) > 20, f"{path.name} has no docstring saying its concern"
        assert len(text.splitlines()) <= MAX_LINES, f"{path.relative_to(HELPERS)} has over {MAX_LINES} lines: split it by concern"
