"""The table of downloads (helpers.data.assets): complete, each row with its checksum, licence and size; `make
assets` prints the total size first, shows progress, reuses a cache, and leaves nothing half-written."""
import ast
import io
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from local_server import Reply
from helpers import colab
from helpers.data import assets, datasets, lookalike, prefetch
from helpers.registry import MODELS

ROOT = Path(__file__).resolve().parent.parent
# Addresses in helpers/ that are web pages shown to people, not files the course downloads.
# (helpers/colab.py's Colab and GitHub addresses are templates for links, tested in test_colab.py.)
PAGES = {datasets.PETS_PAGE, datasets.CELEBA_PAGE}


def _string_constants(path: Path) -> list[str]:
    return [n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)]


def test_every_url_in_helpers_is_in_the_table():
    urls = [a.url for a in assets.ASSETS if a.url]
    found = 0
    for path in sorted((ROOT / "helpers").rglob("*.py")):
        if path.name == "colab.py":
            continue
        for text in _string_constants(path):
            for url in re.findall(r"https?://[^\s\"'`)]+", text):
                if url in PAGES or text.startswith(" @ git+"):
                    continue
                found += 1
                # a literal URL, a prefix of f-strings (Wikimedia), or a template with {id} (Google Drive)
                stem = url.split("{", 1)[0]
                assert any(u == url or u.startswith(stem) for u in urls), f"{path.name}: {url} is not in ASSETS"
    assert found >= 4
    for name, spec in MODELS.items():  # torchvision's URLs come from its metadata, not from literals
        assert spec.url is None or spec.url in urls, name


def _string_literals(source: str) -> list[str]:
    # the string tokens of a code cell (f-strings included); comments, where papers are linked, are not strings
    try:
        return [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.STRING]
    except (tokenize.TokenError, SyntaxError):
        return [source]


def test_notebooks_download_nothing_outside_the_table():
    setup = colab.setup_cell_source()  # it installs the course from its repository
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, 4).cells:
            if cell.cell_type == "code" and cell.source != setup:
                urls = [s for s in _string_literals(cell.source) if "://" in s]
                assert not urls, f"{path.name} downloads {urls[0]}: put it in helpers.data.assets.ASSETS"


def test_every_row_has_checksum_licence_and_size():
    names = [(a.part, a.name) for a in assets.ASSETS]
    assert len(names) == len(set(names))
    assert {a.part for a in assets.ASSETS} == set(assets.PARTS)
    assert {a.name for a in assets.part("weights")} == set(MODELS)
    for a in assets.ASSETS:
        assert a.licence and a.about, a
        if a.part == "paintings":  # no published checksum: honestly unverified, size not known
            assert not a.verified and a.size_mb is None and a.licence == "public domain"
        else:
            assert a.verified and a.size_mb > 0, a
        assert (a.url is None) == (a.part == "weights" and MODELS[a.name].ships_weights)
    # the data sets' downloads read their URLs and checksums from the table
    assert [(n, u, m) for n, u, m in datasets.PETS_ARCHIVES] == [(a.name, a.url, a.md5) for a in assets.part("pets")]
    assert {n: m for n, (_, m) in datasets.CELEBA_FILES.items()} == {a.name: a.md5 for a in assets.part("celeba")}
    with pytest.raises(ValueError, match="unknown part"):
        assets.part("photos")


# ------------------------------------------------------------------------------- fetching paintings

def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 120, 40)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def server(http_server):
    """The paintings' server: a JPEG for every path but the three broken ones; its base URL."""
    http_server.files.update({"*": _jpeg(), "/html.jpg": b"<!doctype html><html><body>Too many requests</body></html>",
                              "/cut.jpg": Reply(_jpeg(), announce=4 * len(_jpeg())), "/missing.jpg": None})
    return http_server.url()


