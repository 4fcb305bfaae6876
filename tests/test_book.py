"""The course as a site (`make book`): the built pages, served on 127.0.0.1, open in Debian's headless Chromium;
the index links every notebook and a notebook page shows its figures (each image loaded, none broken). Runs when
COURSE_BOOK names the built site (make book sets it); a screenshot of the notebook page goes to build/."""
from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

from test_browser import CHROMEDRIVER, CHROMIUM, HOW_TO_ENABLE, _wait, chromium

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(os.environ.get("COURSE_BOOK", ""))  # set by `make book`: a site left in build/ may be stale
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGE = "02_grad_cam"  # a notebook page with many figures
JS_IMAGES = """
const imgs = Array.from(document.querySelectorAll('main img, article img, .cell_output img'));
return {total: imgs.length, loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
        broken: imgs.filter(i => i.complete && i.naturalWidth === 0).map(i => i.src.slice(0, 80))};
"""


@pytest.fixture
def browser(tmp_path):
    if not os.environ.get("COURSE_BOOK") or not (SITE / "index.html").is_file():
        pytest.skip("run by `make book`, which builds the site and sets COURSE_BOOK")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(HOW_TO_ENABLE)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = chromium(tmp_path)
    driver.set_page_load_timeout(60)
    try:
        yield driver, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        driver.quit()
        server.shutdown()


def test_the_site_opens_with_its_contents_and_figures(browser):
    driver, base = browser
    driver.get(f"{base}/index.html")
    links = driver.execute_script("return Array.from(document.querySelectorAll('nav a')).map(a => a.href);")
    missing = [nb for nb in NOTEBOOKS if not any(f"{nb}.html" in href for href in links)]
    assert not missing, f"the table of contents lacks {missing}"

    driver.get(f"{base}/{PAGE}.html")
    state = _wait("the page's images", lambda: (lambda s: s if s["total"] and s["loaded"] + len(s["broken"]) ==
                                                s["total"] else None)(driver.execute_script(JS_IMAGES)), 60)
    assert state["broken"] == [], f"images that did not load: {state['broken']}"
    assert state["loaded"] >= 8, f"only {state['loaded']} figures on {PAGE}"
    assert "claim" in driver.page_source or "as described" in driver.page_source  # the claim cells' output
    (ROOT / "build").mkdir(exist_ok=True)
    driver.save_screenshot(str(ROOT / "build" / "book_page.png"))
