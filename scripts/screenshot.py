"""Screenshot the running studio in headless Chromium after an example run (for the README).

    python app.py &   # then:
    python scripts/screenshot.py http://127.0.0.1:7860 docs/screenshot.png
"""

from __future__ import annotations

import sys

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(url: str, out: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        page.goto(url)
        page.get_by_text("Examples (photo + pre-drawn mask)").wait_for()
        page.get_by_text("bridge_mask.png").click()
        page.wait_for_timeout(3000)
        page.locator("#run").click()
        page.get_by_text("result(s) at").wait_for(timeout=120_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=out, full_page=True)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
