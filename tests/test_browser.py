"""Notebook 08 in a real browser: JupyterLab on 127.0.0.1 with a token, Debian's Chromium driven headless
by Selenium. The notebook runs; the explorer's controls must render as widgets (DOM elements, not the
text fallback); choosing another method must change the picture. A screenshot goes to build/.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian: `apt-get install chromium chromium-driver`;
`.ci/run` installs them) and selenium (requirements-dev.txt); skipped with that advice otherwise.
Every wait is bounded; the Jupyter server (and its kernel) is stopped in a `finally`.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "08_explorer.ipynb"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
HOW_TO_ENABLE = ("the browser test needs Debian's Chromium and its driver: run `apt-get update && apt-get install "
                 "-y chromium chromium-driver` (as .ci/run does), and selenium (`pip install -r requirements-dev.txt`)")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1300"]
LAB_SETTINGS = {  # JupyterLab user settings for the test: render every cell, save nothing, ask nothing
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}

# JavaScript run in the page (JupyterLab exposes its app as window.jupyterapp with expose_app_in_browser).
JS_NOTEBOOK_STATE = """
const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!w || !w.content || !w.sessionContext) return null;
const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
const cells = w.content.widgets.filter(c => c.model.type === 'code');
const errors = cells.flatMap(c => c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                                 .map(o => o.ename + ': ' + o.evalue));
return {kernel: kernel ? kernel.status : null, cells: cells.length,
        done: cells.filter(c => c.model.executionCount !== null).length, errors: errors};
"""


def chromium(tmp_path: Path):
    """Debian's Chromium, headless, driven by Selenium, with a fresh profile in `tmp_path`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, condition, timeout: float, interval: float = 0.5):
    """Poll `condition()` until it returns something truthy, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
            if last:
                return last
        except Exception as exc:  # the page may be reloading
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def _start_lab(workdir: Path, port: int, token: str) -> subprocess.Popen:
    settings = workdir / "lab-settings"
    for name, value in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    env = dict(os.environ, COURSE_PROFILE="smoke", JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"), JUPYTER_CONFIG_DIR=str(workdir / "config"),
               JUPYTER_RUNTIME_DIR=str(workdir / "runtime"))
    env.pop("MPLBACKEND", None)  # the kernel draws inline, as for a student
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={workdir / 'nb'}", "--LabApp.expose_app_in_browser=True",
           "--ServerApp.open_browser=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(workdir / "jupyter.log", "wb")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and its kernels (its own process group), politely first."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def _server_up(port: int, token: str) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5) as r:
        return r.status == 200


def test_explorer_in_jupyterlab_and_chromium(tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(HOW_TO_ENABLE)
    try:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select
    except ImportError:
        pytest.skip(HOW_TO_ENABLE)

    (tmp_path / "nb").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "nb" / NOTEBOOK.name)  # a copy: nothing is saved into the repository
    port, token = _free_port(), secrets.token_hex(16)
    build = ROOT / "build"
    build.mkdir(exist_ok=True)
    server = _start_lab(tmp_path, port, token)
    driver = None
    try:
        _wait("the Jupyter server", lambda: server.poll() is None and _server_up(port, token), 90)
        driver = chromium(tmp_path)
        driver.set_page_load_timeout(90)
        driver.set_script_timeout(30)
        driver.get(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={token}")

        state = lambda: driver.execute_script(JS_NOTEBOOK_STATE)  # noqa: E731
        _wait("the notebook and an idle kernel", lambda: (state() or {}).get("kernel") == "idle", 120)
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
        final = _wait("every cell to run", lambda: (lambda s: s if s and s["kernel"] == "idle" and
                                                    s["done"] == s["cells"] else None)(state()), 600, 1.0)
        assert final["errors"] == [], f"cells failed in the browser: {final['errors']}"

        # The explorer is rendered by the widget manager: real controls, not "VBox(children=...)" text.
        box = _wait("the explorer's widgets", lambda: driver.find_elements(By.CSS_SELECTOR, ".course-explorer"), 60)[0]
        assert "jupyter-widgets" in box.get_attribute("class")
        dropdowns = {d.find_element(By.TAG_NAME, "label").text: d
                     for d in box.find_elements(By.CSS_SELECTOR, ".widget-dropdown")}
        assert {"photo", "model", "layer", "method", "class"} <= set(dropdowns), sorted(dropdowns)
        assert box.find_elements(By.CSS_SELECTOR, ".widget-slider, .widget-hslider")
        assert box.find_elements(By.CSS_SELECTOR, ".widget-upload, .jupyter-button")
        assert "VBox(children" not in driver.find_element(By.TAG_NAME, "body").text
        image = box.find_element(By.CSS_SELECTOR, "img.course-explorer-image")
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", box)
        _wait("the explorer's picture", lambda: image.get_attribute("src") and image.size["width"] > 100, 30)
        src_before, pixels_before = image.get_attribute("src"), image.screenshot_as_png

        method = Select(dropdowns["method"].find_element(By.TAG_NAME, "select"))
        new = "saliency" if method.first_selected_option.text != "saliency" else "Grad-CAM"
        method.select_by_visible_text(new)
        _wait("the picture to change", lambda: image.get_attribute("src") != src_before, 120)
        _wait("the caption to name the new method", lambda: new in box.text, 30)
        assert image.screenshot_as_png != pixels_before
        driver.save_screenshot(str(build / "explorer_browser.png"))
    finally:
        if driver is not None:
            driver.quit()
        _stop(server)
