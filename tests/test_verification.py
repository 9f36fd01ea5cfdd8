"""phantom_auction.verification: a competition document checked in Python, as the explorer
checks it in the browser (verify.js's ``verifyCompetition``).

Documents come from real engine auctions (commits signed with real Ed25519 keys,
phantoms drawn from the auction's seed), published as the service publishes them
(``competition_document``, through JSON). Each forgery is made consistent (the outputs
re-cleared by the engine from the forged inputs), so that exactly the item that guards
it fails.
"""

from __future__ import annotations

import copy
import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from phantom_auction import CompetitionCheck, InvalidBidParameters, verify_competition
from phantom_auction.cli import app
from phantom_auction.engine import Auction, PhantomModel, draw_phantom_bids, make_bid
from phantom_auction.engine.bids import SettlementRequest
from phantom_auction.engine.clock import to_us
from phantom_auction.engine.phantoms import phantom_commitment
from phantom_auction.mechanism_names import MECHANISMS
from phantom_auction.mechanisms.rules import AuctionRules
from phantom_auction.verification import Check, reclear_competition

pytest.importorskip("phantom_auction.service.house.documents")
pytest.importorskip("cryptography")

from phantom_auction.service.house.documents import (
    competition_document,
    terms_document,
)
from phantom_auction.service.store import AuctionRecord
from phantom_auction.wire import (
    commit_signing_bytes,
    generate_keypair,
    load_private_key,
    sign,
)

from .service.service_harness import bid_event

PAIR = (1, 2)
START = datetime(2026, 1, 1, tzinfo=UTC)
MODEL = PhantomModel(max_phantom_bidders=8, bid_probability=0.6, mean_bps=25.0, sd_bps=10.0)
KEYS = {f"mm-{i}": generate_keypair() for i in range(6)}


def _signature(aid: str, bid: Any) -> str:
    """``bid``'s bidder's Ed25519 signature of its commit (as the service checks it)."""
    signed = commit_signing_bytes(aid, bid.bidder_id, bid.commitment_hash.hex(), bid.nonce)
    return sign(load_private_key(KEYS[bid.bidder_id][0]), signed)


def engine_document(
    k: int, mechanism: str, policy: str, *, fee_weight: float = 0.0, bids: int = 4
) -> tuple[dict[str, Any], Auction]:
    """One auction through the engine (phantoms drawn from its seed), published as the
    service publishes it, through JSON."""
    rng = random.Random(k)
    rules = AuctionRules(
        mechanism=mechanism, min_bps=10.0, max_bps=50.0, volume_multiplier=1.0,
        fee_ratio=0.01, fee_weight=fee_weight, min_participants=2,
        duration_ms=100.0, reveal_delay_ms=20.0, phantom_policy=policy,
    )  # fmt: skip
    baseline, amount = 2000.0, 10.0
    aid = f"verify-{k}"
    opened = START + timedelta(seconds=k)
    auction = Auction(
        SettlementRequest(*PAIR, amount), baseline, amount, opened + timedelta(milliseconds=100),
        auction_id=aid, now=opened, rule_book=rules, phantom_model=MODEL,
        phantom_seed=bytes(rng.getrandbits(8) for _ in range(32)),
    )  # fmt: skip
    made = [
        make_bid(aid, f"mm-{i}", PAIR, baseline * (1.0 + rng.uniform(12.0, 48.0) / 1e4),
                 amount * rng.choice([0.2, 0.5, 1.0]), rng.uniform(0.0, 0.05), 100 + i)
        for i in range(bids)
    ]  # fmt: skip
    events = []
    at = opened + timedelta(milliseconds=1)
    for bid in made:
        accepted = auction.commit(bid, at)
        events.append(bid_event(auction, bid, "commit", accepted, at, _signature(aid, bid)))
        at += timedelta(microseconds=10)
    at = auction.commit_deadline
    for bid in made[:-1] if bids > 2 else made:  # the last one unrevealed
        events.append(bid_event(auction, bid, "reveal", auction.reveal(bid, at), at))
        at += timedelta(microseconds=10)
    result = auction.finalize(auction.reveal_deadline)
    record = AuctionRecord(
        aid, 1, None, "", *PAIR, amount, baseline, to_us(opened),
        to_us(auction.commit_deadline), to_us(auction.reveal_deadline),
        result.phantom_commitment.hex(), result.phantom_seed.hex(), {},
    )  # fmt: skip
    keys = {b: pub for b, (_, pub) in KEYS.items()}
    doc = competition_document(record, events, result, "finalized", keys, auction.rule_book)
    return json.loads(json.dumps(doc)), auction


