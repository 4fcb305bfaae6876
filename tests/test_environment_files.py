"""environment.yml, requirements*.txt and the notebooks agree with each other and with the conventions."""
import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name
CONDA_ONLY = {"python", "pip"}


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*(#.*)?$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _pip_requirements(name: str) -> dict[str, str]:
    """Package -> version range; requirements only for Pythons older than environment.yml's 3.11 are left out."""
    out = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if 'python_version < "3.11"' in line:
            continue
        if line and not line.startswith("-r"):
            pkg, spec = _split(line)
            out[pkg] = spec
    return out


def _conda_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-e"):
                continue
            pkg, spec = _split(item.replace("=", "==", 1) if re.match(r"^[\w.\-]+=[^=]", item) else item)
            pkg = CONDA_NAMES.get(pkg, pkg)
            if pkg not in CONDA_ONLY:
                out[pkg] = spec
    return out


def test_environment_yml_lists_the_same_packages_and_versions_as_pip():
    pip = {**_pip_requirements("requirements.txt"), **_pip_requirements("requirements-dev.txt")}
    conda = _conda_requirements()
    assert sorted(pip) == sorted(conda), (set(pip) ^ set(conda))
    assert {k: v for k, v in pip.items() if conda[k] != v} == {}


def test_dev_requirements_include_the_runtime_ones_and_pyproject_reads_them():
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dependencies = { file = ["requirements.txt"] }' in pyproject


def test_conda_python_matches_the_supported_range():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    assert 'requires-python = ">=3.10"' in (ROOT / "pyproject.toml").read_text()


def test_notebooks_are_committed_without_outputs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    dirty = []
    for path in notebooks:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count")):
                dirty.append(path.name)
                break
    assert dirty == [], f"strip outputs with tools/sync_notebooks.py: {dirty}"


def test_notebooks_are_numbered_and_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert re.match(r"^\d\d_[a-z0-9_]+\.ipynb$", path.name), path.name
        assert f"`{path.stem}`" in readme, f"{path.stem} is missing from the README's notebook table"


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_the_lock_pins_every_requirement_within_its_range():
    """constraints.txt (make lock) records one exact version for each requirement, inside its range."""
    from packaging.specifiers import SpecifierSet
    pins = _pins()
    for pkg, spec in {**_pip_requirements("requirements.txt"), **_pip_requirements("requirements-dev.txt")}.items():
        assert pkg in pins, f"{pkg} is not pinned in constraints.txt: run make lock"
        assert pins[pkg] in SpecifierSet(spec), f"{pkg}=={pins[pkg]} is outside {spec}"
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt" in makefile and "constraints.txt" in (ROOT / "README.md").read_text()


def test_no_deps_packages_agree_in_make_colab_and_binder():
    """requirements-nodeps.txt (installed with --no-deps) is what make env, the Colab setup cell and Binder's
    postBuild install, and it pins exact versions (their dependencies are not resolved)."""
    from helpers import colab

    listed = [ln.split("#")[0].strip() for ln in (ROOT / "requirements-nodeps.txt").read_text().splitlines()]
    listed = [ln for ln in listed if ln]
    assert listed and all(re.fullmatch(r"[\w\-]+==[\w.]+", ln) for ln in listed), listed
    assert tuple(listed) == colab.NO_DEPS
    assert all(repr(r) in colab.setup_cell_source() for r in listed)
    assert "pip install --quiet --no-deps -r requirements-nodeps.txt" in (ROOT / "Makefile").read_text()
    assert "pip install --no-deps -r requirements-nodeps.txt" in (ROOT / "postBuild").read_text()
    pip = {**_pip_requirements("requirements.txt"), **_pip_requirements("requirements-dev.txt")}
    assert not set(_split(r)[0] for r in listed) & set(pip)  # installed one way only
