"""The explorer clears every auction again (verify.js's ``reclearChecks``): run under Node
on competition documents the real engine produced in-process (every mechanism, both
phantom policies, fee weights 0 and > 0, ties, partial fills, phantoms above and below
the real bids, no bids, too few participants, aborted and pre-rules documents), it must
agree with each to the bit, and flag a document changed by one ulp."""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from phantom_auction.engine import Auction, make_bid
from phantom_auction.engine.bids import SettlementRequest
from phantom_auction.engine.clock import to_us
from phantom_auction.mechanism_names import MECHANISMS
from phantom_auction.mechanisms.clearing import clear_lists
from phantom_auction.mechanisms.rules import AuctionRules
from phantom_auction.service.house.documents import competition_document
from phantom_auction.service.store import AuctionRecord, BidEvent

from ..service.service_harness import bid_event
from .explorer_harness import RECLEAR_CHECKS as CHECKS

HERE = Path(__file__).resolve().parent
VERIFY_JS = HERE.parents[1] / "src/phantom_auction/service/explorer_static/verify.js"
RUNNER = HERE / "reclear_runner.mjs"
N_AUCTIONS = 480
PAIR = (1, 2)
START = datetime(2026, 1, 1, tzinfo=UTC)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    return node


def _run(tmp_path: Path, inputs: list[dict[str, Any]], *mode: str) -> list[Any]:
    path = tmp_path / "inputs.json"
    path.write_text(json.dumps(inputs, allow_nan=False), "utf-8")
    done = subprocess.run(
        [_node(), str(RUNNER), str(VERIFY_JS), str(path), *mode],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Every number Node writes is a double: JSON.stringify writes one below 1e21 without
    # an exponent, which json would read as an int (not equal to the double).
    out: list[Any] = json.loads(done.stdout, parse_int=float)
    assert len(out) == len(inputs)
    return out


def run_checks(tmp_path: Path, documents: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """verify.js's reclearChecks of each document, under Node."""
    return _run(tmp_path, documents)


# ---------------------------------------------------------------- documents from the engine


def _rules(rng: random.Random, k: int) -> AuctionRules:
    """Every mechanism x policy x (fee weight 0, > 0) in turn; the rest drawn."""
    min_bps = rng.choice([0.0, 0.0, 5.0, 10.0, rng.uniform(0.0, 20.0)])
    return AuctionRules(
        mechanism=MECHANISMS[k % 4],
        min_bps=min_bps,
        max_bps=min_bps + rng.choice([30.0, 40.0, rng.uniform(0.5, 120.0)]),
        volume_multiplier=rng.choice([1.0, 1.0, 1.5, 0.5]),
        fee_ratio=rng.choice([0.0, 0.01, 0.05]),
        price_weight=rng.choice([1.0, 1.0, 1.0, 0.5, 2.0, rng.uniform(0.1, 3.0)]),
        fee_weight=0.0 if (k // 8) % 2 == 0 else rng.choice([0.5, 1.0, rng.uniform(0.01, 5.0)]),
        min_participants=rng.choice([0, 1, 2, 2, 2, 3, 6]),
        duration_ms=100.0,
        reveal_delay_ms=20.0,
        phantom_policy=("reserve", "floor")[(k // 4) % 2],
    )


def _phantoms(
    rng: random.Random, rules: AuctionRules, levels: list[float], baseline: float, amount: float
) -> tuple[tuple[int, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Phantom columns: at the real bids' levels (ties), above them all, below the reserve."""
    n = rng.choice([0, 0, 1, 2, 3, 5, 8])
    slots = tuple(sorted(rng.sample(range(12), n)))
    above = rules.max_bps + rng.uniform(0.0, 30.0)
    below = rng.uniform(0.0, rules.min_bps)
    bps = [rng.choice([*levels, above, below, rng.uniform(0.0, above)]) for _ in slots]
    volumes = [amount * rng.choice([0.05, 0.5, 1.0, rng.uniform(0.01, 1.0)]) for _ in slots]
    fees = [v * 0.01 * rng.random() for v in volumes]
    prices = [baseline * (1.0 + b / 1e4) for b in bps]
    return slots, tuple(prices), tuple(volumes), tuple(fees)


def _engine_document(rng: random.Random, k: int) -> dict[str, Any]:
    """One auction run through the engine (commits, reveals, clearing) on a synthetic
    clock, published as the service publishes it (competition_document)."""
    rules = _rules(rng, k)
    baseline = rng.choice([2000.0, 1.0, 0.00123, rng.uniform(0.1, 5000.0)])
    amount = rng.choice([10.0, 1.0, 7.25, rng.uniform(0.01, 1000.0)])
    # A few improvement levels shared by several bids: ties, real and phantom.
    levels = [
        rules.min_bps,
        rules.max_bps,
        *(rng.uniform(rules.min_bps, rules.max_bps) for _ in range(3)),
    ]
    aid = f"reclear-{k}"
    opened = START + timedelta(seconds=k)
    auction = Auction(
        SettlementRequest(*PAIR, amount),
        baseline,
        amount,
        opened + timedelta(milliseconds=100),
        auction_id=aid,
        now=opened,
        rule_book=rules,
        phantom_seed=bytes(rng.getrandbits(8) for _ in range(32)),
        phantom_columns=_phantoms(rng, rules, levels, baseline, amount),
    )
    events: list[BidEvent] = []
    bids = []
    cap = amount * rules.volume_multiplier
    for i in range(rng.choice([0, 1, 1, 2, 3, 4, 6, 9, 14])):
        bps = rng.choice([*levels, rng.uniform(rules.min_bps, rules.max_bps)])
        if rng.random() < 0.05:
            bps = rules.max_bps + 5.0  # refused at reveal: improvement_out_of_bounds
        # Small volumes too: VCG's displaced units then span several bids of the tail.
        fraction = rng.choice([0.02, 0.05, 0.1, 0.3, 0.5, 1.0, rng.uniform(0.01, 1.0)])
        volume = fraction * cap
        fee = volume * rules.fee_ratio * rng.choice([0.0, 1.0, rng.random()])
        price = baseline * (1.0 + bps / 1e4)
        if rng.random() < 0.5:  # a price as a person writes it (may round out of bounds)
            price = float(f"{price:.{rng.choice([6, 9, 12])}g}")
        bids.append(make_bid(aid, f"mm-{i}", PAIR, price, volume, fee, 100 + i, version=2))
    at = opened + timedelta(milliseconds=1)
    rng.shuffle(bids)  # commit order, the tie order, is not the bidders' numbering
    for bid in bids:
        accepted = auction.commit(bid, at)
        events.append(bid_event(auction, bid, "commit", accepted, at, "00" * 64))
        at += timedelta(microseconds=10)
    if bids and rng.random() < 0.1:  # a second commit: refused (duplicate_commit)
        again = bids[0]
        events.append(bid_event(auction, again, "commit", auction.commit(again, at), at, "00" * 64))
    reveal_order = list(bids)
    rng.shuffle(reveal_order)  # reveals arrive in any order
    at = auction.commit_deadline
    aborted = rng.random() < 0.02
    for bid in reveal_order:
        if aborted or rng.random() < 0.1:
            continue  # unrevealed
        events.append(bid_event(auction, bid, "reveal", auction.reveal(bid, at), at))
        at += timedelta(microseconds=10)
    result = auction.abort("test", at) if aborted else auction.finalize(auction.reveal_deadline)
    record = AuctionRecord(
        aid, 1, None, "", *PAIR, amount, baseline, to_us(opened),
        to_us(auction.commit_deadline), to_us(auction.reveal_deadline),
        result.phantom_commitment.hex(), result.phantom_seed.hex(), {},
    )  # fmt: skip
    status = "aborted" if aborted else "finalized"
    # A few documents as stored before the rules were published (rules: null).
    published = None if rng.random() < 0.02 else auction.rule_book
    return competition_document(record, events, result, status, None, published)


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    rng = random.Random(20)
    # Through JSON, as the service serves them.
    return [json.loads(json.dumps(_engine_document(rng, k))) for k in range(N_AUCTIONS)]


def _partial(doc: dict[str, Any]) -> bool:
    """Whether some real bid filled less than its volume."""
    return any(0.0 < r["filled"] < r["volume"] for r in doc["ranking"] if not r["is_phantom"])


def _tied(doc: dict[str, Any]) -> bool:
    """Whether two bids (one of them real) have the same score."""
    scores = Counter(r["score"] for r in doc["ranking"])
    return any(scores[r["score"]] > 1 for r in doc["ranking"] if not r["is_phantom"])


def _phantom_above(doc: dict[str, Any]) -> bool:
    ranking = doc["ranking"]
    return bool(ranking) and ranking[0]["is_phantom"] and any(not r["is_phantom"] for r in ranking)


# ---------------------------------------------------------------- the tests


def test_the_javascript_clearing_agrees_with_the_engine_on_every_auction(
    tmp_path: Path, documents: list[dict[str, Any]]
) -> None:
    # The documents cover what the re-clearing must get right.
    cleared = [d for d in documents if d["status"] == "finalized" and d["rules"] is not None]
    kinds = Counter(
        (d["mechanism"], d["phantom_policy"], d["rules"]["fee_weight"] > 0) for d in cleared
    )
    assert len(kinds) == 16 and min(kinds.values()) >= 10, kinds
    outcomes = Counter(d["outcome"] for d in cleared)
    for outcome in ("filled", "phantom_won", "no_bids", "insufficient_participants"):
        assert outcomes[outcome] >= 5, outcomes
    assert sum(map(_partial, cleared)) >= 30
    assert sum(map(_tied, cleared)) >= 30
    assert sum(map(_phantom_above, cleared)) >= 30
    assert sum(1 for d in cleared if d["price"] != d["baseline_price"]) >= 100
    assert sum(1 for d in cleared if d["rules"]["price_weight"] != 1.0) >= 50
    assert any(d["status"] == "aborted" for d in documents)
    assert any(d["rules"] is None for d in documents)

    results = run_checks(tmp_path, documents)
    disagreements = []
    for doc, items in zip(documents, results, strict=True):
        if doc["status"] == "aborted":
            assert [(i["ok"], i["detail"].split(":")[0]) for i in items] == [
                (None, "not re-cleared")
            ]
        elif doc["rules"] is None:
            assert items == [
                {"label": "auction re-cleared", "ok": None,
                 "detail": "not possible: this document predates the published rules"}
            ]  # fmt: skip
        else:
            assert [i["label"] for i in items] == CHECKS
            disagreements += [(doc["auction_id"], i) for i in items if i["ok"] is not True]
    assert disagreements == []


def _ulp_up(x: float) -> float:
    return math.nextafter(x, math.inf)


def _fill_price_one_ulp(doc: dict[str, Any]) -> None:
    fill = next(f for f in doc["fills"] if f["bidder_id"] is not None)
    entry = next(r for r in doc["ranking"] if r["bidder_id"] == fill["bidder_id"])
    # Both places it is published, consistently: only re-clearing can tell.
    fill["price"] = entry["fill_price"] = math.nextafter(fill["price"], 0.0)


def _score_one_ulp(doc: dict[str, Any]) -> None:
    entry = next(r for r in doc["ranking"] if not r["is_phantom"])
    entry["score"] = _ulp_up(entry["score"])


def _allocation(doc: dict[str, Any]) -> None:
    entry = next(r for r in doc["ranking"] if r["filled"] > 0)
    entry["allocated"] = entry["filled"] = entry["allocated"] * 0.5


def _cfmm_remainder(doc: dict[str, Any]) -> None:
    doc["fills"].append({"bidder_id": None, "volume": 1e-9, "price": doc["baseline_price"]})


def _user_price_one_ulp(doc: dict[str, Any]) -> None:
    doc["price"] = _ulp_up(doc["price"])


def _outcome(doc: dict[str, Any]) -> None:
    doc["outcome"] = "phantom_won"


def _ranking_swapped(doc: dict[str, Any]) -> None:
    ranking = doc["ranking"]
    ranking[0], ranking[1] = ranking[1], ranking[0]
    ranking[0]["rank"], ranking[1]["rank"] = 1, 2


#: Each tampering, and the one check it must fail (the others stay ✓).
TAMPERINGS = {
    "a fill price one ulp lower": (_fill_price_one_ulp, "fill prices re-cleared"),
    "a score one ulp higher": (_score_one_ulp, "ranking order and scores re-cleared"),
    "an allocation halved": (_allocation, "allocations re-cleared"),
    "a CFMM fill added": (_cfmm_remainder, "CFMM remainder re-cleared"),
    "the user's price one ulp higher": (
        _user_price_one_ulp,
        "user's price and improvement re-cleared",
    ),
    "the outcome": (_outcome, "outcome re-cleared"),
}


def test_a_document_changed_by_one_ulp_fails_its_check(
    tmp_path: Path, documents: list[dict[str, Any]]
) -> None:
    # Filled auctions whose winner pays less than its own price (the changed fill price
    # is then still a price it could have paid) and whose CFMM takes a part.
    honest = [
        d for d in documents
        if d["status"] == "finalized" and d["rules"] is not None and d["outcome"] == "filled"
        and d["fills"][-1]["bidder_id"] is None and len(d["ranking"]) > 1
        and any(r["fill_price"] is not None and r["fill_price"] < r["improved_price"]
                for r in d["ranking"])
    ][:8]  # fmt: skip
    assert len(honest) == 8
    tampered, expected = [], []
    for doc in honest:
        for name, (tamper, failing) in TAMPERINGS.items():
            changed = copy.deepcopy(doc)
            tamper(changed)
            assert changed != doc, name
            tampered.append(changed)
            expected.append((doc["auction_id"], name, failing))
    results = run_checks(tmp_path, honest + tampered)
    for items in results[: len(honest)]:
        assert all(i["ok"] is True for i in items), items
    for (aid, name, failing), items in zip(expected, results[len(honest) :], strict=True):
        failed = [i["label"] for i in items if i["ok"] is False]
        assert failed == [failing], (aid, name, items)
    # The ranking's order itself (two bids swapped, ranks renumbered) is checked too.
    swapped = copy.deepcopy(honest[0])
    _ranking_swapped(swapped)
    (items,) = run_checks(tmp_path, [swapped])
    assert "ranking order and scores re-cleared" in [i["label"] for i in items if i["ok"] is False]


def _book(rng: random.Random, k: int) -> dict[str, Any]:
    """A book of values many orders of magnitude apart (where the order of the
    operations shows in the last bits), with ties, tiny and huge quantities."""
    n = rng.choice([1, 2, 3, 5, 8, 13, 30])
    spread = rng.choice([1, 3, 8, 200])
    values = [10.0 ** rng.uniform(-spread, spread) for _ in range(n)]
    for i in range(1, n):
        if rng.random() < 0.25:
            values[i] = values[rng.randrange(i)]  # a tie
    quantities = [10.0 ** rng.uniform(-rng.choice([1, 4, 12]), 3) for _ in range(n)]
    total = math.fsum(quantities)
    supply = rng.choice([total, total * rng.uniform(0.05, 1.0), quantities[0], total * 3])
    reserve = rng.choice([0.0, min(values), rng.choice(values) * rng.uniform(0.5, 1.0)])
    return {"mechanism": MECHANISMS[k % 4], "values": values, "quantities": quantities,
            "supply": supply, "reserve": reserve}  # fmt: skip


def test_each_mechanisms_allocation_and_payments_agree_with_clear_lists_bit_for_bit(
    tmp_path: Path,
) -> None:
    """verify.js's clearScores against mechanisms.clearing.clear_lists (the engine's
    clearing) on books far wider than an auction's scores."""
    rng = random.Random(7)
    books = [_book(rng, k) for k in range(4000)]
    got = _run(tmp_path, books, "clear")
    wrong = []
    for book, js in zip(books, got, strict=True):
        _, allocated, payment = clear_lists(
            book["values"], book["quantities"], supply=book["supply"],
            reserve=book["reserve"], mechanism=book["mechanism"],
        )  # fmt: skip
        if js != {"allocated": allocated, "payment": payment}:
            wrong.append((book, js, allocated, payment))
    assert wrong == []
