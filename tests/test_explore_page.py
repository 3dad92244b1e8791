"""`genfields explore`'s page in Debian's Chromium (headless, through Playwright) at 1280x800: the image and the
tabs side by side, errors next to their control and in view, the busy state, and every tool of the page."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from PIL import Image

from genfields.editing import shipped_editors
from genfields.stylegan2 import shipped_models

pytestmark = pytest.mark.skipif("synth64" not in shipped_models() or "synth64" not in shipped_editors(),
                                reason="needs the shipped synth64 generator and editor")
WIDTH, HEIGHT = 1280, 800
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        reason = "Debian's chromium is not installed (scripts/setup.sh installs it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)  # CI must run the browser test
        pytest.skip(reason)
    return path


def open_page(p, server, problems: list[str]):
    """A headless Chromium page (1280x800) on `server` that records console errors, page errors, failed requests
    and any request outside the server in `problems`; the console lines of the 4xx answers that the tests cause
    on purpose are not problems. Returns (browser, page)."""
    browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT}, accept_downloads=True)
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" and "status of 4" not in m.text else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("request", lambda r: None if r.url.startswith((server.url, "data:")) else
            problems.append(f"request outside the server: {r.url}"))
    return browser, page


def in_view(page, selector: str) -> bool:
    """Whether the element is visible and lies entirely inside the 1280x800 viewport."""
    box = page.locator(selector).bounding_box()
    return (page.locator(selector).is_visible() and box is not None and box["x"] >= 0 and box["y"] >= 0
            and box["x"] + box["width"] <= WIDTH and box["y"] + box["height"] <= HEIGHT)


def settled(page):
    page.wait_for_function("document.body.dataset.pending === '0'", timeout=60000)


def image_shown(page):
    """Wait until the page shows its first image and every request has answered."""
    page.wait_for_function("document.getElementById('image').src.startsWith('data:image/png')", timeout=60000)
    settled(page)


def changed(page, selector: str, before: str) -> str:
    page.wait_for_function("([s, b]) => document.querySelector(s).src !== b", arg=[selector, before], timeout=60000)
    settled(page)
    return page.locator(selector).get_attribute("src")


def click_image(page, fx: float, fy: float):
    box = page.locator("#image").bounding_box()
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)


@contextlib.contextmanager
def page_on(target, tolerate: tuple[str, ...] = ()):
    """(server, page) of a page on its own server for `target` (an explorer or a catalogue), its first image
    shown; afterwards, no problem but those holding a `tolerate` string."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright (extra [test]) not installed")
    from genfields.explore.server import ExploreServer

    server = ExploreServer(target, port=0).start()
    problems: list[str] = []
    try:
        with playwright.sync_playwright() as p:
            browser, page = open_page(p, server, problems)
            page.goto(server.url)
            image_shown(page)
            yield server, page
            browser.close()
    finally:
        server.stop()
    problems = [m for m in problems if not any(t in m for t in tolerate)]
    assert problems == [], problems


@pytest.fixture(scope="module")
def server():
    from genfields.explore import Explorer
    from genfields.explore.server import ExploreServer

    running = ExploreServer(Explorer.load("synth64"), port=0).start()
    yield running
    running.stop()


@pytest.fixture()
def page(server):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright (extra [test]) not installed")
    problems: list[str] = []
    with playwright.sync_playwright() as p:
        browser, page = open_page(p, server, problems)
        page.goto(server.url)
        image_shown(page)
        yield page
        browser.close()
    assert problems == [], problems


def test_layout_at_1280x800(page):
    """The image and the tabs side by side on the first screen; the tab's empty state says what to do."""
    assert in_view(page, "#image") and in_view(page, ".tabs") and in_view(page, "#fields-empty")
    image, tools = page.locator("#image").bounding_box(), page.locator("#tools").bounding_box()
    assert tools["x"] >= image["x"] + image["width"]  # beside it, not below
    assert "Click a pixel" in page.inner_text("#fields-empty")
    page.click("button[data-tab=edit]")
    assert page.locator("#edit-empty").is_visible() and not page.locator("#edit-results").is_visible()
    assert not page.locator("#top-section").is_visible()  # no empty "Largest |dS|" heading, no broken images
    page.set_viewport_size({"width": 900, "height": 800})  # narrow: the tools stack below the image
    page.wait_for_timeout(100)
    image, tools = page.locator("#image").bounding_box(), page.locator("#tools").bounding_box()
    assert tools["y"] >= image["y"] + image["height"] and image["x"] + image["width"] <= 900


