"""Colab: one setting (pyproject.toml [tool.course] repository) makes every address; every notebook starts
with the generated setup cell; the README's table links every notebook; the setup cell installs only on
Colab, only once, and does nothing elsewhere."""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from helpers import colab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Written in two parts so that this file does not match itself.
ADDRESS_PATTERNS = ("colab.research.google.com" + "/github/", "git+https://" + "github.com/")
SKIP_DIRS = {".git", ".venv", "build", "student", "data", "__pycache__", ".pytest_cache", ".ipynb_checkpoints",
             "node_modules"}
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".yml", ".yaml", ".cfg", ".ini", ".ipynb", ".json", ".sh", ""}


def _sync_tool():
    spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "tools" / "sync_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- colab:start -->\n(.*?)<!-- colab:end -->", text, flags=re.S)
    assert m, "the README lost its <!-- colab:start --> / <!-- colab:end --> markers"
    return m.group(1)


def _files():
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in {"Makefile", "run"}:
            yield path, rel


def test_no_address_is_written_by_hand():
    """Colab links and GitHub install specs appear only where they are generated from the one setting."""
    offenders = []
    for path, rel in _files():
        text = path.read_text(errors="replace")
        if rel == Path("helpers/colab.py"):
            continue  # the templates
        if rel == Path("README.md"):
            text = text.replace(_readme_block(), "")
        elif path.suffix == ".ipynb" and rel.parts[0] == "notebooks":
            cells = json.loads(text)["cells"]
            code = [c for c in cells if c["cell_type"] == "code"]
            text = json.dumps([c for c in cells if code and c is not code[0]])
        for pattern in ADDRESS_PATTERNS:
            if pattern in text:
                offenders.append(f"{rel}: {pattern}")
    assert offenders == [], "write addresses through helpers.colab (pyproject [tool.course] repository): " + \
        ", ".join(offenders)


def test_the_setting_makes_every_address():
    repo = colab.repository()
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", repo), repo
    colab_prefix, git_prefix = ADDRESS_PATTERNS
    assert colab.install_spec() == f"{colab.PACKAGE} @ {git_prefix}{repo}"
    assert colab.colab_url("08_explorer.ipynb") == f"https://{colab_prefix}{repo}/blob/main/notebooks/08_explorer.ipynb"
    assert colab.install_spec("me/fork").endswith(f"{git_prefix}me/fork")
    assert colab.install_spec() in colab.setup_cell_source()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_first_code_cell_is_the_generated_setup_cell(path):
    cells = json.loads(path.read_text())["cells"]
    first = next(c for c in cells if c["cell_type"] == "code")
    assert "".join(first["source"]) == colab.setup_cell_source(), \
        f"run tools/sync_notebooks.py to regenerate {path.name}'s setup cell"


def test_readme_table_links_every_notebook():
    block = _readme_block()
    assert block.strip() == _sync_tool().colab_table(), "run tools/sync_notebooks.py to regenerate the table"
    rows = [line for line in block.splitlines() if line.startswith("| `")]
    assert len(rows) == len(NOTEBOOKS)
    for path, row in zip(NOTEBOOKS, rows):
        assert row.startswith(f"| `{path.name}` |") and f"({colab.colab_url(path.name)})" in row, row


# ------------------------------------------------------------------ the setup cell's behaviour
@pytest.fixture
def recorded_runs(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


def _run_setup_cell() -> dict:
    namespace: dict = {}
    exec(compile(colab.setup_cell_source(), "<setup cell>", "exec"), namespace)
    return namespace


def test_setup_cell_installs_nothing_outside_colab(recorded_runs, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    ns = _run_setup_cell()
    assert recorded_runs == []
    assert ns["cfg"] is ns["course"].cfg and ns["device"] == ns["course"].device


def test_setup_cell_installs_once_on_colab(recorded_runs, monkeypatch, capsys):
    google = types.ModuleType("google")
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "helpers" else real_find_spec(name, *a))
    _run_setup_cell()  # a fresh Colab runtime: helpers is not installed yet
    assert recorded_runs == [(([sys.executable, "-m", "pip", "install", "-q", colab.install_spec()],),
                              {"check": True})]
    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)
    _run_setup_cell()  # run again (helpers importable now): nothing more is installed
    assert len(recorded_runs) == 1
    assert "profile:" in capsys.readouterr().out


def test_the_install_brings_what_colab_lacks():
    """The package installed on Colab depends on requirements.txt, which lists the libraries Colab
    does not ship."""
    reqs = {re.split(r"[<>=\s#]", line, maxsplit=1)[0].lower()
            for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")}
    assert {"captum", "grad-cam", "lime", "shap", "timm", "ipywidgets"} <= reqs
    assert 'dependencies = { file = ["requirements.txt"] }' in (ROOT / "pyproject.toml").read_text()
