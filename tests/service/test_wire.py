"""The service over the wire: a real server on 127.0.0.1, real sockets, every verdict."""

from __future__ import annotations

import asyncio
import hashlib
import json
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from phantom_auction.client import signed_headers
from phantom_auction.engine import PhantomModel, draw_phantom_bids
from phantom_auction.service.auth import (
    commit_signing_bytes,
    load_private_key,
    login_signing_bytes,
    public_key_hex,
    sign,
    verify_signature,
)
from phantom_auction.service.schemas import Announcement, CompetitionView

from .service_harness import RawBidder, ServerProcess, order, reason, unique

pytestmark = pytest.mark.anyio

#: Collection and reveal windows of equal length, so a test has time in each.
ENV = {
    "AUCTION_PHANTOM_AUCTION_DURATION_MS": "1000",
    "AUCTION_PHANTOM_AUCTION_REVEAL_DELAY_MS": "500",
    "AUCTION_SERVICE_PUBLIC_METRICS": "true",  # /metrics is opt-in
}


@pytest.fixture(scope="module")
def server(server_factory: Any) -> ServerProcess:
    made: ServerProcess = server_factory(ENV)
    return made


async def settlement(server: ServerProcess) -> httpx.AsyncClient:
    token = await server.add_client(unique("settlement"))
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
    )


