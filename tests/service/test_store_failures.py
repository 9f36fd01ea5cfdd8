"""One message the store cannot take never aborts an auction nor costs other bidders their acks.

The red team's High finding: a commit with a nonce >= 2**63 (valid u64 by the old docs)
was acked ``store_unavailable``, aborted the whole auction (every other bidder's
acknowledged bids dropped), advanced the in-memory nonce registry and showed up in the
competition as accepted. Now: nonces outside the documented JSON-safe range are refused
as ``malformed`` before the auction or the registry sees them (over the wire, on SQLite
and PostgreSQL), and a write that fails for any other reason withdraws just that message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from phantom_auction.config import load_config
from phantom_auction.engine import MAX_NONCE, make_bid
from phantom_auction.service.auth import (
    generate_keypair,
)
from phantom_auction.service.house import AuctionHouse
from phantom_auction.service.schemas import CommitBody, OpenAuctionBody, RevealBody
from phantom_auction.service.store import AuctionFinished, BidEvent, MemoryStore, Write

from .service_harness import (
    FailsOneReveal,
    RawBidder,
    ServerProcess,
    commit_body,
    pg_unavailable_reason,
    pg_url,
    reason,
    reveal_body,
    unique,
)

pytestmark = pytest.mark.anyio

ENV = {
    "AUCTION_PHANTOM_AUCTION_DURATION_MS": "1500",
    "AUCTION_PHANTOM_AUCTION_REVEAL_DELAY_MS": "700",
}


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def live_server(request: pytest.FixtureRequest, server_factory: Any) -> Any:
    if request.param == "sqlite":
        return server_factory(ENV)
    why = pg_unavailable_reason()
    if why is not None:
        pytest.skip(why)
    folder = request.getfixturevalue("tmp_path_factory").mktemp("pg-hardening")
    server = ServerProcess(pg_url(), ENV, log=folder / "server.log")
    server.start()
    request.addfinalizer(server.stop)
    return server


async def test_an_out_of_range_nonce_is_malformed_and_harms_no_one(
    live_server: ServerProcess,
) -> None:
    server = live_server
    token = await server.add_client(unique("settlement"))
    names = [unique("honest"), unique("honest"), unique("attacker")]
    keys = {name: await server.add_bidder(name) for name in names}
    attacker = names[2]
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http,
        RawBidder(server.ws_url, names[0], keys[names[0]]) as a,
        RawBidder(server.ws_url, names[1], keys[names[1]]) as b,
        RawBidder(server.ws_url, attacker, keys[attacker]) as m,
    ):
        opened = await http.post(
            "/v1/auctions",
            params={"wait": "false"},
            json={"token_in": 1, "token_out": 2, "amount": 10.0, "baseline_price": 2000.0},
        )
        aid = opened.json()["auction_id"]
        op = await a.opened(aid)
        bids = {a: a.bid(op, 30), b: b.bid(op, 40)}
        for bidder, bid in bids.items():
            assert reason(await bidder.commit(aid, bid)) == "accepted"
        # Above the range (2**63 was the finding; 2**53 is the first refused value), and
        # as a string: refused before the engine, so neither auction nor registry changes.
        for nonce in (2**63, 2**64 - 1, MAX_NONCE + 1):
            ack = await m.send(
                {**m.commit_message(aid, m.bid(op, 20, nonce=MAX_NONCE)), "nonce": nonce}
            )
            assert (reason(ack), ack["auction_id"]) == ("malformed", None), ack
            assert "nonce" in ack["detail"]
        as_text = m.commit_message(aid, m.bid(op, 20, nonce=5))
        assert reason(await m.send({**as_text, "nonce": "5"})) == "malformed"
        # The attacker's next honest commit, with a small nonce, is still fresh.
        late_bid = m.bid(op, 20, nonce=7)
        assert reason(await m.commit(aid, late_bid)) == "accepted"
        await a.push("reveal_open", aid)
        for bidder, bid in bids.items():
            assert reason(await bidder.reveal(aid, bid)) == "accepted"
        assert reason(await m.reveal(aid, late_bid)) == "accepted"
        closed = await a.push("auction_closed", aid)
        assert closed["status"] == "finalized"
        competition = (await http.get(f"/v1/auctions/{aid}/competition")).json()
        assert competition["status"] == "finalized"
        accepted = {c["bidder_id"]: c["nonce"] for c in competition["commitments"] if c["accepted"]}
        assert accepted == {names[0]: bids[a].nonce, names[1]: bids[b].nonce, attacker: 7}
        assert all(c["nonce"] <= MAX_NONCE for c in competition["commitments"])
        # The largest nonce in range is taken exactly (and kept exactly in the store).
        again = await http.post(
            "/v1/auctions",
            params={"wait": "false"},
            json={"token_in": 1, "token_out": 2, "amount": 10.0, "baseline_price": 2000.0},
        )
        aid2 = again.json()["auction_id"]
        top = m.bid(await m.opened(aid2), 20, nonce=MAX_NONCE)
        assert reason(await m.commit(aid2, top)) == "accepted"
        await m.push("auction_closed", aid2)
        competition = (await http.get(f"/v1/auctions/{aid2}/competition")).json()
        assert [c["nonce"] for c in competition["commitments"]] == [MAX_NONCE]


class FlakyStore(MemoryStore):
    """A store that fails every bid event carrying one nonce (as a full disk might)."""

    def __init__(self, poisoned_nonce: int) -> None:
        super().__init__()
        self.poisoned_nonce = poisoned_nonce

    async def apply(self, writes: Sequence[Write]) -> None:
        for write in writes:
            if isinstance(write, BidEvent) and write.nonce == self.poisoned_nonce:
                raise OSError("disk full")
        await super().apply(writes)


CONFIG = load_config(
    env={
        "AUCTION_SERVICE_FINISH_EARLY": "false",
        "AUCTION_PHANTOM_AUCTION_MECHANISM": "uniform",
    }
)


async def _house_running_one_auction(
    store: MemoryStore, client: Any, duration_ms: int, config: Any = CONFIG
) -> tuple[AuctionHouse, Any, str]:
    """A started house (``config``) on ``store`` with one auction of ``duration_ms`` open
    and stored: the house, the auction's handle and its id."""
    house = AuctionHouse(config, store)
    await house.start()
    handle = await house.open_auction(
        client,
        OpenAuctionBody(
            token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=duration_ms
        ),
    )
    assert handle.stored is not None
    await handle.stored
    return house, handle, handle.record.auction_id