def test_view_tools_in_the_browser(page):
    image = page.locator("#image").get_attribute("src")
    page.click("#seed-next")
    image = changed(page, "#image", image)
    assert page.input_value("#seed") == "1"

    # a style channel's slider changes the image, its reset button brings it back
    page.click("button[data-tab=channels]")
    assert page.locator("#sliders-empty").is_visible()
    page.fill("#channel-name", "3_105")
    page.click("#channel-form button[type=submit]")
    page.wait_for_selector(".slider-row[data-channel='dS_362']")
    page.locator(".slider-row input[type=range]").fill("4")
    moved = changed(page, "#image", image)
    page.click(".slider-row button.reset")
    assert changed(page, "#image", moved) == image and page.inner_text(".slider-row output") == "0.0"

    # clicking a pixel draws its fields, ranks the channels there; probe and feature maps follow the click
    click_image(page, 0.5, 0.4)
    page.wait_for_selector("#rank-table tr.clickable")
    settled(page)
    assert page.locator("#overlay rect").count() >= 1 + 3 * 2  # image border + Eq. 1 and exact per layer
    assert page.locator("#fields-table tr").count() == 1 + 9
    page.click("button[data-tab=probe]")
    page.wait_for_function("document.getElementById('probe-image').src.startsWith('data:image/png')")
    settled(page)
    assert "pixels that changed" in page.inner_text("#probe-line") and "of 255" in page.inner_text("#probe-line")
    page.click("button[data-tab=features]")
    page.wait_for_selector("#feature-grid figure >> nth=15")
    settled(page)
    assert "largest in magnitude at unit" in page.inner_text("#features-line") and in_view(page, "#feature-grid figure >> nth=0")
    page.select_option("#feature-layer", "conv7")
    page.wait_for_function("document.getElementById('features-line').textContent.startsWith('conv7')")
    first = page.locator("#feature-grid figcaption").first.inner_text().split()[0]
    page.locator("#feature-grid figure").first.click()  # adds that map's style channel and shows it
    page.wait_for_selector(f".slider-row .name:has-text('{first}')")
    assert page.locator("#tab-channels").is_visible() and in_view(page, ".slider-row >> nth=-1")

    # style mixing: coarse styles from another seed change the image
    settled(page)
    image = page.locator("#image").get_attribute("src")
    page.fill("#mix-seed", "8")
    page.dispatch_event("#mix-seed", "change")
    page.select_option("#mix-styles", "coarse")
    image = changed(page, "#image", image)

    # region search: a drag draws a box and ranks the channels concentrated in it
    box = page.locator("#image").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.45, steps=3)
    page.mouse.up()
    page.wait_for_selector("#region-table tr.clickable", timeout=60000)
    settled(page)
    assert page.locator("#tab-region").is_visible() and "Box (" in page.inner_text("#region-line")
    assert "%" in page.locator("#region-table tr.clickable td >> nth=5").first.inner_text()

    # capture: a PNG download whose metadata holds the view
    with page.expect_download() as download:
        page.click("#capture")
    with Image.open(download.value.path()) as png:
        settings = json.loads(png.text["genfields:view"])
        link = png.text["genfields:link"]
    assert settings["seed"] == 1 and settings["mix"] == {"seed": 8, "styles": "coarse"}
    assert [c["paper"] for c in settings["channels"]] == []  # both sliders sit at 0

    # the link restores the whole view in a new page: same image, sliders, box, tab
    hash_ = parse_qs(urlsplit(link).fragment)
    assert hash_["seed"] == ["1"] and hash_["mix"] == ["coarse:8"] and hash_["tab"] == ["region"]
    page.click("button[data-tab=channels]")
    page.locator(".slider-row input[type=range]").first.fill("2.5")
    image = changed(page, "#image", image)
    url = page.url
    other = page.context.browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    other.goto(url)
    image_shown(other)
    assert other.locator("#image").get_attribute("src") == image
    assert other.input_value("#seed") == "1" and other.input_value("#mix-styles") == "coarse"
    assert other.locator(".slider-row").count() == 2 and other.locator("#tab-channels").is_visible()
    assert other.locator(".slider-row input[type=range]").first.input_value() == "2.5"
    other.close()


def test_edit_in_the_browser(page):
    page.click("button[data-tab=edit]")
    page.click("#gallery img >> nth=2")
    page.wait_for_function("document.getElementById('edit-out').src.startsWith('data:image/png')", timeout=60000)
    settled(page)
    out = page.locator("#edit-out").get_attribute("src")
    assert out != page.locator("#edit-id").get_attribute("src") and not page.locator("#edit-empty").is_visible()
    assert "lower is better" in page.inner_text("#metrics-table")
    page.click("#mask-buttons button:has-text('#3')")  # a Table 3 range: conv0-conv2 on synth64
    out = changed(page, "#edit-out", out)
    assert "dS applied on 3 of" in page.inner_text("#mask-line")
    row = page.locator("#top-table tr.clickable").first
    name = row.locator("td").first.inner_text()
    row.click()  # adds a slider and opens the tab that holds it
    page.wait_for_selector(f".slider-row .name:has-text('{name}')")
    assert page.locator("#tab-channels").is_visible() and in_view(page, ".slider-row")


