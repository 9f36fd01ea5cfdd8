"""Screenshots of the explorer for the README, taken by the browser the tests use.

Starts a server on loopback with SDK bidders (tests/explorer/explorer_harness.py), opens
the feed (so that the browser keeps each auction's phantom commitment as it opens, and
the auction page can check the revealed seed against it), runs a few auctions (one with
a refused reveal and a duplicate commit), leaves one open, and saves
docs/images/explorer-feed.png, explorer-auction.png and explorer-phone.png.

    .venv/bin/python scripts/explorer_screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.explorer.explorer_harness import (  # noqa: E402
    CHROMIUM_ARGS,
    Market,
    ServerProcess,
    chromium_path,
)


def main() -> None:
    from playwright.sync_api import sync_playwright

    images = ROOT / "docs" / "images"
    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess(
            f"sqlite+aiosqlite:///{folder}/service.db",
            {"AUCTION_RESOURCES_MAX_MESSAGES_PER_SECOND": "10000"},
            log=Path(folder) / "server.log",
        )
        server.start()
        market = Market(server)
        chromium = chromium_path()
        assert chromium is not None, "no Chromium: bash scripts/ensure-chromium.sh"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 640})
                page.goto(server.url + "/")  # polls on its own while the auctions run
                for _ in range(5):
                    market.run_auction(300)
                # A filled auction with a refused reveal and a duplicate commit (mm-raw is
                # blocked after its fourth no-reveal: three tries at most).
                for _ in range(3):
                    shown = market.run_contested_auction()
                    if shown["outcome"] == "filled":
                        break
                for _ in range(3):
                    market.run_auction(300)
                market.open_auction(60_000)
                page.wait_for_selector("[data-testid=feed-row][data-status=open]")
                page.screenshot(path=str(images / "explorer-feed.png"))
                page.goto(f"{server.url}/auctions/{shown['auction_id']}")
                page.wait_for_selector("[data-testid=verify-result]")
                page.screenshot(path=str(images / "explorer-auction.png"), full_page=True)
                phone = browser.new_page(viewport={"width": 390, "height": 844})
                phone.goto(server.url + "/")
                phone.wait_for_selector("[data-testid=feed-row]")
                phone.screenshot(path=str(images / "explorer-phone.png"))
                browser.close()
        finally:
            market.close()
            server.stop()
    print(f"saved explorer-feed.png, explorer-auction.png, explorer-phone.png in {images}")


if __name__ == "__main__":
    main()
