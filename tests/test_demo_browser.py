"""The demo page in a real headless browser (Debian's Chromium, driven by Playwright): load the
page, choose a street image, the labels appear; then a second image without a restart. Skipped
where no Chromium is installed (CI installs it where it can: ``.ci/run``).

``TINYSEGNET_SCREENSHOT=FILE.png`` keeps the page's screenshot after the first upload (the
one in docs/pictures/demo_page.png came from here)."""

import os
import shutil
import threading

import pytest
from PIL import Image

from tinysegnet import demo, engine
from tinysegnet.data import load_synthetic_split

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")]


@pytest.fixture(scope="module")
def url():
    model, config, _ = engine.load_pretrained("camvid")
    httpd = demo.make_server(model, config, "camvid.npz", port=0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _street(tmp_path):
    """A synthetic street scene (never CamVid's: its photographs stay out of the repository,
    and the screenshot shows the image in the overlay)."""
    path = tmp_path / "street.png"
    Image.fromarray(load_synthetic_split("val", (90, 120)).images[0]).resize((480, 360)).save(path)
    return str(path)


def test_upload_in_a_browser_shows_the_labels(url, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(url)
            assert "Drop a street image here" in page.text_content("#drop")
            page.set_input_files("#image", _street(tmp_path))  # its change event submits the form
            page.wait_for_selector("#labels", timeout=60_000)
            assert page.eval_on_selector("#labels", "img => img.naturalWidth") > 0  # the picture decoded
            assert "segmented in" in page.text_content("#timing")
            assert page.locator("#shares tr").count() > 2
            screenshot = tmp_path / "demo_page.png"
            page.screenshot(path=str(screenshot), full_page=True)
            if os.environ.get("TINYSEGNET_SCREENSHOT"):
                shutil.copyfile(screenshot, os.environ["TINYSEGNET_SCREENSHOT"])
            # a second image on the result page, no restart; then a bad one is a message there
            bad = tmp_path / "notes.png"
            bad.write_bytes(b"this is not an image")
            page.set_input_files("#image", str(bad))
            page.wait_for_selector("#error", timeout=60_000)
            assert "not an image PIL can read" in page.text_content("#error")
            page.set_input_files("#image", _street(tmp_path))
            page.wait_for_selector("#labels", timeout=60_000)
        finally:
            browser.close()
