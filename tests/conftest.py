"""Shared test set-up: the smoke profile (no network; the pretrained Lite0 at small sizes) unless a test says
otherwise."""
import os

import pytest
import torch

os.environ.setdefault("COURSE_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def no_network(monkeypatch):
    """Make every attempt to reach the network fail at once (as on a machine without one), and record
    the attempts."""
    import socket
    import urllib.request

    attempts = []

    def refuse_connection(address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"no network in this test ({address})")

    def refuse_urlopen(url, *args, **kwargs):
        attempts.append(getattr(url, "full_url", url))
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(socket, "create_connection", refuse_connection)
    monkeypatch.setattr(urllib.request, "urlopen", refuse_urlopen)
    return attempts


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch cache: `$TORCH_HOME/hub/checkpoints` under tmp_path."""
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home / "hub" / "checkpoints"


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread per test: the tiny test models run several times faster so on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)



# ------------------------------------------------------------------------------------------ shared set-up
from local_server import Reply  # noqa: E402  (tests/ is on sys.path, as for every test module)

@pytest.fixture(scope="module")
def random_resnet18():
    """ResNet-18 with random weights (the same on every call: a local seed), frozen, on the CPU: the
    architecture's behaviour, not its knowledge."""
    import helpers

    return helpers.load_model("resnet18", pretrained=False, device="cpu")


@pytest.fixture(scope="module")
def pretrained_lite0():
    """The course model, EfficientNet-Lite0, with its real ImageNet weights (they ship with a package)."""
    import helpers

    return helpers.load_model("efficientnet_lite0", pretrained=True, device="cpu")


@pytest.fixture(scope="module")
def random_lite0():
    """EfficientNet-Lite0 with random weights (the same on every call), for tests of the architecture."""
    import helpers

    return helpers.load_model("efficientnet_lite0", pretrained=False, device="cpu")


@pytest.fixture
def http_server():
    """A local HTTP server on a free port: `files` maps a path (without its query string) to bytes or a
    `Reply` (or None: 404); "*" answers every other path; a path with no answer gets 404. `url(path)` is its address and
    `hits` counts the GET requests."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.server.hits += 1
            files = self.server.files
            path = self.path.split("?")[0]
            reply = files[path] if path in files else files.get("*")
            if reply is None:
                self.send_error(404)
                return
            reply = reply if isinstance(reply, Reply) else Reply(reply)
            self.send_response(200)
            self.send_header("Content-Length", str(reply.announce or len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
            if reply.announce:
                self.connection.close()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.hits = {}, 0
    httpd.url = lambda path="": f"http://127.0.0.1:{httpd.server_address[1]}{path}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