CASES = [
    (mechanism, policy, fee_weight)
    for mechanism in MECHANISMS
    for policy in ("reserve", "floor")
    for fee_weight in (0.0, 0.5)
]


@pytest.fixture(scope="module")
def documents() -> list[tuple[dict[str, Any], Auction]]:
    return [engine_document(k, m, p, fee_weight=w) for k, (m, p, w) in enumerate(CASES)]


def _failed(check: CompetitionCheck) -> list[str]:
    return [c.label for c in check.failures]


# ---------------------------------------------------------------- honest documents


def test_an_honest_document_of_every_mechanism_and_policy_verifies(
    documents: list[tuple[dict[str, Any], Auction]],
) -> None:
    outcomes = set()
    for doc, auction in documents:
        kept = doc["phantom_commitment"]
        check = verify_competition(
            doc, phantom_commitment_at_open=kept, terms_at_open=terms_document(auction)
        )
        assert check.ok, [str(c) for c in check.failures]
        assert check.unchecked == (), [str(c) for c in check.unchecked]
        groups = {c.group for c in check.checks}
        assert groups == {"document", "signatures", "commitments", "ranking", "phantoms",
                          "clearing"}  # fmt: skip
        assert sum(c.group == "signatures" for c in check.checks) == len(doc["commitments"])
        assert doc["phantom_bids"], "the model draws phantoms"
        outcomes.add(doc["outcome"])
        assert str(check).startswith(f"auction {doc['auction_id']}: verified (")
    assert "filled" in outcomes


def test_without_what_was_kept_at_open_those_items_are_not_checked(
    documents: list[tuple[dict[str, Any], Auction]],
) -> None:
    doc, _ = documents[0]
    check = verify_competition(doc)
    assert check.ok
    assert [c.label for c in check.unchecked] == [
        "terms are the ones announced at open",
        "commitment is the one published at open",
    ]
    assert all(c.detail.startswith("not checked:") for c in check.unchecked)
    assert doc["phantom_commitment"] in check.unchecked[1].detail  # to compare by hand


def test_the_reclearing_is_the_engines_result_bit_for_bit(
    documents: list[tuple[dict[str, Any], Auction]],
) -> None:
    for doc, _ in documents:
        want = reclear_competition(doc)
        assert {k: doc[k] for k in want} == want


# ---------------------------------------------------------------- forgeries


