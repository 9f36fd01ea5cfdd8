"""A competition document served by a real server verifies in Python
(:func:`phantom_auction.verify_competition`, and ``phantom-auction verify URL``), with the
phantom commitment and the terms kept from the ``auction_opened`` push."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from phantom_auction import verify_competition
from phantom_auction.cli import app

from .service_harness import RawBidder, ServerProcess, order, reason, unique

pytestmark = pytest.mark.anyio

ENV = {
    "AUCTION_PHANTOM_AUCTION_DURATION_MS": "1000",
    "AUCTION_PHANTOM_AUCTION_REVEAL_DELAY_MS": "500",
}


@pytest.fixture(scope="module")
def server(server_factory: Any) -> ServerProcess:
    made: ServerProcess = server_factory(ENV)
    return made


async def test_a_served_competition_document_verifies(
    server: ServerProcess, tmp_path: Path
) -> None:
    names = [unique("verified"), unique("verified")]
    keys = [await server.add_bidder(name) for name in names]
    async with (
        server.settlement() as http,
        RawBidder(server.ws_url, names[0], keys[0]) as first,
        RawBidder(server.ws_url, names[1], keys[1]) as second,
    ):
        aid = (await http.post("/v1/auctions", params={"wait": "false"}, json=order())).json()[
            "auction_id"
        ]
        pushed = await first.push("auction_opened", aid)
        op = await first.opened(aid)
        await second.opened(aid)
        bids = [
            first.bid(op, 30.0, priority_fee=0.01),
            second.bid(op, 22.5, volume=op.amount * 0.5),
        ]
        for bidder, bid in zip((first, second), bids, strict=True):
            assert reason(await bidder.commit(aid, bid)) == "accepted"
        for bidder in (first, second):
            await bidder.push("reveal_open", aid)
        for bidder, bid in zip((first, second), bids, strict=True):
            assert reason(await bidder.reveal(aid, bid)) == "accepted"
        await first.push("auction_closed", aid)
    url = f"{server.url}/v1/auctions/{aid}/competition"
    async with httpx.AsyncClient(timeout=30) as anyone:  # public: no credentials
        response = await anyone.get(url)
    assert response.status_code == 200
    doc = response.json()

    check = verify_competition(
        doc, phantom_commitment_at_open=pushed["phantom_commitment"], terms_at_open=pushed
    )
    assert check.ok, [str(c) for c in check.failures]
    assert check.unchecked == (), [str(c) for c in check.unchecked]
    labels = [c.label for c in check.checks]
    for name in names:
        assert f"{name}: commit signature verifies" in labels
        assert f"{name}: reveal hashes to its commitment" in labels
    assert "outcome re-cleared" in labels

    # The command line fetches it itself.
    done = CliRunner().invoke(
        app, ["verify", url, "--commitment", pushed["phantom_commitment"], "--json"]
    )
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["ok"] is True and out["failed"] == 0
    assert out["unchecked"] == 1  # the terms: a commitment alone does not give them
    # With the push kept at open, the terms are checked too.
    kept = tmp_path / "opened.json"
    kept.write_text(json.dumps(pushed))
    done = CliRunner().invoke(app, ["verify", url, "--opened", str(kept), "--json"])
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert (out["ok"], out["failed"], out["unchecked"]) == (True, 0, 0)
    kept.write_text(json.dumps({**pushed, "phantom_policy": "reserve"}))  # other terms
    done = CliRunner().invoke(app, ["verify", url, "--opened", str(kept)])
    assert done.exit_code == 1, done.output
    kept.write_text(json.dumps({**pushed, "auction_id": "another"}))
    done = CliRunner().invoke(app, ["verify", url, "--opened", str(kept)])
    assert done.exit_code == 2 and "--opened" in done.output, done.output