async def test_a_lost_write_withdraws_only_its_own_message() -> None:
    store = FlakyStore(poisoned_nonce=666)
    client = await store.add_client("settlement", "a" * 64)
    keys = {}
    for name in ("mm-0", "mm-1", "mm-2"):
        private, public = generate_keypair()
        await store.add_bidder(name, bytes.fromhex(public))
        keys[name] = private
    # 1.5 s: a 300 ms reveal window, in which a loaded machine still gets every reveal in.
    house, handle, aid = await _house_running_one_auction(store, client, 1500)

    async def commit(name: str, improvement_bps: float, nonce: int) -> tuple[Any, Any]:
        state = await house.bidder_state(name)
        assert state is not None
        bid = make_bid(aid, name, (1, 2), 2000.0 * (1 + improvement_bps / 1e4), 5.0, 0.0, nonce)
        return await house.commit(state, commit_body(aid, bid, keys[name]), aid, "test"), (
            state,
            bid,
        )

    # Three commits in one group-commit batch; the middle one cannot be stored.
    results = await asyncio.gather(
        commit("mm-0", 30, 10), commit("mm-1", 40, 666), commit("mm-2", 20, 11)
    )
    verdicts = [verdict for verdict, _ in results]
    assert [v.accepted for v in verdicts] == [True, False, True]
    assert verdicts[1].reason == "store_unavailable"
    # The lost commit is withdrawn: the engine forgets it and the nonce is free again.
    live = house.live[aid]
    assert set(live.auction.commitments) == {"mm-0", "mm-2"}
    assert house.nonces.last("mm-1") is None
    # So mm-1 can simply send it again (a new nonce: the store still refuses 666).
    verdict, (state_1, bid_1) = await commit("mm-1", 40, 667)
    assert verdict.accepted
    delay = (live.auction.commit_deadline - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(0.0, delay) + 0.02)
    for state, bid in [results[0][1], results[2][1], (state_1, bid_1)]:
        assert (await house.reveal(state, reveal_body(bid), aid, "test")).accepted
    record = await handle.done
    assert (record.status, record.outcome) == ("finalized", "filled")
    assert record.competition is not None
    commitments = record.competition["commitments"]
    lost = [c for c in commitments if c["nonce"] == 666]
    assert [(c["accepted"], c["reason"]) for c in lost] == [(False, "store_unavailable")]
    assert {c["bidder_id"] for c in commitments if c["accepted"]} == {"mm-0", "mm-1", "mm-2"}
    assert record.result is not None and record.result["unrevealed"] == []
    # Nobody is penalized for the venue's lost write.
    for name in keys:
        bidder = await store.bidder(name)
        assert bidder is not None and bidder.penalty.no_reveal_rate == 0.0
    await house.close()