async def test_every_reason_code_over_the_wire(server: ServerProcess) -> None:
    names = ["alice", "bob", "carol", "dave", "eve", "frank", "grace", "heidi", "mallory"]
    ids = {n: unique(n) for n in names}
    keys = {n: await server.add_bidder(ids[n]) for n in names}
    async with AsyncExitStack() as stack:
        b = {
            n: await stack.enter_async_context(RawBidder(server.ws_url, ids[n], keys[n]))
            for n in names
        }
        http = await stack.enter_async_context(await settlement(server))
        opened = await http.post(
            "/v1/auctions", params={"wait": "false"}, json=order(duration_ms=4000)
        )
        assert opened.status_code == 202, opened.text
        aid = opened.json()["auction_id"]
        op = await b["alice"].opened(aid)
        assert op.token_pair == (1, 2) and op.amount == 10.0

        # -- collection window
        bid_a = b["alice"].bid(op, 45)
        assert reason(await b["alice"].commit(aid, bid_a)) == "accepted"
        assert reason(await b["alice"].reveal(aid, bid_a)) == "outside_reveal_window"
        assert reason(await b["alice"].commit(aid, b["alice"].bid(op, 31))) == "duplicate_commit"
        bid_b = b["bob"].bid(op, 50)  # the maximum: no phantom can beat it
        assert reason(await b["bob"].commit(aid, bid_b)) == "accepted"
        assert reason(await b["bob"].commit(aid, bid_b)) == "replayed_nonce"
        carol = b["carol"]
        wrong_pair = carol.bid(op, token_pair=(2, 1))
        assert reason(await carol.commit(aid, wrong_pair)) == "token_pair_mismatch"
        forged = carol.commit_message(aid, carol.bid(op), signer=b["mallory"].key)
        assert reason(await carol.send(forged)) == "bad_signature"
        posing = {**carol.commit_message(aid, carol.bid(op)), "bidder_id": ids["alice"]}
        assert reason(await carol.send(posing)) == "impersonation"
        assert reason(await carol.commit("f" * 32, carol.bid(op))) == "unknown_auction"
        bad_nonce = {**carol.commit_message(aid, carol.bid(op)), "nonce": "soon"}
        malformed = await carol.send(bad_nonce)
        assert (reason(malformed), malformed["field"]) == ("malformed", "nonce")
        huge = json.dumps({**carol.commit_message(aid, carol.bid(op)), "pad": "x" * 9000})
        assert reason(await carol.send_text(huge)) == "message_too_large"
        not_json = await carol.send_text("{not json")
        assert reason(not_json) == "malformed"
        bid_d = b["dave"].bid(op, 20)
        bid_e = b["eve"].bid(op, 100)  # above max_improvement_bps = 50
        bid_f = b["frank"].bid(op, 20, volume=op.amount * 2)  # above amount x 1.0
        bid_g = b["grace"].bid(op, 20, priority_fee=op.amount * 0.5)  # above volume x 0.01
        bid_h = b["heidi"].bid(op, 20)
        for name, bid in (("dave", bid_d), ("eve", bid_e), ("frank", bid_f), ("grace", bid_g)):
            assert reason(await b[name].commit(aid, bid)) == "accepted", name
        assert reason(await b["heidi"].commit(aid, bid_h)) == "accepted"

        # -- reveal window (the server says when it opens)
        await b["alice"].push("reveal_open", aid)
        assert reason(await b["mallory"].commit(aid, b["mallory"].bid(op))) == "late"
        assert reason(await b["alice"].reveal(aid, bid_a)) == "accepted"
        assert reason(await b["alice"].reveal(aid, bid_a)) == "duplicate_reveal"
        assert reason(await b["bob"].reveal(aid, bid_b)) == "accepted"
        assert reason(await carol.reveal(aid, carol.bid(op))) == "not_committed"
        assert reason(await b["eve"].reveal(aid, bid_e)) == "improvement_out_of_bounds"
        assert reason(await b["frank"].reveal(aid, bid_f)) == "volume_out_of_bounds"
        assert reason(await b["grace"].reveal(aid, bid_g)) == "fee_out_of_bounds"
        tampered = await b["heidi"].reveal(aid, bid_h, improved_price=bid_h.improved_price + 1)
        assert reason(tampered) == "commitment_mismatch"
        # dave never reveals: the auction runs to the end of its reveal window.

        closed = await b["bob"].push("auction_closed", aid)
        assert closed["outcome"] == "filled" and closed["filled"] == pytest.approx(op.amount)
        assert (await b["alice"].push("auction_closed", aid))["filled"] == 0.0
        assert reason(await b["alice"].reveal(aid, bid_a)) == "auction_closed"

        view = (await http.get(f"/v1/auctions/{aid}")).json()
        assert view["status"] == "finalized" and view["outcome"] == "filled"
        result = view["result"]
        assert result["winning_bid"]["bidder_id"] == ids["bob"]
        # Vickrey: bob pays at least alice's price (the runner-up unless a phantom beat her).
        slack = 1e-9  # the price is a volume-weighted mean: allow for its rounding
        assert bid_a.improved_price - slack <= result["price"] <= bid_b.improved_price + slack
        expected_unrevealed = [ids[n] for n in ("dave", "eve", "frank", "grace", "heidi")]
        assert sorted(result["unrevealed"]) == sorted(expected_unrevealed)

        competition = (await http.get(f"/v1/auctions/{aid}/competition")).json()
        # The OpenAPI schema names every key the document has (the docs audit: the
        # terms were missing from it).
        assert set(competition) == set(CompetitionView.model_fields)
        CompetitionView.model_validate(competition)
        stored_reasons = {r["reason"] for r in competition["rejections"]}
        assert stored_reasons == {
            "outside_reveal_window",
            "duplicate_commit",
            "replayed_nonce",
            "token_pair_mismatch",
            "bad_signature",
            "impersonation",
            "late",
            "duplicate_reveal",
            "not_committed",
            "improvement_out_of_bounds",
            "volume_out_of_bounds",
            "fee_out_of_bounds",
            "commitment_mismatch",
        }
        # The audit trail proves who committed to what: every accepted commit verifies.
        publics = {ids[n]: bytes.fromhex(public_key_hex(load_private_key(keys[n]))) for n in names}
        accepted = [c for c in competition["commitments"] if c["accepted"]]
        assert len(accepted) == 7
        for entry in accepted:
            message = commit_signing_bytes(
                aid, entry["bidder_id"], entry["commitment"], entry["nonce"]
            )
            assert verify_signature(publics[entry["bidder_id"]], entry["signature"], message)
        # The phantoms are the ones committed to at open.
        seed = bytes.fromhex(competition["phantom_seed"])
        assert hashlib.sha256(seed).hexdigest() == competition["phantom_commitment"]
        model = PhantomModel.from_document(competition["phantom_model"])
        redrawn = draw_phantom_bids(model, seed, 2000.0, 10.0)
        assert [p["improved_price"] for p in competition["phantom_bids"]] == [
            p.improved_price for p in redrawn
        ]
        ranks = [r["rank"] for r in competition["ranking"]]
        assert ranks == list(range(1, len(ranks) + 1))
        assert len(ranks) == 2 + len(redrawn)

        metrics = (await http.get("/metrics")).text
        assert 'phantom_auction_rejections_total{reason="commitment_mismatch"}' in metrics
        assert 'phantom_auction_auctions_total{outcome="filled"}' in metrics
        assert "phantom_auction_connected_bidders" in metrics


