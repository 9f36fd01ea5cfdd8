"""The explorer's server side without a browser: the pages and scripts are served from the
package, the feed is public and incremental, and nothing secret leaks while an auction
is open (the phantom seed, hence the phantoms, stays sealed until the competition)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..service.service_harness import order
from .explorer_harness import RawBidder, ServerProcess, reason

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder: Path = tmp_path_factory.mktemp("explorer-api")
    made = ServerProcess(f"sqlite+aiosqlite:///{folder / 'service.db'}", log=folder / "log")
    made.start()
    try:
        yield made
    finally:
        made.stop()


async def test_an_open_auction_shows_its_commits_but_no_phantom(server: ServerProcess) -> None:
    token = await server.add_client("api-tests")
    key = await server.add_bidder("api-bidder")
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as public,
        httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
        RawBidder(server.ws_url, "api-bidder", key) as bidder,
    ):
        before = (await public.get("/explorer/api/feed")).json()
        # 3 s: still open through the reads below on a loaded machine.
        opened = await client.post(
            "/v1/auctions", params={"wait": "false"}, json=order(duration_ms=3000)
        )
        assert opened.status_code == 202
        auction_id = opened.json()["auction_id"]
        announced = await bidder.opened(auction_id)
        bid = bidder.bid(announced, 30.0)
        assert reason(await bidder.commit(auction_id, bid)) == "accepted"

        feed = await public.get("/explorer/api/feed", params={"since": before["seq"]})
        assert feed.status_code == 200
        entry = next(a for a in feed.json()["auctions"] if a["auction_id"] == auction_id)
        assert entry["status"] == "open" and entry["commits"] == 1
        assert entry["phantom_bids"] is None and entry["real_bids"] is None
        assert entry["phantom_commitment"] == opened.json()["phantom_commitment"]
        store = await server.connect_store()
        try:
            record = await store.auction(auction_id)
        finally:
            await store.close()
        assert record is not None and len(record.phantom_seed) == 64
        summary = await public.get(f"/explorer/api/auctions/{auction_id}")
        for text in (feed.text, summary.text):
            assert record.phantom_seed not in text
            assert "phantom_seed" not in text
        assert (await public.get(f"/v1/auctions/{auction_id}/competition")).status_code == 409

        await bidder.push("reveal_open", auction_id)
        assert reason(await bidder.reveal(auction_id, bid)) == "accepted"
        await bidder.push("auction_closed", auction_id)
        competition = (await public.get(f"/v1/auctions/{auction_id}/competition")).json()
        done = (await public.get(f"/explorer/api/auctions/{auction_id}")).json()
        assert done["status"] == "finalized" and done["reveal_window_opened"] is True
        assert done["outcome"] == competition["outcome"]
        assert done["commits"] == 1 and done["real_bids"] == 1
        assert done["phantom_bids"] == len(competition["phantom_bids"])
        assert done["improvement_bps"] == competition["improvement_bps"]

        # Incremental: asking from the last seq gives only what changed since.
        page = (await public.get("/explorer/api/feed")).json()
        again = (await public.get("/explorer/api/feed", params={"since": page["seq"]})).json()
        assert again["auctions"] == [] and again["seq"] == page["seq"]
        ids = [a["auction_id"] for a in page["auctions"]]
        assert auction_id in ids and len(ids) == len(set(ids))
        bidders = (await public.get("/explorer/api/bidders")).json()["bidders"]
        row = next(b for b in bidders if b["bidder_id"] == "api-bidder")
        assert row["auctions"] >= 1 and row["no_reveals"] == 0 and row["blocked"] is False


@pytest.mark.parametrize("path", ["/", "/auctions/anything", "/bidders"])
async def test_every_page_is_the_shell_with_local_assets(server: ServerProcess, path: str) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        page = await http.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "/explorer/static/app.js" in page.text
        assert "http://" not in page.text and "https://" not in page.text  # no CDN
        for name, media in (("app.js", "text/javascript"), ("verify.js", "text/javascript")):
            asset = await http.get(f"/explorer/static/{name}")
            assert asset.status_code == 200 and asset.headers["content-type"].startswith(media)
            assert "https://" not in asset.text
        css = await http.get("/explorer/static/style.css")
        assert css.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "/explorer/static/nope.js",
        "/explorer/static/.hidden.js",
        "/explorer/static/explorer.py",
        "/explorer/static/..%2Fexplorer.py",
        "/explorer/api/auctions/no-such-auction",
        "/explorer/api/auctions/a%00b",
    ],
)
async def test_unknown_things_are_404_with_a_reason(server: ServerProcess, path: str) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get(path)
    assert response.status_code == 404, response.text
    body = json.loads(response.text)
    assert body["status"] == "rejected" and body["reason"] in {"not_found", "unknown_auction"}


@pytest.mark.parametrize(
    ("params", "field"), [({"since": "-1"}, "since"), ({"epoch": "e" * 65}, "epoch")]
)
async def test_a_bad_since_or_epoch_is_malformed(
    server: ServerProcess, params: dict[str, str], field: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/explorer/api/feed", params=params)
    assert response.status_code == 422
    assert response.json()["reason"] == "malformed" and field in response.json()["detail"]


async def test_a_no_reveal_counts_only_where_the_reveal_window_opened(
    tmp_path: Path,
) -> None:
    """A bidder that committed in an auction the server aborted before its reveal window
    opened (here: the server stopped) could not reveal: the bidders page does not count
    a no-reveal against it, and the summary says the window never opened."""
    made = ServerProcess(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}", log=tmp_path / "log")
    made.start()
    try:
        token = await made.add_client("abort-tests")
        key = await made.add_bidder("early-bidder")
        async with (
            httpx.AsyncClient(
                base_url=made.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as client,
            RawBidder(made.ws_url, "early-bidder", key) as bidder,
        ):
            opened = await client.post(
                "/v1/auctions", params={"wait": "false"}, json=order(duration_ms=60_000)
            )
            auction_id = opened.json()["auction_id"]
            announced = await bidder.opened(auction_id)
            assert (
                reason(await bidder.commit(auction_id, bidder.bid(announced, 30.0))) == "accepted"
            )
            made.stop()  # a graceful stop aborts the auction, long before its commit deadline
        made.start()
        async with httpx.AsyncClient(base_url=made.url, timeout=30) as public:
            competition = (await public.get(f"/v1/auctions/{auction_id}/competition")).json()
            assert competition["status"] == "aborted"
            assert competition["unrevealed"] == ["early-bidder"]  # as the engine says
            summary = (await public.get(f"/explorer/api/auctions/{auction_id}")).json()
            assert summary["status"] == "aborted" and summary["reveal_window_opened"] is False
            bidders = (await public.get("/explorer/api/bidders")).json()["bidders"]
            row = next(b for b in bidders if b["bidder_id"] == "early-bidder")
            assert row["auctions"] == 1 and row["no_reveals"] == 0
            assert row["no_reveal_share"] == 0.0
    finally:
        made.stop()


@pytest.mark.parametrize("wait", ["-1", "10.5", "nan", "soon"])
async def test_a_wait_out_of_bounds_is_malformed(server: ServerProcess, wait: str) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/explorer/api/feed", params={"since": "1", "wait": wait})
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == "malformed" and "wait" in response.json()["detail"]


async def test_a_server_stops_at_once_with_pages_waiting_on_the_feed(tmp_path: Path) -> None:
    """A long poll (``wait=10``) does not hold a stopping server: it is answered, and the
    server is gone well before the 10 s."""
    made = ServerProcess(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}", log=tmp_path / "log")
    made.start()
    try:
        token = await made.add_client("stop-tests")
        async with httpx.AsyncClient(base_url=made.url, timeout=30) as public:
            ended = await public.post(
                "/v1/auctions",
                json=order(duration_ms=200),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert ended.status_code == 200, ended.text
            first = (await public.get("/explorer/api/feed")).json()
            params = {"since": first["seq"], "epoch": first["epoch"], "wait": 10}
            waiting = [
                asyncio.ensure_future(public.get("/explorer/api/feed", params=params))
                for _ in range(3)
            ]
            await asyncio.sleep(0.5)
            assert not any(w.done() for w in waiting)  # nothing new: they wait
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.to_thread(made.stop)
            assert loop.time() - started < 4.0
            for answer in await asyncio.gather(*waiting, return_exceptions=True):
                assert not isinstance(answer, httpx.ReadTimeout), answer
    finally:
        made.stop()
