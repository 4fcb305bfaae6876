"""Colab support: the repository's address (one setting, in pyproject.toml) and the setup cell that
every notebook starts with, generated from it by `tools/sync_notebooks.py`.

On Colab the setup cell installs this package from the repository (pip pulls what Colab lacks from
requirements.txt); anywhere else it installs nothing. Everywhere it checks that `import helpers` found this
course's package (`helpers.COURSE_PACKAGE`), not a `helpers.py` or `helpers/` beside the notebook or the
unrelated PyPI package of that name, and says what shadows it when it is not.
"""
from __future__ import annotations

import sys
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
PACKAGE = "cnn-interpretability-course"


def repository(pyproject: Path = PYPROJECT) -> str:
    """The public `owner/name` of the course on GitHub, from `[tool.course] repository` (read by the tools and
    tests only; on Python 3.10 with the `tomli` of requirements-dev.txt)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    with open(pyproject, "rb") as f:
        return tomllib.load(f)["tool"]["course"]["repository"]


def in_colab() -> bool:
    """True inside Google Colab (its `google.colab` module is loaded)."""
    return "google.colab" in sys.modules


def install_spec(repo: str | None = None) -> str:
    """The pip requirement that installs the course package from GitHub."""
    return f"{PACKAGE} @ git+https://github.com/{repo or repository()}"


def colab_url(notebook: str, repo: str | None = None, branch: str = "main") -> str:
    """The "Open in Colab" address of `notebooks/<notebook>`."""
    return f"https://colab.research.google.com/github/{repo or repository()}/blob/{branch}/notebooks/{notebook}"


# What requirements-nodeps.txt lists (installed without their declared dependencies; tests check they agree).
NO_DEPS = ("quantus==0.6.0",)

SETUP_TEMPLATE = '''\
# Setup. On Colab this installs the course's helpers (and what Colab lacks); elsewhere it installs nothing.
import importlib.metadata, subprocess, sys
if "google.colab" in sys.modules:
    try:
        importlib.metadata.version("{package}")
    except importlib.metadata.PackageNotFoundError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "{spec}"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", {nodeps}], check=True)
import helpers
if not getattr(helpers, "COURSE_PACKAGE", False):
    raise ImportError(f"`import helpers` found {{getattr(helpers, '__file__', None) or sorted(set(helpers.__path__))}}, "
                      "not this course's package: rename that file or folder (or `pip uninstall helpers`, an "
                      "unrelated package), then restart the kernel.")
course = helpers.setup()
device, cfg = course.device, course.cfg'''


def setup_cell_source(repo: str | None = None) -> str:
    """The exact source of every notebook's first code cell."""
    return SETUP_TEMPLATE.format(spec=install_spec(repo), package=PACKAGE,
                                 nodeps=", ".join(repr(r) for r in NO_DEPS))
