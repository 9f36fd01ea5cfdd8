"""Checking a published competition document (``GET /v1/auctions/{id}/competition``).

The Python twin of the explorer's ``verify.js`` (``verifyCompetition``): every item of
docs/phantoms.md, "Verifying an auction from the public documents", checked with the
engine's own code rather than a second implementation:

- each accepted reveal hashes to its bidder's accepted commitment
  (:func:`~phantom_auction.engine.make_commitment`, version 2 or 1), and a reveal
  refused as ``commitment_mismatch`` does not;
- each accepted commit's Ed25519 signature verifies under the bidder's published key
  (``bidder_keys``; needs ``cryptography`` and ``PyNaCl``, the ``service`` extra: without
  them the item is not checked, with the install line);
- the phantom seed hashes to the phantom commitment (and to the one kept at open, if
  given), and every phantom bid is redrawn from it
  (:func:`~phantom_auction.engine.draw_phantom_bids` with
  :meth:`~phantom_auction.engine.PhantomModel.from_document`);
- the terms (phantom policy, rules, phantom model) are the ones kept at open, if given;
- the clearing done again by the engine's settlement (``engine/settlement.py``) under an
  :class:`~phantom_auction.mechanisms.rules.AuctionRules` rebuilt from the document's
  ``mechanism``, ``phantom_policy`` and ``rules``: ranking, allocations, fill prices, CFMM
  remainder, price and outcome, every double compared exactly (``==``, as verify.js's
  ``===``).

One concept past 600 lines: one published document checked item by item, as the
explorer checks it. Items carry verify.js's groups and labels. A document that cannot
be read (a field of the wrong type, a malformed phantom model) is refused with
:class:`~phantom_auction.errors.InvalidBidParameters` naming the field.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final

from .engine.bids import ImprovementBid
from .engine.commitment import make_commitment
from .engine.phantoms import PhantomModel, draw_phantom_bids
from .engine.result import RankedBid
from .engine.settlement import cfmm_remainder, settle
from .errors import InvalidBidParameters
from .mechanisms.rules import AuctionRules, improvement_bps

__all__ = ["Check", "CompetitionCheck", "reclear_competition", "verify_competition"]

#: The install line that brings the signature check (cryptography, PyNaCl).
SIGNATURE_EXTRA: Final = "pip install 'phantom-auction[service]'"
#: The terms an auction clears by beyond its mechanism, as announced at open.
TERMS: Final = ("phantom_policy", "rules", "phantom_model")
_RANKED_FIELDS: Final = tuple(f.name for f in fields(RankedBid))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Check:
    """One item: ``ok`` True (verified), False (failed) or None (not checked, ``detail``
    says why); ``group`` and ``label`` as the explorer shows them."""

    group: str
    label: str
    ok: bool | None
    detail: str

    def __str__(self) -> str:
        mark = "–" if self.ok is None else "✓" if self.ok else "✗"
        return f"{mark} [{self.group}] {self.label}: {self.detail}"


@dataclass(frozen=True, slots=True)
class CompetitionCheck:
    """Every item checked of one competition document."""

    auction_id: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """No item failed (items not checked do not fail)."""
        return not self.failures

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.ok is False)

    @property
    def unchecked(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.ok is None)

    @property
    def verified(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.ok is True)

    def summary(self) -> str:
        """One line: the verdict and the counts."""
        verdict = "verified" if self.ok else "FAILED"
        return (
            f"auction {self.auction_id}: {verdict} ({len(self.verified)} verified, "
            f"{len(self.failures)} failed, {len(self.unchecked)} not checked)"
        )

    def __str__(self) -> str:
        return self.summary()

    def to_jsonable(self) -> dict[str, Any]:
        """The items as JSON (what ``phantom-auction verify --json`` prints)."""
        return {
            "auction_id": self.auction_id,
            "ok": self.ok,
            "verified": len(self.verified),
            "failed": len(self.failures),
            "unchecked": len(self.unchecked),
            "checks": [
                {"group": c.group, "label": c.label, "ok": c.ok, "detail": c.detail}
                for c in self.checks
            ],
        }


# ---------------------------------------------------------------- the document's shape


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_text(x: object) -> bool:
    return isinstance(x, str)


def _is_pair(x: object) -> bool:
    return isinstance(x, list) and len(x) == 2 and all(map(_is_int, x))


_Rule = tuple[Callable[[object], bool], str]
_NUMBER: Final[_Rule] = (_is_number, "must be a finite number")
_TEXT: Final[_Rule] = (_is_text, "must be a string")
_INT: Final[_Rule] = (_is_int, "must be an integer")
_BOOL: Final[_Rule] = (lambda x: isinstance(x, bool), "must be true or false")
_OPT_NUMBER: Final[_Rule] = (lambda x: x is None or _is_number(x), "must be a number or null")
_OPT_TEXT: Final[_Rule] = (lambda x: x is None or _is_text(x), "must be a string or null")
#: The fields each entry of a list must have, and what they must be.
_ENTRY_FIELDS: Final[dict[str, dict[str, _Rule]]] = {
    "commitments": {"bidder_id": _TEXT, "accepted": _BOOL},
    "reveals": {"bidder_id": _TEXT, "accepted": _BOOL},
    "phantom_bids": {
        "bidder_id": _TEXT,
        "slot": _INT,
        "improved_price": _NUMBER,
        "volume": _NUMBER,
        "priority_fee": _NUMBER,
    },
    "ranking": {
        "rank": _INT,
        "bidder_id": _TEXT,
        "is_phantom": _BOOL,
        "improved_price": _NUMBER,
        "volume": _NUMBER,
        "priority_fee": _NUMBER,
        "improvement_bps": _NUMBER,
        "fee_bps": _NUMBER,
        "score": _NUMBER,
        "allocated": _NUMBER,
        "filled": _NUMBER,
        "fill_price": _OPT_NUMBER,
    },
    "fills": {"bidder_id": _OPT_TEXT, "volume": _NUMBER, "price": _NUMBER},
}
#: An accepted commit's and an accepted reveal's further fields.
_ACCEPTED_FIELDS: Final[dict[str, dict[str, _Rule]]] = {
    "commitments": {"commitment": _TEXT, "nonce": _INT},
    "reveals": {
        "token_pair": (_is_pair, "must be a list of two integers"),
        "improved_price": _NUMBER,
        "volume": _NUMBER,
        "priority_fee": _NUMBER,
        "nonce": _INT,
        "salt": _TEXT,
    },
}
_RULES_FIELDS: Final[dict[str, _Rule]] = {
    "min_improvement_bps": _NUMBER,
    "max_improvement_bps": _NUMBER,
    "price_weight": _NUMBER,
    "fee_weight": _NUMBER,
    "min_participants": _INT,
    "max_bid_value_multiplier": _NUMBER,
    "priority_fee_max_ratio": _NUMBER,
}


def _expect(name: str, value: object, rule: _Rule) -> None:
    ok, what = rule
    if not ok(value):
        raise InvalidBidParameters(name, value, what)


def _check_shape(doc: object) -> None:
    """Raise :class:`InvalidBidParameters` naming the first field the checks cannot read."""
    if not isinstance(doc, dict):
        raise InvalidBidParameters("document", type(doc).__name__, "must be a JSON object")
    for name, rule in (
        ("auction_id", _TEXT),
        ("status", _TEXT),
        ("mechanism", _TEXT),
        ("phantom_policy", _TEXT),
        ("amount", (lambda x: _is_number(x) and x > 0, "must be a positive number")),
        ("baseline_price", (lambda x: _is_number(x) and x > 0, "must be a positive number")),
        ("phantom_commitment", _TEXT),
        ("phantom_seed", _OPT_TEXT),
        ("outcome", _OPT_TEXT),
        ("price", _OPT_NUMBER),
        ("improvement_bps", _OPT_NUMBER),
    ):
        _expect(name, doc.get(name), rule)
    for name in ("phantom_model",):
        _expect(name, doc.get(name), (lambda x: isinstance(x, dict), "must be a JSON object"))
    rules = doc.get("rules")
    if rules is not None:
        _expect("rules", rules, (lambda x: isinstance(x, dict), "must be a JSON object or null"))
        for name, rule in _RULES_FIELDS.items():
            _expect(f"rules.{name}", rules.get(name), rule)
    keys = doc.get("bidder_keys")
    if keys is not None and not (
        isinstance(keys, dict) and all(v is None or _is_text(v) for v in keys.values())
    ):
        raise InvalidBidParameters("bidder_keys", keys, "must map bidder ids to hex keys or null")
    for list_name, entry_fields in _ENTRY_FIELDS.items():
        entries = doc.get(list_name)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise InvalidBidParameters(list_name, type(entries).__name__, "must be a list")
        for i, entry in enumerate(entries):
            where = f"{list_name}[{i}]"
            if not isinstance(entry, dict):
                raise InvalidBidParameters(where, entry, "must be a JSON object")
            for name, rule in entry_fields.items():
                _expect(f"{where}.{name}", entry.get(name), rule)
            if entry.get("accepted"):
                for name, rule in _ACCEPTED_FIELDS.get(list_name, {}).items():
                    _expect(f"{where}.{name}", entry.get(name), rule)
    unrevealed = doc.get("unrevealed")
    if unrevealed is not None and not (
        isinstance(unrevealed, list) and all(map(_is_text, unrevealed))
    ):
        raise InvalidBidParameters("unrevealed", unrevealed, "must be a list of bidder ids")


def _entries(doc: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] | None = doc.get(name)
    return entries or []


# ---------------------------------------------------------------- small helpers


def _exact(x: object) -> str:
    """A number as it reads back exactly (None as "none")."""
    return "none" if x is None else repr(x)


def _same(a: object, b: object) -> bool:
    """The same value: doubles compared exactly (``==``: the same bits but for the sign
    of a zero, as verify.js's ``===``); an int of a JSON document equals its double."""
    return (a is None and b is None) or (a is not None and b is not None and a == b)


def _differences(
    got: Mapping[str, Any], want: Mapping[str, Any], got_name: str, want_name: str
) -> list[str]:
    return [
        f"{k}: {got_name} {_exact(got.get(k))}, {want_name} {_exact(want.get(k))}"
        for k in ("improved_price", "volume", "priority_fee")
        if not _same(got.get(k), want.get(k))
    ]


def _ranked_as(
    item: tuple[str, str],
    ranked: Mapping[str, Any] | None,
    listed: Mapping[str, Any],
    listed_name: str,
    agreed: str,
) -> Check:
    """The ``(group, label)`` check that a bid is in the ranking with the price, volume
    and fee it was ``listed_name`` with."""
    wrong = (
        ["not in the ranking"]
        if ranked is None
        else _differences(ranked, listed, "ranked", listed_name)
    )
    return Check(*item, not wrong, "; ".join(wrong) or agreed)


def _show(wrong: list[str], agreed: str) -> str:
    if not wrong:
        return agreed
    more = f"; {len(wrong) - 3} more" if len(wrong) > 3 else ""
    return "; ".join(wrong[:3]) + more


def _count(k: int, one: str, many: str) -> str:
    return f"{k} {one if k == 1 else many}"


def _numbers_as_floats(value: Any) -> Any:
    """``value`` with every number a float (10 and 10.0 are the same term)."""
    if isinstance(value, dict):
        return {k: _numbers_as_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_numbers_as_floats(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _canonical_terms(terms: Mapping[str, Any], *, compare: bool = True) -> str:
    """The terms of ``terms`` as JSON with sorted keys (to compare: every number a float)."""
    chosen: Any = {k: terms.get(k) for k in TERMS}
    if compare:
        chosen = _numbers_as_floats(chosen)
    return json.dumps(chosen, sort_keys=True, separators=(",", ":"))


def _hex_bytes(text: object, size: int) -> bytes | None:
    if not isinstance(text, str) or len(text) != 2 * size:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


# ---------------------------------------------------------------- re-clearing


def rule_book(doc: Mapping[str, Any]) -> AuctionRules:
    """The rule book the engine cleared ``doc`` with: its ``mechanism``,
    ``phantom_policy`` and ``rules`` (:func:`~.service.house.documents.rules_document`'s
    names). Raises :class:`InvalidBidParameters` if it has no rules."""
    rules = doc.get("rules")
    if not isinstance(rules, dict):
        raise InvalidBidParameters("rules", rules, "the document publishes no rules")
    return AuctionRules(
        mechanism=doc["mechanism"],
        min_bps=float(rules["min_improvement_bps"]),
        max_bps=float(rules["max_improvement_bps"]),
        volume_multiplier=float(rules["max_bid_value_multiplier"]),
        fee_ratio=float(rules["priority_fee_max_ratio"]),
        price_weight=float(rules["price_weight"]),
        fee_weight=float(rules["fee_weight"]),
        min_participants=int(rules["min_participants"]),
        phantom_policy=doc["phantom_policy"],
    )


def _real_bids(doc: Mapping[str, Any]) -> list[ImprovementBid]:
    """The accepted reveals in the order of the accepted commitments (the tie order),
    one per bidder, as the engine's bids."""
    revealed: dict[str, dict[str, Any]] = {}
    for r in _entries(doc, "reveals"):
        if r["accepted"]:
            revealed.setdefault(r["bidder_id"], r)
    bids = []
    for c in _entries(doc, "commitments"):
        found = revealed.pop(c["bidder_id"], None) if c["accepted"] else None
        if found is None:
            continue
        r = found
        digest = _hex_bytes(r.get("commitment", c.get("commitment")), 32)
        salt = _hex_bytes(r["salt"], 32)
        bids.append(
            ImprovementBid(
                r["bidder_id"],
                (r["token_pair"][0], r["token_pair"][1]),
                float(r["improved_price"]),
                float(r["volume"]),
                float(r["priority_fee"]),
                digest if digest is not None else bytes(32),
                r["nonce"],
                _EPOCH,
                salt if salt is not None else bytes(32),
            )
        )
    return bids


def reclear_competition(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's clearing of ``doc`` from its inputs alone: the accepted reveals
    (commit order), then ``phantom_bids`` (slot order), settled under :func:`rule_book`;
    ``{outcome, ranking, fills, price, improvement_bps}`` in the document's shapes."""
    _check_shape(doc)
    book = rule_book(doc)
    baseline = float(doc["baseline_price"])
    amount = float(doc["amount"])
    phantoms = sorted(_entries(doc, "phantom_bids"), key=lambda p: p["slot"])
    columns = (
        tuple(p["slot"] for p in phantoms),
        tuple(float(p["improved_price"]) for p in phantoms),
        tuple(float(p["volume"]) for p in phantoms),
        tuple(float(p["priority_fee"]) for p in phantoms),
    )
    settled = settle(book, _real_bids(doc), columns, baseline, amount)
    fills = list(settled.fills)
    price = cfmm_remainder(fills, baseline, amount)
    return {
        "outcome": str(settled.outcome),
        "ranking": [{k: getattr(r, k) for k in _RANKED_FIELDS} for r in settled.ranking],
        "fills": [{"bidder_id": f.bidder_id, "volume": f.volume, "price": f.price} for f in fills],
        "price": price,
        "improvement_bps": improvement_bps(price, baseline),
    }


def _reclear_checks(doc: Mapping[str, Any]) -> list[Check]:
    items: list[Check] = []

    def add(label: str, ok: bool | None, detail: str) -> None:
        items.append(Check("clearing", label, ok, detail))

    if doc["status"] == "aborted" or doc.get("outcome") == "aborted":
        add(
            "auction re-cleared",
            None,
            "not re-cleared: the auction was aborted, so nothing was cleared (the user gets "
            "the baseline from the CFMM)",
        )
        return items
    if doc.get("rules") is None:
        add("auction re-cleared", None, "not possible: this document predates the published rules")
        return items
    try:
        want = reclear_competition(doc)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        add("auction re-cleared", False, f"cannot clear it again: {exc}")
        return items
    got = _entries(doc, "ranking")
    wanted = want["ranking"]

    wrong_order = []
    for k in range(max(len(got), len(wanted))):
        g = got[k] if k < len(got) else None
        w = wanted[k] if k < len(wanted) else None
        if g is None or w is None:
            wrong_order.append(
                f"rank {k + 1}: published {g['bidder_id'] if g else 'nothing'}, "
                f"re-cleared {w['bidder_id'] if w else 'nothing'}"
            )
        elif (g["bidder_id"], g["is_phantom"], g["rank"]) != (
            w["bidder_id"],
            w["is_phantom"],
            w["rank"],
        ):
            wrong_order.append(
                f"rank {k + 1}: published {g['bidder_id']}, re-cleared {w['bidder_id']}"
            )
        elif not all(_same(g[f], w[f]) for f in ("score", "improvement_bps", "fee_bps")):
            wrong_order.append(
                f"{w['bidder_id']}: published score {_exact(g['score'])} "
                f"({_exact(g['improvement_bps'])} bps, fee {_exact(g['fee_bps'])} bps), "
                f"re-cleared {_exact(w['score'])} ({_exact(w['improvement_bps'])} bps, "
                f"fee {_exact(w['fee_bps'])} bps)"
            )
    add(
        "ranking order and scores re-cleared",
        not wrong_order,
        _show(
            wrong_order,
            f"{_count(len(wanted), 'bid', 'bids')} in the same order with the same scores, "
            "bit for bit",
        ),
    )

    by_bidder = {r["bidder_id"]: r for r in got}
    wrong_allocation, wrong_price = [], []
    for w in wanted:
        g = by_bidder.get(w["bidder_id"])
        if g is None:
            continue  # reported with the order
        if not (_same(g["allocated"], w["allocated"]) and _same(g["filled"], w["filled"])):
            wrong_allocation.append(
                f"{w['bidder_id']}: published {_exact(g['allocated'])} allocated / "
                f"{_exact(g['filled'])} filled, re-cleared {_exact(w['allocated'])} / "
                f"{_exact(w['filled'])}"
            )
        if not _same(g.get("fill_price"), w["fill_price"]):
            wrong_price.append(
                f"{w['bidder_id']}: published {_exact(g.get('fill_price'))}, "
                f"re-cleared {_exact(w['fill_price'])}"
            )
    add(
        "allocations re-cleared",
        not wrong_allocation,
        _show(
            wrong_allocation,
            f"{_count(len(wanted), 'allocation', 'allocations')} (token A), bit for bit",
        ),
    )

    got_fills = _entries(doc, "fills")
    real_want = [f for f in want["fills"] if f["bidder_id"] is not None]
    real_got = [f for f in got_fills if f["bidder_id"] is not None]

    def fill_text(f: Mapping[str, Any] | None, who: bool = True) -> str:
        if f is None:
            return "nothing"
        head = f"{f['bidder_id']} " if who else ""
        return f"{head}{_exact(f['volume'])} @ {_exact(f['price'])}"

    for k in range(max(len(real_want), len(real_got))):
        g = real_got[k] if k < len(real_got) else None
        w = real_want[k] if k < len(real_want) else None
        if (
            g is None
            or w is None
            or g["bidder_id"] != w["bidder_id"]
            or not _same(g["volume"], w["volume"])
            or not _same(g["price"], w["price"])
        ):
            wrong_price.append(f"fill {k + 1}: published {fill_text(g)}, re-cleared {fill_text(w)}")
    add(
        "fill prices re-cleared",
        not wrong_price,
        _show(
            wrong_price,
            f"{_count(len(real_want), 'real fill', 'real fills')} at the same price (B per A), "
            "bit for bit"
            if real_want
            else "no real fill, as published",
        ),
    )

    cfmm_want = next((f for f in want["fills"] if f["bidder_id"] is None), None)
    cfmm_got = [f for f in got_fills if f["bidder_id"] is None]
    cfmm_ok = len(got_fills) == len(want["fills"]) and (
        not cfmm_got
        if cfmm_want is None
        else len(cfmm_got) == 1
        and got_fills[-1] is cfmm_got[0]
        and _same(cfmm_got[0]["volume"], cfmm_want["volume"])
        and _same(cfmm_got[0]["price"], cfmm_want["price"])
    )
    if not cfmm_ok:
        published = ", ".join(fill_text(f, False) for f in cfmm_got) or "nothing"
        detail = (
            f"published {published} ({len(got_fills)} fills), re-cleared "
            f"{fill_text(cfmm_want, False)} ({len(want['fills'])} fills)"
        )
    elif cfmm_want is not None:
        detail = (
            f"the CFMM fills {fill_text(cfmm_want, False)} (B per A, the baseline), bit for bit"
        )
    else:
        detail = "none: the bids fill the whole amount, as published"
    add("CFMM remainder re-cleared", cfmm_ok, detail)

    price_ok = _same(doc.get("price"), want["price"]) and _same(
        doc.get("improvement_bps"), want["improvement_bps"]
    )
    add(
        "user's price and improvement re-cleared",
        price_ok,
        f"{_exact(want['price'])} B per A, {_exact(want['improvement_bps'])} bps, bit for bit"
        if price_ok
        else f"published {_exact(doc.get('price'))} ({_exact(doc.get('improvement_bps'))} bps), "
        f"re-cleared {_exact(want['price'])} ({_exact(want['improvement_bps'])} bps)",
    )
    outcome_ok = doc.get("outcome") == want["outcome"]
    add(
        "outcome re-cleared",
        outcome_ok,
        f"{want['outcome']} under {doc['mechanism']}, policy {doc['phantom_policy']}"
        if outcome_ok
        else f"published {doc.get('outcome')}, re-cleared {want['outcome']}",
    )
    return items


# ---------------------------------------------------------------- signatures


def _signature_tools() -> tuple[Callable[..., bool], Callable[..., bytes]] | None:
    """The service's own Ed25519 check and commit signing bytes, or None without the
    ``service`` extra (cryptography, PyNaCl)."""
    try:
        from .service.auth import verify_signature
        from .wire import commit_signing_bytes
    except ImportError:
        return None
    return verify_signature, commit_signing_bytes


def _signature_checks(doc: Mapping[str, Any]) -> list[Check]:
    items = []
    keys: Mapping[str, str | None] = doc.get("bidder_keys") or {}
    tools = _signature_tools()
    for c in _entries(doc, "commitments"):
        if not c["accepted"]:
            continue
        bidder = c["bidder_id"]
        label = f"{bidder}: commit signature verifies"
        key_hex = keys.get(bidder)
        signature = c.get("signature")
        if tools is None:
            items.append(
                Check(
                    "signatures",
                    label,
                    None,
                    f"not checked: Ed25519 needs cryptography and PyNaCl ({SIGNATURE_EXTRA})",
                )
            )
            continue
        key = _hex_bytes(key_hex, 32)
        if key is None:
            items.append(
                Check(
                    "signatures",
                    label,
                    None,
                    "not checked: the document publishes no Ed25519 key of this bidder"
                    if key_hex is None
                    else f"not checked: bidder_keys has no 32-byte hex key ({key_hex!r:.40})",
                )
            )
            continue
        if not isinstance(signature, str):
            items.append(Check("signatures", label, False, "the commit carries no signature"))
            continue
        verify, signing_bytes = tools
        message = signing_bytes(doc["auction_id"], bidder, c["commitment"], c["nonce"])
        ok = verify(key, signature, message)
        items.append(
            Check(
                "signatures",
                label,
                ok,
                f"Ed25519 signature by {key.hex()[:16]}… of its commitment and nonce"
                if ok
                else f"the signature {signature[:16]}… does not verify under the bidder's key "
                f"{key.hex()[:16]}… (commitment {c['commitment'][:16]}…, nonce {c['nonce']})",
            )
        )
    return items


# ---------------------------------------------------------------- commitments


def _reveal_digests(auction_id: str, r: Mapping[str, Any]) -> dict[int, str]:
    """The reveal's commitment in each version: {2: hex, 1: hex} (raises on a bad field)."""
    salt = _hex_bytes(r.get("salt"), 32)
    if salt is None:
        raise InvalidBidParameters("salt", r.get("salt"), "must be 64 hex digits (32 bytes)")
    pair = r.get("token_pair")
    if not _is_pair(pair):
        raise InvalidBidParameters("token_pair", pair, "must be a list of two integers")
    assert isinstance(pair, list)
    return {
        version: make_commitment(
            auction_id,
            r["bidder_id"],
            (pair[0], pair[1]),
            r.get("improved_price"),  # type: ignore[arg-type]  # checked by make_commitment
            r.get("volume"),  # type: ignore[arg-type]
            r.get("priority_fee"),  # type: ignore[arg-type]
            r.get("nonce"),  # type: ignore[arg-type]
            salt,
            version=version,
        ).hex()
        for version in (2, 1)
    }


def _commitment_checks(doc: Mapping[str, Any]) -> list[Check]:
    items = []
    committed = {c["bidder_id"]: c for c in _entries(doc, "commitments") if c["accepted"]}
    for r in _entries(doc, "reveals"):
        bidder = r["bidder_id"]
        commit = committed.get(bidder)
        try:
            digests = _reveal_digests(doc["auction_id"], r)
        except (ValueError, TypeError) as exc:
            items.append(
                Check("commitments", f"{bidder}: reveal", False, f"cannot be hashed: {exc}")
            )
            continue
        version = None
        if commit is not None:
            version = next((v for v, h in digests.items() if h == commit.get("commitment")), None)
        opens = version is not None and commit is not None and r.get("nonce") == commit["nonce"]
        if r["accepted"]:
            if opens:
                detail = f"SHA-256 (v{version}) = {digests[version or 2][:16]}…"
            elif commit is None:
                detail = "no accepted commitment of this bidder to open"
            elif version is not None:
                detail = f"nonce: revealed {r.get('nonce')}, committed {commit['nonce']}"
            else:
                detail = (
                    f"its price, volume, fee, nonce and salt hash to {digests[2][:16]}… (v2) / "
                    f"{digests[1][:16]}… (v1), not to its commitment "
                    f"{str(commit.get('commitment'))[:16]}…"
                )
            items.append(
                Check("commitments", f"{bidder}: reveal hashes to its commitment", opens, detail)
            )
        elif r.get("reason") == "commitment_mismatch":
            items.append(
                Check(
                    "commitments",
                    f"{bidder}: refused reveal does not match",
                    not opens,
                    "its fields do not hash to the commitment: refusal justified"
                    if not opens
                    else "its fields hash to the commitment: the refusal is wrong",
                )
            )
    real_ranked = [e for e in _entries(doc, "ranking") if not e["is_phantom"]]
    accepted = [r for r in _entries(doc, "reveals") if r["accepted"]]
    for r in accepted:
        entry = next((e for e in real_ranked if e["bidder_id"] == r["bidder_id"]), None)
        items.append(
            _ranked_as(
                ("ranking", f"{r['bidder_id']}: ranked as revealed"),
                entry,
                r,
                "revealed",
                "price, volume and fee as revealed",
            )
        )
    if len(real_ranked) != len(accepted) and doc["status"] == "finalized":
        items.append(
            Check(
                "ranking",
                "real bids in the ranking",
                False,
                f"{len(real_ranked)} ranked, {len(accepted)} accepted reveals",
            )
        )
    return items


# ---------------------------------------------------------------- phantoms


def _phantom_checks(
    doc: Mapping[str, Any], model: PhantomModel, commitment_at_open: str | None
) -> list[Check]:
    items = []
    seed_text = doc.get("phantom_seed")
    seed = _hex_bytes(seed_text, 32)
    seed_hash = None if seed is None else hashlib.sha256(seed).hexdigest()
    published = doc["phantom_commitment"]
    if seed_hash is None:
        detail = (
            "the document publishes no phantom seed (phantom_seed is null)"
            if seed_text is None
            else f"phantom_seed: expected 64 hex digits (32 bytes), got {seed_text[:40]!r}"
        )
    elif seed_hash == published.lower():
        detail = f"SHA-256(seed) = {seed_hash[:16]}…"
    else:
        detail = (
            f"SHA-256(seed) = {seed_hash[:16]}…, the document's commitment is {published[:16]}…"
        )
    seed_ok = seed_hash is not None and seed_hash == published.lower()
    items.append(Check("phantoms", "seed hashes to the phantom commitment", seed_ok, detail))

    at_open = "commitment is the one published at open"
    if commitment_at_open is None:
        items.append(
            Check(
                "phantoms",
                at_open,
                None,
                "not checked: no phantom commitment kept at open was given; compare the "
                "phantom_commitment published at open (the auction_opened push, GET "
                f"/v1/auctions/open, or the explorer's feed while it was open) with {published}",
            )
        )
    else:
        kept = commitment_at_open.lower()
        ok = published.lower() == kept and (seed_hash is None or seed_hash == kept)
        if not ok:
            detail = (
                f"kept at open {kept[:16]}…; the document's commitment is {published[:16]}…"
                + (f", SHA-256(seed) {seed_hash[:16]}…" if seed_hash else "")
            )
        elif seed_hash is None:
            detail = (
                f"the document's commitment is the one kept at open ({kept[:16]}…), but there "
                "is no seed to open it"
            )
        else:
            detail = f"SHA-256(seed) = {kept[:16]}…, the commitment kept at open"
        items.append(Check("phantoms", at_open, ok, detail))

    listed = _entries(doc, "phantom_bids")
    if seed is None:
        items.append(
            Check(
                "phantoms",
                "every drawn phantom listed, no other",
                False,
                f"without the seed no phantom can be redrawn: the {len(listed)} published are "
                "unchecked",
            )
        )
        return items
    drawn = draw_phantom_bids(model, seed, float(doc["baseline_price"]), float(doc["amount"]))
    by_slot = {b.slot: b for b in drawn}
    ranking = _entries(doc, "ranking")
    for bid in listed:
        slot = bid["slot"]
        expected = by_slot.get(slot)
        wrong = []
        if expected is None:
            wrong.append(f"slot {slot}: no phantom bid in that slot of the draw")
        else:
            redrawn = {
                "improved_price": expected.improved_price,
                "volume": expected.volume,
                "priority_fee": expected.priority_fee,
            }
            wrong += _differences(bid, redrawn, "published", "redrawn")
        if bid["bidder_id"] != f"phantom-{slot}":
            wrong.append(f"bidder_id: published {bid['bidder_id']}, expected phantom-{slot}")
        items.append(
            Check(
                "phantoms",
                f"phantom-{slot} redrawn from the seed",
                not wrong,
                "; ".join(wrong) or "price, volume and fee exact",
            )
        )
        ranked = next(
            (r for r in ranking if r["is_phantom"] and r["bidder_id"] == bid["bidder_id"]), None
        )
        items.append(
            _ranked_as(
                ("phantoms", f"phantom-{slot} ranked as drawn"),
                ranked,
                bid,
                "listed",
                "in the ranking unchanged",
            )
        )
    listed_slots = {b["slot"] for b in listed}
    missing = [f"phantom-{b.slot}" for b in drawn if b.slot not in listed_slots]
    ranked_phantoms = sum(1 for r in ranking if r["is_phantom"])
    count_ok = not missing and len(listed) == len(drawn) == ranked_phantoms
    items.append(
        Check(
            "phantoms",
            "every drawn phantom listed, no other",
            count_ok,
            f"{len(drawn)} phantom bids"
            if count_ok
            else f"drawn {len(drawn)}, listed {len(listed)}, ranked {ranked_phantoms}"
            + (f"; missing {', '.join(missing)}" if missing else ""),
        )
    )
    return items


# ---------------------------------------------------------------- one document, every item


def _terms_check(doc: Mapping[str, Any], terms_at_open: Mapping[str, Any] | str | None) -> Check:
    label = "terms are the ones announced at open"
    terms = _canonical_terms(doc)
    if terms_at_open is None:
        return Check(
            "document",
            label,
            None,
            "not checked: no terms kept at open were given; compare the phantom_policy, rules "
            f"and phantom_model of the auction_opened push with "
            f"{_canonical_terms(doc, compare=False)}",
        )
    if isinstance(terms_at_open, str):
        try:
            kept_doc = json.loads(terms_at_open)
        except ValueError as exc:
            raise InvalidBidParameters("terms_at_open", terms_at_open[:80], str(exc)) from None
        if not isinstance(kept_doc, dict):
            raise InvalidBidParameters("terms_at_open", terms_at_open[:80], "not a JSON object")
    else:
        kept_doc = dict(terms_at_open)
    kept = _canonical_terms(kept_doc)
    ok = kept == terms
    return Check(
        "document",
        label,
        ok,
        "phantom policy, rules and phantom model as kept at open"
        if ok
        else f"announced at open {_canonical_terms(kept_doc, compare=False)}; the document "
        f"says {_canonical_terms(doc, compare=False)}",
    )


def verify_competition(
    doc: Mapping[str, Any],
    *,
    phantom_commitment_at_open: str | bytes | None = None,
    terms_at_open: Mapping[str, Any] | str | None = None,
) -> CompetitionCheck:
    """Check a competition document (``GET /v1/auctions/{id}/competition``, parsed JSON)
    item by item, as the explorer does (docs/phantoms.md, "Verifying an auction").

    ``phantom_commitment_at_open``: the ``phantom_commitment`` (hex or 32 bytes) kept
    from the open (``auction_opened`` push, ``GET /v1/auctions/open``, the explorer's
    feed); without it, that item is not checked (a seed swapped after the end together
    with its commitment is caught only with it). ``terms_at_open``: the
    ``phantom_policy``, ``rules`` and ``phantom_model`` announced at open (a mapping
    holding them, such as the ``auction_opened`` push, or its JSON text); without it,
    not checked. Raises :class:`~phantom_auction.errors.InvalidBidParameters` naming the
    field of a document the checks cannot read.
    """
    _check_shape(doc)
    model = PhantomModel.from_document(doc["phantom_model"])
    if isinstance(phantom_commitment_at_open, bytes):
        if len(phantom_commitment_at_open) != 32:
            raise InvalidBidParameters(
                "phantom_commitment_at_open", phantom_commitment_at_open, "must be 32 bytes"
            )
        phantom_commitment_at_open = phantom_commitment_at_open.hex()
    elif phantom_commitment_at_open is not None and (
        _hex_bytes(phantom_commitment_at_open, 32) is None
    ):
        raise InvalidBidParameters(
            "phantom_commitment_at_open",
            phantom_commitment_at_open,
            "must be 64 hex digits (a SHA-256)",
        )
    checks = [
        _terms_check(doc, terms_at_open),
        *_signature_checks(doc),
        *_commitment_checks(doc),
        *_phantom_checks(doc, model, phantom_commitment_at_open),
        *_reclear_checks(doc),
    ]
    return CompetitionCheck(doc["auction_id"], tuple(checks))
