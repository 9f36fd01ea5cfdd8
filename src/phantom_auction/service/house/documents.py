"""The public documents of an auction, as JSON: what clients, bidders and the explorer read.

- :func:`result_document` — the result served to the settlement client;
- :func:`competition_document` — everything about a finished auction, for publication
  (every commit, reveal and rejection, the phantom bids, the ranking); the store keeps
  :func:`competition_stored` (without the parts that repeat the bid events) and
  :func:`competition_view` builds the document from it and the events on read;
- :func:`auction_document` — an auction's state for its client (``AuctionDocument``);
- :func:`announcement_document` — the ``auction_opened`` push; the ``reveal_open`` and
  ``auction_closed`` pushes (:func:`reveal_open_document`, :func:`auction_closed_documents`).

Times are ISO 8601 (UTC) strings; hashes, seeds and keys lowercase hex.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields as dataclass_fields
from typing import Any, Final

from ...engine import Auction, AuctionResult, RankedBid, to_jsonable
from ...engine.clock import from_us
from ...mechanisms.rules import AuctionRules
from ..store import AuctionRecord, BidEvent

__all__ = [
    "RECOVERED",
    "announcement_document",
    "auction_closed_documents",
    "auction_document",
    "competition_document",
    "competition_stored",
    "competition_view",
    "is_competition_view",
    "iso_us",
    "result_document",
    "reveal_open_document",
    "rules_document",
    "terms_document",
]


def iso_us(us: int | None) -> str | None:
    """ISO 8601 (UTC) of unix microseconds, or None."""
    return None if us is None else from_us(us).isoformat()


def _fill_doc(fill: Any) -> dict[str, Any]:
    return {"bidder_id": fill.bidder_id, "volume": fill.volume, "price": fill.price}


_RANKED_FIELDS: Final = tuple(f.name for f in dataclass_fields(RankedBid))
_PHANTOM_MODEL_DOCS: dict[Any, dict[str, Any]] = {}


def _phantom_model_doc(model: Any) -> dict[str, Any]:
    doc = _PHANTOM_MODEL_DOCS.get(model)
    if doc is None:
        doc = {k: v for k, v in to_jsonable(model).items() if k != "type"}
        _PHANTOM_MODEL_DOCS[model] = doc
    return doc


#: The result document's key (true) of an auction ended by crash recovery, whose
#: bidders are not penalized: their reveals may have been lost with the server.
RECOVERED: Final = "recovered"


def result_document(result: AuctionResult) -> dict[str, Any]:
    """The JSON form of an :class:`AuctionResult` served to settlement clients."""
    winner = result.winning_bid
    return {
        "winning_bid": None
        if winner is None
        else {
            "bidder_id": winner.bidder_id,
            "token_pair": list(winner.token_pair),
            "improved_price": winner.improved_price,
            "volume": winner.volume,
            "priority_fee": winner.priority_fee,
            "nonce": winner.nonce,
            "commitment_hash": winner.commitment_hash.hex(),
        },
        "price": result.price,
        "amount": result.amount,
        "improvement_bps": result.improvement_bps,
        "num_participants": result.num_participants,
        "num_phantom_bids": len(result.phantom_bids),
        "auction_duration_ms": result.auction_duration_ms,
        "auction_id": result.auction_id,
        "mechanism": result.mechanism,
        "phantom_policy": result.phantom_policy,
        "outcome": str(result.outcome),
        "fills": [_fill_doc(f) for f in result.fills],
        "phantom_won": result.phantom_won,
        "phantom_seed": result.phantom_seed.hex(),
        "phantom_commitment": result.phantom_commitment.hex(),
        "unrevealed": list(result.unrevealed),
        "baseline_price": result.baseline_price,
        "finalized_at": result.finalized_at.isoformat(),
    }


def competition_document(
    record: AuctionRecord,
    events: Iterable[BidEvent],
    result: AuctionResult,
    status: str,
    bidder_keys: Mapping[str, str] | None = None,
    rules: AuctionRules | None = None,
) -> dict[str, Any]:
    """Everything about a finished auction, for publication (``/competition``).

    ``bidder_keys``: the Ed25519 public key (hex) of each bidder that sent a message, so
    that anyone can check every commit signature from this document alone; ``rules``:
    the auction's rule book, so that anyone can clear it again (:func:`rules_document`).
    """
    events = list(events)
    stored = competition_stored(record, events, result, status, bidder_keys, rules)
    return competition_view(stored, events)


def rules_document(rules: AuctionRules | None) -> dict[str, Any] | None:
    """What the clearing of an auction read from its rule book besides the mechanism,
    the phantom policy and model, under their configuration keys' names."""
    if rules is None:
        return None
    return {
        "min_improvement_bps": rules.min_bps,
        "max_improvement_bps": rules.max_bps,
        "price_weight": rules.price_weight,
        "fee_weight": rules.fee_weight,
        "min_participants": rules.min_participants,
        "max_bid_value_multiplier": rules.volume_multiplier,
        "priority_fee_max_ratio": rules.fee_ratio,
    }


