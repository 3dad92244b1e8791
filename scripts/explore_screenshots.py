"""Screenshots of the explore page at 1280x800 for docs/explore.md, taken in headless Chromium.

    .venv/bin/python scripts/explore_screenshots.py [--out docs/explore] [--seed 11]

Serves `genfields explore` (synth64 and its shipped editor) on a free local port, clicks through
the views as a user would, and writes one 1280x800 screenshot per view: generate-fields.png,
probe.png, features.png, channels.png, region.png, mixing.png, edit.png and error.png (palette
PNGs, to keep the repository small). Needs the test extras and Debian's chromium.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

from genfields.explore import Explorer
from genfields.explore.catalogue import Catalogue
from genfields.explore.server import ExploreServer

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]
VIEWPORT = {"width": 1280, "height": 800}


def save(page, path: Path) -> None:
    page.screenshot(path=str(path))
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
    server = ExploreServer(Catalogue(Explorer.load("synth64")), port=0).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport=VIEWPORT)

            def settled():
                page.wait_for_timeout(150)
                page.wait_for_function("document.body.dataset.pending === '0'", timeout=120000)

            def image_point(fx: float, fy: float) -> tuple[float, float]:
                box = page.locator("#image").bounding_box()
                return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy

            page.goto(server.url)
            page.wait_for_function("document.getElementById('image').src.startsWith('data:image/png')")
            page.fill("#seed", str(args.seed))
            page.dispatch_event("#seed", "change")
            settled()
            page.check("#show-landmarks")
            page.mouse.click(*image_point(0.36, 0.42))  # an eye
            settled()
            save(page, args.out / "generate-fields.png")

            page.click("button[data-tab=probe]")
            page.select_option("#probe-layer", "conv3")
            settled()
            save(page, args.out / "probe.png")

            page.click("button[data-tab=features]")
            settled()
            save(page, args.out / "features.png")

            page.click("button[data-tab=channels]")
            settled()
            page.click("#rank-table tr.clickable >> nth=0")  # the channel that moves this pixel most
            page.wait_for_selector(".slider-row")
            page.locator(".slider-row input[type=range]").fill("3")
            settled()
            page.fill("#channel-name", "dS_448")
            page.click("#channel-form button[type=submit]")
            settled()
            save(page, args.out / "channels.png")
            page.click("#channels-reset")
            settled()

            page.mouse.move(*image_point(0.3, 0.66))  # a box over the mouth
            page.mouse.down()
            page.mouse.move(*image_point(0.72, 0.84), steps=5)
            page.mouse.up()
            page.wait_for_selector("#region-table tr.clickable", timeout=120000)
            settled()
            save(page, args.out / "region.png")

            page.click("button[data-tab=fields]")
            page.fill("#mix-seed", "4")
            page.dispatch_event("#mix-seed", "change")
            page.select_option("#mix-styles", "coarse")
            settled()
            save(page, args.out / "mixing.png")
            page.select_option("#mix-styles", "")
            settled()

            page.click("button[data-tab=edit]")
            page.click("#gallery img >> nth=3")
            settled()
            page.click("#mask-buttons button:has-text('#2')")
            settled()
            save(page, args.out / "edit.png")

            page.fill("#seed", "-5")  # a refused value: the message sits under the seed box, in view
            page.dispatch_event("#seed", "change")
            settled()
            save(page, args.out / "error.png")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
