"""Downloads: checksum, cache hit, and nothing left behind when a download fails half way."""
import hashlib
import http.server
import threading

import pytest

from helpers.data.download import DownloadError, download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.hits += 1
        if self.path == "/cut":  # announce 1 MiB, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.connection.close()
            return
        if self.path == "/missing":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.hits = 0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def _url(server, path):
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


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


def test_image_by_url_is_downloaded_once_into_the_data_folder(tmp_path, monkeypatch):
    import io

    import numpy as np
    from PIL import Image

    import helpers

    buf = io.BytesIO()
    Image.new("RGB", (7, 5), (1, 2, 3)).save(buf, "PNG")
    png = buf.getvalue()

    class PNGHandler(_Handler):
        def do_GET(self):  # noqa: N802
            self.server.hits += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PNGHandler)
    httpd.hits = 0
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "data"))
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/photo.png?x=1"
        for _ in range(2):
            img = helpers.load_image(url)
            assert img.size == (7, 5) and np.asarray(img)[0, 0].tolist() == [1, 2, 3]
        assert httpd.hits == 1
        assert len(list((tmp_path / "data" / "images").glob("*.png"))) == 1
    finally:
        httpd.shutdown()
        httpd.server_close()
