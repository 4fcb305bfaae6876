"""Downloads: checksum, cache hit, and nothing left behind when a download fails half way."""
import hashlib

import pytest

from local_server import Reply
from helpers.data.download import DownloadError, download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def server(http_server):
    http_server.files.update({"/ok": PAYLOAD, "/cut": Reply(PAYLOAD[: len(PAYLOAD) // 2], announce=len(PAYLOAD))})
    return http_server


def _url(server, path):
    return server.url(path)


def test_complete_download_with_checksum_then_cache_hit(server, tmp_path):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    dest = tmp_path / "cache" / "file.bin"
    assert download(_url(server, "/ok"), dest, sha256=digest[:8], progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    download(_url(server, "/ok"), dest, sha256=digest, progress=False)
    assert server.hits == 1  # the second call used the cache
    assert [p.name for p in dest.parent.iterdir()] == ["file.bin"]


def test_download_cut_half_way_leaves_nothing(server, tmp_path):
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError) as err:
        download(_url(server, "/cut"), dest, progress=False)
    assert str(dest) in str(err.value)  # says where to put the file by hand
    assert list(tmp_path.iterdir()) == []


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match="checksum"):
        download(_url(server, "/ok"), dest, sha256="deadbeef", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_error_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download(_url(server, "/missing"), tmp_path / "x.bin", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_rejected_by_check_or_interrupted_leaves_nothing(server, tmp_path):
    def reject(path):
        raise DownloadError(f"{path.name} is an HTML page")

    with pytest.raises(DownloadError, match="HTML"):
        download(_url(server, "/ok"), tmp_path / "a.bin", check=reject, progress=False)

    def interrupt(path):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download(_url(server, "/ok"), tmp_path / "b.bin", check=interrupt, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_cached_copy_is_replaced(server, tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"garbage")
    download(_url(server, "/ok"), dest, sha256=hashlib.sha256(PAYLOAD).hexdigest(), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_image_by_url_is_downloaded_once_into_the_data_folder(http_server, tmp_path, monkeypatch):
    import io

    import numpy as np
    from PIL import Image

    import helpers

    buf = io.BytesIO()
    Image.new("RGB", (7, 5), (1, 2, 3)).save(buf, "PNG")
    png = buf.getvalue()

    http_server.files["/photo.png"] = png
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "data"))
    url = http_server.url("/photo.png?x=1")
    for _ in range(2):
        img = helpers.load_image(url)
        assert img.size == (7, 5) and np.asarray(img)[0, 0].tolist() == [1, 2, 3]
    assert http_server.hits == 1
    assert len(list((tmp_path / "data" / "images").glob("*.png"))) == 1