def _recleared(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with its outputs made consistent with its (forged) inputs by the engine."""
    doc.update(reclear_competition(doc))
    return doc


def _filled(documents: list[tuple[dict[str, Any], Auction]]) -> dict[str, Any]:
    return next(
        d for d, _ in documents if d["outcome"] == "filled" and d["phantom_bids"]
        and d["fills"][-1]["bidder_id"] is None
    )  # fmt: skip


def _forge_reveal_price(doc: dict[str, Any]) -> str:
    reveal = next(r for r in doc["reveals"] if r["accepted"])
    reveal["improved_price"] = math.nextafter(reveal["improved_price"], math.inf)
    for entry in doc["ranking"]:
        if entry["bidder_id"] == reveal["bidder_id"]:
            entry["improved_price"] = reveal["improved_price"]
    _recleared(doc)
    return f"{reveal['bidder_id']}: reveal hashes to its commitment"


def _forge_phantom_volume(doc: dict[str, Any]) -> str:
    phantom = doc["phantom_bids"][0]
    phantom["volume"] *= 0.5
    for entry in doc["ranking"]:
        if entry["bidder_id"] == phantom["bidder_id"]:
            entry["volume"] = phantom["volume"]
    _recleared(doc)
    return f"phantom-{phantom['slot']} redrawn from the seed"


def _forge_price(doc: dict[str, Any]) -> str:
    doc["price"] = math.nextafter(doc["price"], math.inf)
    return "user's price and improvement re-cleared"


def _forge_seed(doc: dict[str, Any]) -> str:
    """Another seed with its own commitment and the phantoms drawn from it, re-cleared:
    only the commitment kept at open tells."""
    seed = bytes(range(32))
    doc["phantom_seed"] = seed.hex()
    doc["phantom_commitment"] = phantom_commitment(seed).hex()
    model = PhantomModel.from_document(doc["phantom_model"])
    drawn = draw_phantom_bids(model, seed, doc["baseline_price"], doc["amount"])
    doc["phantom_bids"] = [
        {"slot": p.slot, "bidder_id": p.bidder_id, "improved_price": p.improved_price,
         "volume": p.volume, "priority_fee": p.priority_fee}
        for p in drawn
    ]  # fmt: skip
    _recleared(doc)
    return "commitment is the one published at open"


def _forge_signature(doc: dict[str, Any]) -> str:
    commit = next(c for c in doc["commitments"] if c["accepted"])
    flipped = int(commit["signature"][:2], 16) ^ 0x01
    commit["signature"] = f"{flipped:02x}" + commit["signature"][2:]
    return f"{commit['bidder_id']}: commit signature verifies"


FORGERIES = {
    "a reveal's price one ulp off": _forge_reveal_price,
    "a phantom's volume": _forge_phantom_volume,
    "the published price one ulp off": _forge_price,
    "the seed swapped with its commitment": _forge_seed,
    "a signature byte": _forge_signature,
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_each_forgery_fails_exactly_its_own_item(
    name: str, documents: list[tuple[dict[str, Any], Auction]]
) -> None:
    honest = _filled(documents)
    kept = honest["phantom_commitment"]
    forged = copy.deepcopy(honest)
    label = FORGERIES[name](forged)
    assert forged != honest
    check = verify_competition(forged, phantom_commitment_at_open=kept)
    assert _failed(check) == [label], [str(c) for c in check.failures]
    assert not check.ok
    assert "FAILED" in check.summary()


def test_an_inconsistent_forgery_fails_the_clearing_too(
    documents: list[tuple[dict[str, Any], Auction]],
) -> None:
    """A reveal's price changed alone: its hash, its ranking entry and the clearing."""
    forged = copy.deepcopy(_filled(documents))
    reveal = next(r for r in forged["reveals"] if r["accepted"])
    reveal["improved_price"] = math.nextafter(reveal["improved_price"], math.inf)
    failed = _failed(verify_competition(forged))
    bidder = reveal["bidder_id"]
    assert failed[:2] == [f"{bidder}: reveal hashes to its commitment",
                          f"{bidder}: ranked as revealed"]  # fmt: skip
    assert "ranking order and scores re-cleared" in failed


def test_terms_other_than_those_announced_at_open_fail(
    documents: list[tuple[dict[str, Any], Auction]],
) -> None:
    doc, auction = documents[0]
    terms = terms_document(auction)
    changed = copy.deepcopy(terms)
    changed["rules"]["min_participants"] = 1
    check = verify_competition(doc, terms_at_open=changed)
    assert _failed(check) == ["terms are the ones announced at open"]
    # The JSON text of the terms, ints or floats alike, is the same promise.
    assert verify_competition(doc, terms_at_open=json.dumps(terms)).ok


def test_without_the_signature_extra_the_signatures_are_not_checked(
    monkeypatch: pytest.MonkeyPatch, documents: list[tuple[dict[str, Any], Auction]]
) -> None:
    from phantom_auction import verification

    monkeypatch.setattr(verification, "_signature_tools", lambda: None)
    doc, _ = documents[0]
    signatures = [c for c in verify_competition(doc).checks if c.group == "signatures"]
    assert signatures and all(c.ok is None for c in signatures)
    assert "pip install 'phantom-auction[service]'" in signatures[0].detail


def test_an_aborted_or_pre_rules_document_is_not_recleared(
    documents: list[tuple[dict[str, Any], Auction]],
) -> None:
    doc = copy.deepcopy(documents[0][0])
    doc["rules"] = None
    items = [c for c in verify_competition(doc).checks if c.group == "clearing"]
    assert items == [
        Check("clearing", "auction re-cleared", None,
              "not possible: this document predates the published rules")
    ]  # fmt: skip


# ---------------------------------------------------------------- malformed documents


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("amount", lambda d: d.update(amount="10")),
        ("baseline_price", lambda d: d.pop("baseline_price")),
        ("reveals[0].improved_price", lambda d: d["reveals"][0].update(improved_price=None)),
        ("ranking", lambda d: d.update(ranking={"a": 1})),
        ("phantom_model", lambda d: d["phantom_model"].pop("sd_bps")),
        ("rules.price_weight", lambda d: d["rules"].update(price_weight="1")),
    ],
)
def test_a_malformed_document_is_refused_naming_the_field(
    field: str, change: Any, documents: list[tuple[dict[str, Any], Auction]]
) -> None:
    doc = copy.deepcopy(documents[0][0])
    change(doc)
    with pytest.raises(InvalidBidParameters) as raised:
        verify_competition(doc)
    assert raised.value.field == field
    with pytest.raises(InvalidBidParameters, match="document"):
        verify_competition([])  # type: ignore[arg-type]
    with pytest.raises(InvalidBidParameters, match="phantom_commitment_at_open"):
        verify_competition(documents[0][0], phantom_commitment_at_open="xyz")