#: The stored form's count of the auction's bid events it covers (not published).
_COVERS: Final = "events"
#: The published document's keys, in order.
_COMPETITION_KEYS: Final = (
    "auction_id",
    "status",
    "outcome",
    "mechanism",
    "phantom_policy",
    "rules",
    "token_pair",
    "amount",
    "baseline_price",
    "opened_at",
    "commit_deadline",
    "reveal_deadline",
    "phantom_commitment",
    "phantom_seed",
    "phantom_model",
    "bidder_keys",
    "commitments",
    "reveals",
    "phantom_bids",
    "ranking",
    "fills",
    "rejections",
    "unrevealed",
    "price",
    "improvement_bps",
)


def competition_stored(
    record: AuctionRecord,
    events: Sequence[BidEvent],
    result: AuctionResult,
    status: str,
    bidder_keys: Mapping[str, str] | None = None,
    rules: AuctionRules | None = None,
) -> dict[str, Any]:
    """What the store keeps of the competition document: everything but the parts that
    repeat ``events`` (the auction's first ``len(events)`` stored bid events), which
    :func:`competition_view` builds again on read. About a third of the bytes."""
    keys = bidder_keys or {}
    return {
        "auction_id": record.auction_id,
        "status": status,
        "outcome": str(result.outcome),
        "mechanism": result.mechanism,
        "phantom_policy": result.phantom_policy,
        "rules": rules_document(rules),
        "token_pair": list(result.token_pair),
        "amount": result.amount,
        "baseline_price": result.baseline_price,
        "opened_at": result.opened_at.isoformat(),
        "commit_deadline": result.commit_deadline.isoformat(),
        "reveal_deadline": result.reveal_deadline.isoformat(),
        "phantom_commitment": result.phantom_commitment.hex(),
        "phantom_seed": result.phantom_seed.hex(),
        "phantom_model": _phantom_model_doc(result.phantom_model),
        "bidder_keys": {
            bidder_id: keys.get(bidder_id)
            for bidder_id in dict.fromkeys(e.bidder_id for e in events)
        },
        "phantom_bids": [
            {
                "slot": p.slot,
                "bidder_id": p.bidder_id,
                "improved_price": p.improved_price,
                "volume": p.volume,
                "priority_fee": p.priority_fee,
            }
            for p in result.phantom_bids
        ],
        "ranking": [{name: getattr(r, name) for name in _RANKED_FIELDS} for r in result.ranking],
        "fills": [_fill_doc(f) for f in result.fills],
        "unrevealed": list(result.unrevealed),
        "price": result.price,
        "improvement_bps": result.improvement_bps,
        _COVERS: len(events),
    }


def is_competition_view(stored: Mapping[str, Any]) -> bool:
    """Whether ``stored`` is :func:`competition_stored`'s form (else a whole document,
    as written before, or when some event of the auction could not be stored)."""
    return _COVERS in stored and "commitments" not in stored


def events_covered(stored: Mapping[str, Any]) -> int:
    """How many of the auction's bid events :func:`competition_stored`'s form covers (0
    for a whole document)."""
    return int(stored[_COVERS]) if is_competition_view(stored) else 0


