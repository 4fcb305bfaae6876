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
    import importlib.metadata
    google = types.ModuleType("google")
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    real_version = importlib.metadata.version

    def not_installed(name):
        if name == colab.PACKAGE:
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    _run_setup_cell()  # a fresh Colab runtime: the course is not installed yet
    assert recorded_runs == [(([sys.executable, "-m", "pip", "install", "-q", colab.install_spec()],),
                              {"check": True}),
                             (([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *colab.NO_DEPS],),
                              {"check": True})]
    monkeypatch.setattr(importlib.metadata, "version", real_version)
    _run_setup_cell()  # run again (installed now): nothing more is installed
    assert len(recorded_runs) == 2
    assert "profile:" in capsys.readouterr().out


def _setup_cell_in(folder: Path) -> subprocess.CompletedProcess:
    """The setup cell run by a fresh Python whose first path entry is `folder`, as a kernel started there."""
    code = "import sys; sys.path.insert(0, sys.argv[1]); exec(compile(sys.argv[2], '<setup cell>', 'exec'))"
    return subprocess.run([sys.executable, "-c", code, str(folder), colab.setup_cell_source()], cwd=folder,
                          capture_output=True, text=True, env={**__import__("os").environ, "COURSE_PROFILE": "smoke"})


@pytest.mark.parametrize("shadow", ["helpers.py", "helpers/__init__.py", "helpers/"])
def test_a_foreign_helpers_gets_a_clear_message(tmp_path, shadow):
    """A student's own helpers.py, a folder named helpers, or the unrelated PyPI package `helpers` shadow the
    course's package: the setup cell says what it found and what to do, never an AttributeError."""
    target = tmp_path / shadow
    if shadow.endswith("/"):
        target.mkdir()  # an empty folder: a namespace package, found only when nothing else is
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("def useful():\n    return 1\n")
    result = _setup_cell_in(tmp_path)
    if shadow.endswith("/") and result.returncode == 0:  # a regular (non-editable) install wins over an empty folder
        assert "profile: smoke" in result.stdout
    else:
        assert result.returncode != 0
        assert "not this course's package" in result.stderr and str(tmp_path) in result.stderr, result.stderr
        assert "AttributeError" not in result.stderr


def test_the_install_brings_what_colab_lacks():
    """The package installed on Colab depends on requirements.txt, which lists the libraries Colab
    does not ship."""
    reqs = {re.split(r"[<>=\s#]", line, maxsplit=1)[0].lower()
            for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")}
    assert {"captum", "grad-cam", "lime", "shap", "timm", "ipywidgets"} <= reqs
    assert 'dependencies = { file = ["requirements.txt"] }' in (ROOT / "pyproject.toml").read_text()