async def test_a_deadline_the_loop_cannot_keep_is_refused_with_503() -> None:
    import time as _time
    from datetime import timedelta

    from phantom_auction.engine.admission import admission_for
    from phantom_auction.service.house import Rejected

    store = MemoryStore()
    client = await store.add_client("settlement", "a" * 64)
    house = AuctionHouse(CONFIG, store)
    await house.start()
    loop = asyncio.get_running_loop()
    first = await house.open_auction(
        client,
        OpenAuctionBody(
            token_in=1,
            token_out=2,
            amount=10.0,
            baseline_price=2000.0,
            deadline=datetime.now(UTC) + timedelta(seconds=3),
        ),
    )
    assert first.created
    # The loop stalls for 80 ms (a blocking call somewhere): the probe measures it.
    loop.call_soon(_time.sleep, 0.08)
    await asyncio.sleep(0.1)
    assert admission_for(loop).lag_s > 0.04
    with pytest.raises(Rejected) as refused:
        await house.open_auction(
            client,
            OpenAuctionBody(
                token_in=1,
                token_out=2,
                amount=10.0,
                baseline_price=2000.0,
                # Closer than the configured duration: the windows end 3 ms before it.
                deadline=datetime.now(UTC) + timedelta(milliseconds=60),
            ),
        )
    assert (refused.value.status_code, refused.value.reason) == (503, "overloaded")
    assert int(refused.value.headers["Retry-After"]) >= 1
    # An auction without a deadline promises none: it still opens.
    plain = await house.open_auction(
        client,
        OpenAuctionBody(
            token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=200
        ),
    )
    assert plain.created
    await house.close()


class HeldStore(MemoryStore):
    """Holds every batch with one nonce's commit until ``release`` is set, then fails it
    (a database locked past its busy timeout, say); ``fail_reveal`` fails its reveal too."""

    def __init__(self, nonce: int, fail_reveal: bool) -> None:
        super().__init__()
        self.nonce, self.fail_reveal = nonce, fail_reveal
        self.release = asyncio.Event()

    async def apply(self, writes: Sequence[Write]) -> None:
        for write in writes:
            if isinstance(write, BidEvent) and write.nonce == self.nonce:
                if write.kind == "commit":
                    await self.release.wait()
                    raise OSError("database is locked")
                if self.fail_reveal:
                    raise OSError("database is locked")
        await super().apply(writes)


def _one_bid(aid: str, private: str, nonce: int = 5) -> tuple[CommitBody, RevealBody]:
    """mm-0's signed commit of a 30 bps bid in ``aid`` and its reveal."""
    bid = make_bid(aid, "mm-0", (1, 2), 2000.0 * 1.003, 5.0, 0.0, nonce)
    return commit_body(aid, bid, private), reveal_body(bid)


async def _until_reveal_window(live: Any) -> None:
    delay = (live.auction.commit_deadline - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(0.0, delay) + 0.02)


@pytest.mark.parametrize("fail_reveal", [True, False], ids=["reveal-lost", "reveal-stored"])
async def test_a_reveal_taken_with_its_lost_commit_is_still_answered(fail_reveal: bool) -> None:
    """The audit's finding: a commit whose write failed after its reveal was taken
    withdrew the reveal with it, and the reveal's own callback then raised, so the reveal
    was never answered (its HTTP request hung). Both messages are answered
    ``store_unavailable``, the auction finishes without the bid and no one is penalized."""
    store = HeldStore(nonce=5, fail_reveal=fail_reveal)
    client = await store.add_client("settlement", "a" * 64)
    private, public = generate_keypair()
    await store.add_bidder("mm-0", bytes.fromhex(public))
    house, handle, aid = await _house_running_one_auction(store, client, 600)
    state = await house.bidder_state("mm-0")
    assert state is not None
    commit, reveal = _one_bid(aid, private)
    committed = house.commit(state, commit, aid, "test")
    live = house.live[aid]
    await _until_reveal_window(live)
    revealed = house.reveal(state, reveal, aid, "test")
    await asyncio.sleep(0.02)
    assert "mm-0" in live.auction.reveals  # taken, waiting for its commit's write
    store.release.set()
    commit_verdict = await asyncio.wait_for(committed, 5)
    reveal_verdict = await asyncio.wait_for(revealed, 5)
    assert (commit_verdict.accepted, commit_verdict.reason) == (False, "store_unavailable")
    assert (reveal_verdict.accepted, reveal_verdict.reason) == (False, "store_unavailable")
    record = await asyncio.wait_for(handle.done, 5)
    assert record.status == "finalized" and record.outcome != "filled"
    assert record.competition is not None
    assert [c["accepted"] for c in record.competition["commitments"]] == [False]
    assert record.result is not None and record.result["unrevealed"] == []
    bidder = await store.bidder("mm-0")
    assert bidder is not None and bidder.penalty.no_reveal_rate == 0.0
    await house.close()


