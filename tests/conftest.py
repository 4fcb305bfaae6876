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

