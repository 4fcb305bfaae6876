"""Colab support: the repository's address (one setting, in pyproject.toml) and the setup cell that
every notebook starts with, generated from it by `tools/sync_notebooks.py`.

On Colab the setup cell installs this package from the repository (pip pulls what Colab lacks from
requirements.txt); anywhere else it installs nothing.
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
PACKAGE = "cnn-interpretability-course"


def repository(pyproject: Path = PYPROJECT) -> str:
    """The public `owner/name` of the course on GitHub, from `[tool.course] repository`."""
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


SETUP_TEMPLATE = '''\
# Setup. On Colab this installs the course's helpers (and what Colab lacks); elsewhere it installs nothing.
import importlib.util, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("helpers") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "{spec}"], check=True)
import helpers
course = helpers.setup()
device, cfg = course.device, course.cfg'''


def setup_cell_source(repo: str | None = None) -> str:
    """The exact source of every notebook's first code cell."""
    return SETUP_TEMPLATE.format(spec=install_spec(repo))