async def test_replay_across_auctions_is_refused(server: ServerProcess) -> None:
    bidder_id = unique("replayer")
    key = await server.add_bidder(bidder_id)
    async with await settlement(server) as http, RawBidder(server.ws_url, bidder_id, key) as b:
        first = (
            await http.post("/v1/auctions", params={"wait": "false"}, json=order(duration_ms=3000))
        ).json()
        second = (
            await http.post("/v1/auctions", params={"wait": "false"}, json=order(duration_ms=3000))
        ).json()
        op_a = await b.opened(first["auction_id"])
        op_b = await b.opened(second["auction_id"])
        bid = b.bid(op_a)
        signed_for_a = b.commit_message(op_a.auction_id, bid)
        assert reason(await b.send(signed_for_a)) == "accepted"
        # The same signed message sent to another auction: the signature names auction A.
        replayed = {**signed_for_a, "auction_id": op_b.auction_id}
        assert reason(await b.send(replayed)) == "bad_signature"
        # Re-signed for B with the used nonce: the engine's nonce rule refuses it.
        same_nonce = b.bid(op_b, nonce=bid.nonce)
        assert reason(await b.commit(op_b.auction_id, same_nonce)) == "replayed_nonce"
        assert reason(await b.commit(op_b.auction_id, b.bid(op_b))) == "accepted"


