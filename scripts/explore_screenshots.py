"""Screenshots of the explore page's views for docs/explore.md, taken in headless Chromium.

    .venv/bin/python scripts/explore_screenshots.py [--out docs/explore] [--seed 11]

Serves `genfields explore` (synth64 and its shipped editor) on a free local port, clicks through
the views as a user would, and writes generate-fields.png, probe.png, channels.png and edit.png
(palette PNGs, to keep the repository small). Needs the test extras and Debian's chromium.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

from genfields.explore import Explorer
from genfields.explore.server import ExploreServer

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def save(page, path: Path, selector: str | None = None) -> None:
    (page.locator(selector) if selector else page).screenshot(path=str(path))
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/explore"))
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    server = ExploreServer(Explorer.load("synth64"), port=0).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1560, "height": 840})

            def settled():
                page.wait_for_timeout(150)
                page.wait_for_function("document.body.dataset.pending === '0'", timeout=30000)

            page.goto(server.url)
            page.wait_for_function("document.getElementById('image').src.startsWith('data:image/png')")
            page.fill("#seed", str(args.seed))
            page.dispatch_event("#seed", "change")
            settled()
            page.check("#show-landmarks")
            box = page.locator("#image").bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.36, box["y"] + box["height"] * 0.42)  # an eye
            settled()
            save(page, args.out / "generate-fields.png")

            page.click("button[data-tab=probe]")
            page.select_option("#probe-layer", "conv3")
            settled()
            save(page, args.out / "probe.png", "#tools")

            page.click("button[data-tab=channels]")
            settled()
            page.click("#rank-table tr.clickable >> nth=0")  # the channel that moves this pixel most
            page.wait_for_selector(".slider-row")
            page.locator(".slider-row input[type=range]").fill("3")
            settled()
            page.fill("#channel-name", "dS_448")
            page.click("#channel-form button[type=submit]")
            settled()
            save(page, args.out / "channels.png", "#tools")

            while page.locator(".slider-row button").count():  # back to the plain identity
                page.locator(".slider-row button").first.click()
            settled()
            page.click("button[data-tab=edit]")
            page.click("#gallery img >> nth=3")
            settled()
            page.click("#mask-buttons button:has-text('#2')")
            settled()
            page.set_viewport_size({"width": 1560, "height": 1200})
            save(page, args.out / "edit.png", "#tools")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