def _serve_paintings(monkeypatch, base_url, paths):
    rows = [a for a in assets.ASSETS if a.part != "paintings"]
    painted = [assets.Asset("paintings", f"p{i}", f"{base_url}{p}", None, "public domain", f"painting {i}")
               for i, p in enumerate(paths)]
    monkeypatch.setattr(assets, "ASSETS", rows + painted)
    return painted


def test_make_assets_prints_the_total_first_then_fetches_with_progress(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    painted = _serve_paintings(monkeypatch, server, ["/a.jpg", "/b.jpg"])
    assert prefetch.main(["paintings"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "make assets: paintings: 2 files of unknown size, at most a few MB each (p0, p1)."
    assert "unverified" in lines[1] and lines[-1] == "ok      paintings"
    assert "100%" in err and "p0.jpg" in err  # tqdm's progress bars, one per file
    for a in painted:
        assert assets.painting_path(a.name).read_bytes() == _jpeg()
    # a second run finds everything cached and downloads nothing
    assert prefetch.main(["paintings"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "cached  paintings" and "100%" not in err


@pytest.mark.parametrize("bad", ["/missing.jpg", "/html.jpg", "/cut.jpg"])
def test_a_failed_download_leaves_no_half_written_file(server, tmp_path, monkeypatch, capsys, bad):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    _serve_paintings(monkeypatch, server, ["/good.jpg", bad])
    assert prefetch.main(["paintings"]) == 1
    out, err = capsys.readouterr()
    assert out.count("could not download painting 1") == 1 and "FAILED paintings: could not download the " \
        "paintings p1" in err
    assert sorted(p.name for p in (tmp_path / "paintings").iterdir()) == ["p0.jpg"]  # no p1.jpg, no .part


def test_total_size_counts_known_sizes_and_names_the_unknown():
    rows = [assets.Asset("weights", "a", "http://x/a", 600.0, "l"), assets.Asset("pets", "b", "http://x/b", 650.5, "l"),
            assets.Asset("weights", "c", None, 18.8, "l"), assets.Asset("paintings", "d", "http://x/d", None, "l")]
    assert assets.total_size(rows) == "about 1.3 GB in 2 files and 1 file of unknown size, at most a few MB each (d)"
    assert assets.total_size(rows[:1]) == "about 600 MB in 1 file" and assets.total_size(rows[2:3]) == \
        "nothing to download"


def test_make_assets_with_every_file_already_in_a_temporary_cache(tmp_path):
    """`python -m helpers.data.prefetch` as `make assets` runs it, on a cache where every file is already placed."""
    torch_home, data = tmp_path / "torch", tmp_path / "data"
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for spec in MODELS.values():
        if not spec.ships_weights:
            (checkpoints / spec.filename).write_bytes(b"placed by hand")
    lookalike.make_fake_pets(data, 4)
    lookalike.make_fake_celeba(data, 5)
    (data / "paintings").mkdir()
    for a in assets.part("paintings"):
        (data / "paintings" / f"{a.name}.jpg").write_bytes(_jpeg())
    env = {**os.environ, "TORCH_HOME": str(torch_home), "COURSE_DATA": str(data)}
    run = subprocess.run([sys.executable, "-m", "helpers.data.prefetch"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    files = [a for a in assets.ASSETS if a.url is not None and a.size_mb is not None]
    gb = sum(a.size_mb for a in files) / 1000
    assert lines[0].startswith(f"make assets: weights, pets, celeba, paintings: about {gb:.1f} GB in {len(files)} files")
    assert lines[-4:] == [f"cached  {p}" for p in assets.PARTS]
    listing = subprocess.run([sys.executable, "-m", "helpers.data.prefetch", "--list"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert listing.returncode == 0 and "unverified" in listing.stdout and "md5 5c4f3ee8" in listing.stdout


def test_makefile_passes_the_part():
    make = (ROOT / "Makefile").read_text()
    assert "\t$(PY) -m helpers.data.prefetch $(PART)\n" in make and "PART=weights" in make
