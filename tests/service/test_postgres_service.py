"""The real server on PostgreSQL: an auction end to end, then a SIGKILL and a restart."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from .service_harness import RawBidder, ServerProcess, pg_unavailable_reason, pg_url, reason

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    why = pg_unavailable_reason()
    if why is not None:
        pytest.skip(why)
    folder = tmp_path_factory.mktemp("pg-server")
    server = ServerProcess(pg_url(), {}, log=folder / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.mark.slow
async def test_an_auction_on_postgresql_survives_a_sigkill(pg_server: ServerProcess) -> None:
    suffix = uuid.uuid4().hex[:8]
    token = await pg_server.add_client(f"pg-settlement-{suffix}")
    bidder_id = f"pg-mm-{suffix}"
    key = await pg_server.add_bidder(bidder_id)
    headers = {"Authorization": f"Bearer {token}"}
    order = {"token_in": 1, "token_out": 2, "amount": 10.0, "baseline_price": 2000.0}
    async with httpx.AsyncClient(base_url=pg_server.url, headers=headers, timeout=30) as http:
        async with RawBidder(pg_server.ws_url, bidder_id, key) as b:
            opened = await http.post(
                "/v1/auctions", params={"wait": "false"}, json={**order, "duration_ms": 1000}
            )
            aid = opened.json()["auction_id"]
            bid = b.bid(await b.opened(aid), 50)
            assert reason(await b.commit(aid, bid)) == "accepted"
            await b.push("reveal_open", aid)
            assert reason(await b.reveal(aid, bid)) == "accepted"
            await b.push("auction_closed", aid)
        view = (await http.get(f"/v1/auctions/{aid}")).json()
        assert view["status"] == "finalized"
        assert view["result"]["winning_bid"]["bidder_id"] == bidder_id
        # An auction left open by a crash ends aborted after the restart.
        long = await http.post(
            "/v1/auctions",
            params={"wait": "false"},
            json={**order, "duration_ms": 60_000, "idempotency_key": f"long-{suffix}"},
        )
        assert long.status_code == 202
    pg_server.kill()
    pg_server.start()
    async with httpx.AsyncClient(base_url=pg_server.url, headers=headers, timeout=30) as http:
        assert (await http.get(f"/v1/auctions/{aid}")).json()["status"] == "finalized"
        retry = await http.post(
            "/v1/auctions",
            json={**order, "duration_ms": 60_000, "idempotency_key": f"long-{suffix}"},
        )
        assert retry.json()["auction_id"] == long.json()["auction_id"]
        assert retry.json()["status"] == "aborted"