def competition_view(stored: Mapping[str, Any], events: Iterable[BidEvent]) -> dict[str, Any]:
    """The published competition document from its stored form and the auction's bid
    events in store order (only the first ``stored["events"]`` count; later ones, e.g.
    messages refused after the end, were not part of it). A whole document is returned
    as it is."""
    if not is_competition_view(stored):
        return dict(stored)
    covered = list(events)[: stored[_COVERS]]
    commitments: list[dict[str, Any]] = []
    reveals: list[dict[str, Any]] = []
    rejections: list[dict[str, Any]] = []
    for event in covered:
        fields = {k: v for k, v in event.payload.items() if k != "event"}
        entry = {
            "bidder_id": event.bidder_id,
            "received_at": iso_us(event.received_at_us),
            "accepted": event.accepted,
            "reason": event.reason,
            **fields,
        }
        (commitments if event.kind == "commit" else reveals).append(entry)
        if not event.accepted:
            rejections.append(
                {
                    "kind": event.kind,
                    "bidder_id": event.bidder_id,
                    "received_at": entry["received_at"],
                    "reason": event.reason,
                    "detail": fields.get("detail"),
                }
            )
    parts = {"commitments": commitments, "reveals": reveals, "rejections": rejections}
    # .get: documents stored before "rules" was published have none (null).
    return {key: parts[key] if key in parts else stored.get(key) for key in _COMPETITION_KEYS}


def auction_document(record: AuctionRecord) -> dict[str, Any]:
    """The JSON form of an auction for its settlement client (``AuctionDocument``)."""
    return {
        "auction_id": record.auction_id,
        "status": record.status,
        "outcome": record.outcome,
        "token_in": record.token_in,
        "token_out": record.token_out,
        "amount": record.amount,
        "baseline_price": record.baseline_price,
        "idempotency_key": record.idempotency_key,
        "opened_at": iso_us(record.opened_at_us),
        "commit_deadline": iso_us(record.commit_deadline_us),
        "reveal_deadline": iso_us(record.reveal_deadline_us),
        "phantom_commitment": record.phantom_commitment,
        "result": record.result,
    }


def terms_document(auction: Auction) -> dict[str, Any]:
    """What an auction clears by beyond its mechanism, announced at open and published
    again in its competition: ``phantom_policy``, ``rules`` (:func:`rules_document`) and
    ``phantom_model``. Kept from the open, they let a verifier catch a server that
    clears (or draws the phantoms) by other terms than it announced."""
    return {
        "phantom_policy": auction.rule_book.phantom_policy,
        "rules": rules_document(auction.rule_book),
        "phantom_model": _phantom_model_doc(auction.phantom_model),
    }


def announcement_document(auction: Auction) -> dict[str, Any]:
    """The ``auction_opened`` push (also listed by ``GET /v1/auctions/open``)."""
    a = auction.announcement
    return {
        "type": "auction_opened",
        "auction_id": a.auction_id,
        "token_pair": list(a.token_pair),
        "baseline_price": a.baseline_price,
        "amount": a.amount,
        "opened_at": a.opened_at.isoformat(),
        "commit_deadline": a.commit_deadline.isoformat(),
        "reveal_deadline": a.reveal_deadline.isoformat(),
        "phantom_commitment": a.phantom_commitment.hex(),
        "mechanism": a.mechanism,
        "min_improvement_bps": a.min_improvement_bps,
        "max_improvement_bps": a.max_improvement_bps,
        "max_volume": a.max_volume,
        "priority_fee_max_ratio": a.priority_fee_max_ratio,
        **terms_document(auction),
    }


def reveal_open_document(auction: Auction) -> dict[str, Any]:
    """The ``reveal_open`` push to the auction's committers."""
    return {
        "type": "reveal_open",
        "auction_id": auction.auction_id,
        "reveal_deadline": auction.reveal_deadline.isoformat(),
    }


def auction_closed_documents(
    result: AuctionResult, status: str, bidder_ids: Iterable[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The ``auction_closed`` push to each of ``bidder_ids``: its own fill and reveal."""
    fills: dict[str | None, tuple[float, float]] = {}
    for fill in result.fills:
        fills[fill.bidder_id] = (fill.volume, fill.price)
    for bidder_id in bidder_ids:
        volume, price = fills.get(bidder_id, (0.0, None))
        yield (
            bidder_id,
            {
                "type": "auction_closed",
                "auction_id": result.auction_id,
                "status": status,
                "outcome": str(result.outcome),
                "price": result.price,
                "improvement_bps": result.improvement_bps,
                "filled": volume,
                "fill_price": price,
                "revealed": bidder_id not in result.unrevealed,
            },
        )