async def test_no_one_can_speak_for_another_bidder(server: ServerProcess) -> None:
    alice, mallory = unique("alice"), unique("mallory")
    alice_key = await server.add_bidder(alice)
    mallory_key = await server.add_bidder(mallory)
    # WebSocket login with someone else's name.
    async with connect(server.ws_url) as ws:
        challenge = json.loads(await ws.recv())["challenge"]
        forged = sign(load_private_key(mallory_key), login_signing_bytes(alice, challenge))
        await ws.send(json.dumps({"type": "login", "bidder_id": alice, "signature": forged}))
        refused = json.loads(await ws.recv())
        assert (refused["type"], refused["reason"]) == ("error", "bad_signature")
    async with connect(server.ws_url) as ws:
        challenge = json.loads(await ws.recv())["challenge"]
        signature = sign(load_private_key(mallory_key), login_signing_bytes("nobody", challenge))
        await ws.send(json.dumps({"type": "login", "bidder_id": "nobody", "signature": signature}))
        # An unknown id is answered like a bad signature: ids cannot be listed this way.
        assert json.loads(await ws.recv())["reason"] == "bad_signature"

    async with await settlement(server) as http:
        aid = (
            await http.post("/v1/auctions", params={"wait": "false"}, json=order(duration_ms=3000))
        ).json()["auction_id"]
        path = f"/v1/auctions/{aid}/commit"
        body = json.dumps(
            {
                "bidder_id": alice,
                "token_pair": [1, 2],
                "commitment": "ab" * 32,
                "nonce": 1,
                "signature": "00" * 64,
            }
        ).encode()
        # Mallory signs the HTTP request but claims to be Alice.
        headers = signed_headers(mallory, mallory_key, "POST", path, body)
        headers["X-Bidder-Id"] = alice
        r = await http.post(
            path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert (r.status_code, r.json()["reason"]) == (401, "bad_signature")
        # Mallory, authenticated as herself, names Alice in the body.
        headers = signed_headers(mallory, mallory_key, "POST", path, body)
        r = await http.post(
            path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert (r.status_code, r.json()["reason"]) == (403, "impersonation")
        # Alice's own request with a commit signature by Mallory.
        del alice_key  # Alice signs nothing here
        r = await http.get("/v1/bidders/me")
        assert (r.status_code, r.json()["reason"]) == (401, "not_authenticated")


async def test_http_bidder_commits_and_reveals(server: ServerProcess) -> None:
    bidder_id = unique("http-mm")
    key = await server.add_bidder(bidder_id)
    signer = load_private_key(key)

    async def signed(
        http: httpx.AsyncClient, method: str, path: str, payload: Any = None
    ) -> httpx.Response:
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = signed_headers(bidder_id, key, method, path, body)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        return await http.request(method, path, content=body, headers=headers)

    async with await settlement(server) as http:
        aid = (
            await http.post("/v1/auctions", params={"wait": "false"}, json=order(duration_ms=2000))
        ).json()["auction_id"]
        listed = await signed(http, "GET", "/v1/auctions/open")
        assert listed.status_code == 200
        announcement = next(a for a in listed.json() if a["auction_id"] == aid)
        assert set(announcement) == set(Announcement.model_fields)
        Announcement.model_validate(announcement)
        from phantom_auction.engine import make_bid

        bid = make_bid(
            aid, bidder_id, (1, 2), 2000.0 * 1.005, 10.0, 0.0, 7
        )  # 50 bps: no phantom beats it
        commitment = bid.commitment_hash.hex()
        commit = {
            "token_pair": [1, 2],
            "commitment": commitment,
            "nonce": 7,
            "signature": sign(signer, commit_signing_bytes(aid, bidder_id, commitment, 7)),
        }
        r = await signed(http, "POST", f"/v1/auctions/{aid}/commit", commit)
        assert (r.status_code, r.json()["status"]) == (200, "accepted"), r.text
        r = await signed(http, "POST", f"/v1/auctions/{aid}/commit", commit)
        assert (r.status_code, r.json()["reason"]) == (409, "replayed_nonce")
        # Wait for the reveal window named in the announcement.
        opens = datetime.fromisoformat(announcement["commit_deadline"])
        await asyncio.sleep(max(0.0, (opens - datetime.now(opens.tzinfo)).total_seconds()) + 0.05)
        reveal = {
            "token_pair": [1, 2],
            "improved_price": bid.improved_price,
            "volume": 10.0,
            "priority_fee": 0.0,
            "nonce": 7,
            "salt": bid.salt.hex(),
        }
        r = await signed(http, "POST", f"/v1/auctions/{aid}/reveal", reveal)
        assert (r.status_code, r.json()["status"]) == (200, "accepted"), r.text
        for _ in range(200):
            view = (await http.get(f"/v1/auctions/{aid}")).json()
            if view["status"] != "open":
                break
            await asyncio.sleep(0.02)
        assert view["status"] == "finalized"
        assert view["result"]["winning_bid"]["bidder_id"] == bidder_id
        me = await signed(http, "GET", "/v1/bidders/me")
        assert me.status_code == 200
        assert me.json()["blocked"] is False and me.json()["no_reveal_rate"] == 0.0
        stale = signed_headers(bidder_id, key, "GET", "/v1/bidders/me", b"", timestamp_ms=1)
        r = await http.get("/v1/bidders/me", headers=stale)
        assert (r.status_code, r.json()["reason"]) == (401, "stale_request")


async def test_idempotent_retries_get_the_same_result(server: ServerProcess) -> None:
    async with await settlement(server) as http, await settlement(server) as other:
        body = order(duration_ms=200, idempotency_key="order-42")
        first, second = await asyncio.gather(
            http.post("/v1/auctions", json=body), http.post("/v1/auctions", json=body)
        )
        assert first.status_code == second.status_code == 200
        assert first.json() == second.json()
        assert first.json()["status"] == "finalized"
        third = await http.post("/v1/auctions", json=body)
        assert third.json() == first.json()
        conflict = await http.post("/v1/auctions", json={**body, "amount": 11.0})
        assert (conflict.status_code, conflict.json()["reason"]) == (409, "idempotency_key_reused")
        # Another client's key space is its own, and it cannot read this client's auction.
        theirs = await other.post("/v1/auctions", json=body)
        assert theirs.json()["auction_id"] != first.json()["auction_id"]
        aid = first.json()["auction_id"]
        assert (await other.get(f"/v1/auctions/{aid}")).status_code == 404


async def test_bad_requests_name_the_field(server: ServerProcess) -> None:
    async with await settlement(server) as http:
        r = await http.post("/v1/auctions", json=order(amount=-1))
        assert (r.status_code, r.json()["field"]) == (422, "amount")
        r = await http.post("/v1/auctions", json=order(token_in="WETH"))
        assert (r.status_code, r.json()["field"]) == (422, "token_in")
        r = await http.post(
            "/v1/auctions", content=b"{oops", headers={"Content-Type": "application/json"}
        )
        assert (r.status_code, r.json()["reason"]) == (422, "malformed")
        r = await http.post(
            "/v1/auctions", json=order(duration_ms=100, deadline="2030-01-01T00:00:00Z")
        )
        assert (r.status_code, r.json()["field"]) == (422, "duration_ms")
        r = await http.post(
            "/v1/auctions", json=order(deadline=datetime.now().astimezone().isoformat())
        )
        assert (r.status_code, r.json()["reason"], r.json()["field"]) == (
            422,
            "deadline_too_close",
            "deadline",
        )
        r = await http.post("/v1/auctions", json=order(pad="x" * 9000))
        assert (r.status_code, r.json()["reason"]) == (413, "message_too_large")
        assert (await http.get("/v1/auctions/" + "0" * 32)).status_code == 404
        r = await http.get("/v1/auctions/" + "0" * 32 + "/competition")
        assert (r.status_code, r.json()["reason"]) == (404, "unknown_auction")
        opened = await http.post(
            "/v1/auctions", params={"wait": "false"}, json=order(duration_ms=2000)
        )
        r = await http.get(f"/v1/auctions/{opened.json()['auction_id']}/competition")
        assert (r.status_code, r.json()["reason"]) == (409, "not_finished")
        r = await http.post("/v1/auctions", json=order(), headers={"Authorization": "Bearer nope"})
        assert (r.status_code, r.json()["reason"]) == (401, "not_authenticated")
        assert (await http.get("/healthz")).json()["status"] == "ok"
        schema = (await http.get("/openapi.json")).json()
        assert "/v1/auctions/{auction_id}/competition" in schema["paths"]


# ---------------------------------------------------------------------------- limits


@pytest.mark.slow
async def test_capacity_and_message_rate_limits(server_factory: Any) -> None:
    limited: ServerProcess = server_factory(
        {
            **ENV,
            "AUCTION_RESOURCES_MAX_CONCURRENT_AUCTIONS": "2",
            "AUCTION_RESOURCES_MAX_MESSAGES_PER_SECOND": "5",
        }
    )
    bidder_id = unique("chatty")
    key = await limited.add_bidder(bidder_id)
    async with await settlement(limited) as http, RawBidder(limited.ws_url, bidder_id, key) as b:
        for _ in range(2):
            r = await http.post(
                "/v1/auctions", params={"wait": "false"}, json=order(duration_ms=60_000)
            )
            assert r.status_code == 202
        busy = await http.post(
            "/v1/auctions", params={"wait": "false"}, json=order(duration_ms=60_000)
        )
        assert (busy.status_code, busy.json()["reason"]) == (503, "too_many_auctions")
        assert int(busy.headers["Retry-After"]) >= 1
        op = await b.opened(r.json()["auction_id"])
        verdicts = [reason(await b.commit("f" * 32, b.bid(op))) for _ in range(12)]
        assert verdicts[0] == "unknown_auction"
        assert "rate_limited" in verdicts


@pytest.mark.slow
async def test_a_bidder_that_does_not_reveal_is_blocked_with_doubling_backoff(
    server_factory: Any,
) -> None:
    strict: ServerProcess = server_factory(
        {
            **ENV,
            "AUCTION_SECURITY_NO_REVEAL_SMOOTHING": "1.0",
            "AUCTION_SECURITY_NO_REVEAL_THRESHOLD": "0.5",
            "AUCTION_SECURITY_BLOCK_BASE_S": "1.0",
            "AUCTION_SECURITY_BLOCK_MAX_S": "100.0",
        }
    )
    flaky_id, honest_id = unique("flaky"), unique("honest")
    flaky_key = await strict.add_bidder(flaky_id)
    honest_key = await strict.add_bidder(honest_id)

    async def me(http: httpx.AsyncClient) -> dict[str, Any]:
        headers = signed_headers(flaky_id, flaky_key, "GET", "/v1/bidders/me")
        r = await http.get("/v1/bidders/me", headers=headers)
        assert r.status_code == 200
        return dict(r.json())

    # A 2.5 s collection window: in a 1.2 s auction (0.7 s window) a loaded CI machine once
    # stalled the server past the auction's end and the commit was refused auction_closed.
    long = order(duration_ms=3000)

    async with (
        await settlement(strict) as http,
        RawBidder(strict.ws_url, flaky_id, flaky_key) as flaky,
        RawBidder(strict.ws_url, honest_id, honest_key) as honest,
    ):

        async def round_without_reveal() -> dict[str, Any]:
            r = await http.post("/v1/auctions", params={"wait": "false"}, json=long)
            aid = r.json()["auction_id"]
            op = await flaky.opened(aid)
            assert reason(await flaky.commit(aid, flaky.bid(op))) == "accepted"
            honest_bid = honest.bid(await honest.opened(aid))
            assert reason(await honest.commit(aid, honest_bid)) == "accepted"
            await honest.push("reveal_open", aid)
            assert reason(await honest.reveal(aid, honest_bid)) == "accepted"
            await flaky.push("auction_closed", aid)
            view = await http.get(f"/v1/auctions/{aid}")
            return dict(view.json()["result"])

        first = await round_without_reveal()
        assert first["unrevealed"] == [flaky_id]
        status = await me(http)
        assert status["blocked"] is True and status["block_count"] == 1
        assert "no_reveal_rate" in status["reason"]
        until = datetime.fromisoformat(status["blocked_until"])
        assert (until - datetime.fromisoformat(first["finalized_at"])).total_seconds() == 1.0
        assert (await flaky.push("blocked"))["block_count"] == 1

        # While blocked: no pushes, and a commit is refused with the reason.
        r = await http.post("/v1/auctions", params={"wait": "false"}, json=long)
        aid = r.json()["auction_id"]
        op = await honest.opened(aid)
        refused = await flaky.commit(aid, flaky.bid(op))
        assert reason(refused) == "blocked" and "blocked until" in refused["detail"]
        assert not any(
            p.get("auction_id") == aid for p in flaky.pushes if p["type"] == "auction_opened"
        )

        await asyncio.sleep(max(0.0, (until - datetime.now(until.tzinfo)).total_seconds()) + 0.05)
        second = await round_without_reveal()
        status = await me(http)
        assert status["block_count"] == 2
        until = datetime.fromisoformat(status["blocked_until"])
        assert (until - datetime.fromisoformat(second["finalized_at"])).total_seconds() == 2.0

        headers = signed_headers(honest_id, honest_key, "GET", "/v1/bidders/me")
        honest_status = (await http.get("/v1/bidders/me", headers=headers)).json()
        assert honest_status["blocked"] is False and honest_status["no_reveal_rate"] == 0.0
