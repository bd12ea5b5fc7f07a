"""Screenshot the running studio in headless Chromium after an example run (README, and a look at phones).

    python app.py &   # then:
    python scripts/screenshot.py http://127.0.0.1:7860 docs/screenshot.png            # desktop, 1400 px
    python scripts/screenshot.py http://127.0.0.1:7860 /tmp/phone.png --width 390 --height 844
"""

from __future__ import annotations

import argparse

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(url: str, out: str, width: int = 1400, height: int = 1500) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(url)
        page.locator("#examples .thumbnail-item").first.click()
        page.get_by_text("the example's mask is preset").wait_for(timeout=60_000)
        page.locator("#models label").filter(has_text="Navier-Stokes").click()
        page.locator("#run").click()
        page.get_by_text("result(s) at").wait_for(timeout=120_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=out, full_page=True)
        browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args()
    main(args.url, args.out, args.width, args.height)