def test_errors_are_next_to_their_control_and_in_view(page):
    page.click("button[data-tab=channels]")
    page.fill("#channel-name", "not_a_channel")
    page.click("#channel-form button[type=submit]")
    page.wait_for_selector("#tab-channels .inline-error")
    assert "cannot read style index" in page.inner_text("#tab-channels .inline-error")
    assert in_view(page, "#tab-channels .inline-error")
    page.fill("#channel-name", "448")  # a bare number: the message says which dS_N it would be
    page.click("#channel-form button[type=submit]")
    page.wait_for_function("document.querySelector('#tab-channels .inline-error').textContent.includes('dS_449')")

    for bad in ["-5", "1.7", "1e20"]:  # refused with a message; the box goes back to the image shown
        page.fill("#seed", bad)
        page.dispatch_event("#seed", "change")
        page.wait_for_selector("#generate .inline-error")
        settled(page)
        assert "view.seed must be" in page.inner_text("#generate .inline-error"), bad
        assert in_view(page, "#generate .inline-error") and page.input_value("#seed") == "0"

    page.click("button[data-tab=edit]")
    page.set_input_files("#upload", files=[{"name": "notes.png", "mimeType": "image/png",
                                            "buffer": b"certainly not a PNG"}])
    page.wait_for_function("[...document.querySelectorAll('#tab-edit .inline-error')]"
                           ".some((e) => e.textContent.includes('not a readable image'))")
    assert in_view(page, "#tab-edit .inline-error")
    page.set_input_files("#upload", files=[{"name": "huge.png", "mimeType": "image/png",
                                            "buffer": b"\0" * (21 * 2**20)}])  # refused before it is sent
    page.wait_for_function("document.querySelector('#tab-edit .inline-error').textContent.includes('limit is 20 MB')")
    assert in_view(page, "#tab-edit .inline-error")
    image = page.locator("#image").get_attribute("src")
    page.click("#seed-next")  # the server goes on
    changed(page, "#image", image)
    assert page.input_value("#seed") == "1" and page.locator("#generate .inline-error").count() == 0


def test_busy_state_appears_and_clears(page):
    """A request that takes over 200 ms shows the busy indicator and says so in its tab, until it answers."""
    held = []
    page.route("**/api/rank", lambda route: held.append(route))
    page.click("button[data-tab=channels]")
    click_image(page, 0.5, 0.5)
    page.wait_for_selector("#busy:not([hidden])", timeout=5000)
    assert "ranking channels" in page.inner_text("#busy") and in_view(page, "#busy")
    assert page.inner_text("#rank-line").startswith("ranking channels")
    assert page.evaluate("document.body.dataset.busy") == "1"
    while not held:
        page.wait_for_timeout(20)
    held[0].continue_()
    page.wait_for_selector("#busy", state="hidden", timeout=60000)
    page.wait_for_selector("#rank-table tr.clickable")
    assert page.evaluate("document.body.dataset.busy") == "0" and "Pixel (" in page.inner_text("#rank-line")


def test_model_switch_and_no_editor():
    """A page started on a generator with no editor (random tiny16) switches to another model in the page."""
    from genfields.explore import Explorer
    from genfields.explore.catalogue import Catalogue

    with page_on(Catalogue(Explorer.load("random:tiny16", "auto"), shipped=["random:synth64"])) as (server, page):
        width = page.locator("#image").bounding_box()["width"]
        assert width % 16 == 0 and width >= 256  # 16x16 at an integer zoom: pixel-exact
        box = page.locator("#image").bounding_box()
        page.mouse.click(box["x"] + 3, box["y"] + box["height"] - 3)  # pixel (0, 15)
        page.wait_for_function("document.querySelectorAll('#fields-table tr').length > 1")
        assert "pixel (0, 15)" in page.inner_text("#pixel-line")
        assert page.locator("#show-landmarks").is_disabled()  # no landmark network: nothing to show
        page.click("button[data-tab=edit]")
        assert page.locator("#edit-missing").is_visible() and not page.locator("#edit-body").is_visible()
        assert page.locator("#model option").all_inner_texts() == ["random:tiny16", "random:synth64"]
        page.select_option("#model", "random:synth64")
        page.wait_for_function("document.getElementById('model-line').textContent.startsWith('64x64')",
                               timeout=60000)
        image_shown(page)
        shown = page.locator("#image").get_attribute("src")
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(shown.split(",", 1)[1]))))
        assert pixels.shape == (64, 64, 3) and "model=random%3Asynth64" in page.url


def test_server_gone_keeps_the_controls_on_the_image_shown():
    """When the server stops, a new seed gives a message in view and the seed box goes back to the image shown."""
    from genfields.explore import Explorer

    with page_on(Explorer.load("random:tiny16", "none"), tolerate=("ERR_CONNECTION_REFUSED", "request failed")) \
            as (server, page):
        server.stop()
        page.click("#seed-next")
        page.wait_for_selector("#generate .inline-error", timeout=30000)
        settled(page)
        assert "did not answer" in page.inner_text("#generate .inline-error")
        assert in_view(page, "#generate .inline-error") and page.input_value("#seed") == "0"
