"""The helpers package: flat, and its docstring lists every module in one line each."""
import ast
import re
from pathlib import Path

import helpers

HELPERS = Path(helpers.__file__).resolve().parent


def test_every_module_is_listed_once_in_the_package_docstring():
    modules = sorted(p.stem for p in HELPERS.glob("*.py") if p.stem != "__init__")
    listed = re.findall(r"^- `(\w+)`: \S", helpers.__doc__, flags=re.M)
    assert sorted(listed) == modules, f"not listed: {set(modules) - set(listed)}; listed but missing: " \
                                      f"{set(listed) - set(modules)}"
    assert not [p for p in HELPERS.iterdir() if p.is_dir() and p.name != "__pycache__"], "the package is flat"


def test_every_module_says_its_concern_in_its_docstring():
    for path in sorted(HELPERS.glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and len(doc.splitlines()[0]) > 20, f"{path.name} has no docstring saying its concern"