# ---------------------------------------------------------------- the command line


def test_the_cli_verifies_a_file_and_exits_by_verdict(
    tmp_path: Path, documents: list[tuple[dict[str, Any], Auction]]
) -> None:
    runner = CliRunner()
    honest = _filled(documents)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(honest), "utf-8")
    done = runner.invoke(app, ["verify", str(good), "--commitment", honest["phantom_commitment"]])
    assert done.exit_code == 0, done.output
    assert "verified" in done.stdout and "not checked" in done.stdout  # the terms

    forged = copy.deepcopy(honest)
    _forge_price(forged)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(forged), "utf-8")
    done = runner.invoke(app, ["verify", str(bad)])
    assert done.exit_code == 1, done.output
    assert "user's price and improvement re-cleared" in done.stdout
    assert "FAILED" in done.stdout

    done = runner.invoke(app, ["verify", str(bad), "--json"])
    assert done.exit_code == 1
    out = json.loads(done.stdout)
    assert out["ok"] is False and out["failed"] == 1
    assert [c["label"] for c in out["checks"] if c["ok"] is False] == [
        "user's price and improvement re-cleared"
    ]

    other = "ab" * 32
    done = runner.invoke(app, ["verify", str(good), "--commitment", other, "--json"])
    assert done.exit_code == 1
    assert json.loads(done.stdout)["failed"] == 1


def test_the_cli_exits_2_on_bad_input(
    tmp_path: Path, documents: list[tuple[dict[str, Any], Auction]]
) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["verify", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2
    not_json = tmp_path / "not.json"
    not_json.write_text("{", "utf-8")
    assert runner.invoke(app, ["verify", str(not_json)]).exit_code == 2
    malformed = tmp_path / "malformed.json"
    doc = copy.deepcopy(documents[0][0])
    doc["amount"] = "ten"
    malformed.write_text(json.dumps(doc), "utf-8")
    done = runner.invoke(app, ["verify", str(malformed)])
    assert done.exit_code == 2
    assert "amount" in done.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps(documents[0][0]), "utf-8")
    done = runner.invoke(app, ["verify", str(good), "--commitment", "zz"])
    assert done.exit_code == 2
    assert "--commitment" in done.stderr
    unreachable = runner.invoke(app, ["verify", "http://127.0.0.1:9/v1/auctions/x/competition"])
    assert unreachable.exit_code == 2


def test_the_clearing_agrees_on_the_explorers_varied_auctions() -> None:
    """The 480 engine auctions the explorer's re-clearing is tested on (every mechanism
    and policy, fee weights, ties, partial fills, too few participants, aborted and
    pre-rules documents): every clearing item verifies (their phantoms are synthetic
    columns, not drawn from the seed, so only the clearing group is asked)."""
    from tests.explorer.test_reclear import _engine_document

    rng = random.Random(20)
    wrong, unchecked = [], 0
    for k in range(480):
        doc = json.loads(json.dumps(_engine_document(rng, k)))
        clearing = [c for c in verify_competition(doc).checks if c.group == "clearing"]
        wrong += [(doc["auction_id"], str(c)) for c in clearing if c.ok is False]
        unchecked += any(c.ok is None for c in clearing)
    assert wrong == []
    assert 0 < unchecked < 48  # the aborted and pre-rules documents only
