"""The Python floor (3.10, pyproject's requires-python) is real: every module of `helpers` and the tools
imports on a Python 3.10 interpreter. The heavy third-party libraries (torch, NumPy, ...) are replaced by
stand-ins there, since this machine has them for its own Python only: the test proves that no syntax and no
standard-library module newer than 3.10 is used. Skipped where no 3.10 interpreter is found."""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _python310() -> str | None:
    candidates = [*sorted(Path.home().glob(".pyenv/versions/3.10*/bin/python3.10")), shutil.which("python3.10")]
    for c in candidates:  # pyenv's shim answers even without a 3.10 selected: ask each one
        if c and os.access(c, os.X_OK) and subprocess.run([str(c), "-c", "import sys; assert sys.version_info[:2] == (3, 10)"],
                                                         capture_output=True).returncode == 0:
            return str(c)
    return None


# Run by the 3.10 interpreter: every import that is not the standard library or the course gets a stand-in
# module whose attributes are stand-ins too (classes can derive from them, decorators can wrap with them).
PROBE = r'''
import importlib, importlib.abc, importlib.machinery, pkgutil, sys, types
assert sys.version_info[:2] == (3, 10), sys.version
THIRD_PARTY = set(sys.argv[2].split(","))  # the top-level modules of the packages installed for the course

class Anything(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Stub
    __path__ = []

class _StubMeta(type):
    def __getattr__(cls, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return cls
    def __call__(cls, *a, **k):
        return a[0] if len(a) == 1 and callable(a[0]) and not k else cls
    def __getitem__(cls, item):
        return cls
    def __or__(cls, other):
        return cls
    __ror__ = __or__

class _Stub(metaclass=_StubMeta):
    pass

class StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        if top not in THIRD_PARTY or top == "helpers":
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        return Anything(spec.name)
    def exec_module(self, module):
        pass

sys.meta_path.insert(0, StubFinder())
sys.path.insert(0, sys.argv[1])
import helpers
names = sorted(m.name for m in pkgutil.walk_packages(helpers.__path__, "helpers."))
for name in names:
    importlib.import_module(name)
for tool in ("sync_notebooks", "make_student", "run_notebook"):
    spec = importlib.util.spec_from_file_location(tool, f"{sys.argv[1]}/tools/{tool}.py")
    sys.modules[tool] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[tool])
print("imported", len(names), "modules")
'''


def test_every_module_imports_on_python_310():
    python = _python310()
    if python is None:
        pytest.skip("no Python 3.10 interpreter on this machine")
    third_party = ",".join(sorted(importlib.metadata.packages_distributions()))
    result = subprocess.run([python, "-I", "-c", PROBE, str(ROOT), third_party], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported" in result.stdout