@pytest.mark.parametrize("send_again", [True, False], ids=["sent-again", "not-sent-again"])
async def test_an_early_finish_undone_by_a_lost_reveal_still_ends_the_auction(
    send_again: bool,
) -> None:
    """The audit's finding: the last reveal, whose write then failed, started the early
    finish (every bid revealed); the withdrawn reveal left the auction unrevealed, so
    finalizing raised and the auction never ended (its result request waited forever).
    Now it runs on: a reveal sent again finishes it, else its reveal deadline does."""
    store = FailsOneReveal()
    client = await store.add_client("settlement", "a" * 64)
    private, public = generate_keypair()
    await store.add_bidder("mm-0", bytes.fromhex(public))
    early = load_config(
        env={"AUCTION_SERVICE_FINISH_EARLY": "true", "AUCTION_PHANTOM_AUCTION_MECHANISM": "uniform"}
    )
    house, handle, aid = await _house_running_one_auction(store, client, 1500, early)
    state = await house.bidder_state("mm-0")
    assert state is not None
    commit, reveal = _one_bid(aid, private)
    assert (await house.commit(state, commit, aid, "test")).accepted
    live = house.live[aid]
    await _until_reveal_window(live)
    lost = await house.reveal(state, reveal, aid, "test")
    assert (lost.accepted, lost.reason) == (False, "store_unavailable")
    await asyncio.sleep(0.05)
    assert not handle.done.done() and aid in house.live  # runs on, not stuck finishing
    if send_again:
        assert (await house.reveal(state, reveal, aid, "test")).accepted
    record = await asyncio.wait_for(handle.done, 5)
    assert record.status == "finalized"
    assert record.result is not None
    if send_again:
        assert record.outcome == "filled" and record.result["unrevealed"] == []
    else:
        assert record.result["unrevealed"] == ["mm-0"]
        finalized = datetime.fromisoformat(record.result["finalized_at"])
        assert finalized >= live.auction.reveal_deadline
    await house.close()


class EndsFailFirst(MemoryStore):
    """A store down for an auction's first ``failures`` end writes (an outage)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def apply(self, writes: Sequence[Write]) -> None:
        if self.failures and any(isinstance(w, AuctionFinished) for w in writes):
            self.failures -= 1
            raise OSError("connection refused")
        await super().apply(writes)


async def test_an_end_the_store_refuses_is_written_when_it_is_back() -> None:
    """The operator audit: an auction whose result could not be stored (PostgreSQL down
    for 7 s) stayed open for good: GET said open, the competition 409, the bidders never
    told. The end is now tried again until the store takes it; the waiting settlement
    request is answered store_unavailable at the first failure."""
    from phantom_auction.service.house import Rejected

    store = EndsFailFirst(failures=2)
    client = await store.add_client("settlement", "a" * 64)
    house, handle, aid = await _house_running_one_auction(store, client, 300)
    try:
        with pytest.raises(Rejected) as first:
            await handle.done
        assert first.value.reason == "store_unavailable"
        for _ in range(100):  # retried after 0.5 s, then 1 s
            record = await store.auction(aid)
            if record is not None and record.status != "open":
                break
            await asyncio.sleep(0.05)
        assert record is not None and record.status in ("finalized", "aborted")
        assert store.failures == 0 and aid not in house.live
        assert house.closed[aid] == record.status
    finally:
        await house.close()


@pytest.mark.parametrize("ranking_too", [False, True])
async def test_an_auction_clearing_cannot_finish_is_aborted_not_left_open(
    ranking_too: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The fuzzing audit: a finalize that raised (a bid the rule book accepted and
    clearing refused) left the auction in the house for good: never stored as ended, the
    settlement request never answered. It is now aborted: the user gets the baseline;
    also when the fault is in the bid table, which the abort ranks too."""
    from phantom_auction.engine import auction as engine_auction
    from phantom_auction.service.house import auction_house

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("valuation[1]=-1.4e-12: must be finite and >= 0")

    monkeypatch.setattr(auction_house, "finalize_auction", broken)
    if ranking_too:
        monkeypatch.setattr(engine_auction, "bid_table", broken)
    store = MemoryStore()
    client = await store.add_client("settlement", "a" * 64)
    house, handle, aid = await _house_running_one_auction(store, client, 300)
    try:
        record = await asyncio.wait_for(handle.done, 5)
        assert (record.status, record.outcome) == ("aborted", "aborted")
        assert record.result is not None and record.result["fills"][0]["bidder_id"] is None
        assert f"auction {aid} could not be cleared" in caplog.text
        assert "valuation[1]" in caplog.text  # the traceback, for the operator
        stored = await store.auction(aid)
        assert stored is not None and stored.status == "aborted"
        assert aid not in house.live
    finally:
        await house.close()
