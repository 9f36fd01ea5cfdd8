"""Crash recovery: auctions a crash left open are rebuilt from their stored events and ended.

On start, each auction whose status is still ``open`` is rebuilt under the rules it was
opened with (``engine_params``) and fed its stored accepted commits and reveals with
:meth:`Auction.replay`; one past its reveal window with every commitment revealed is
finalized from them, the others are aborted (their bidders may have lost reveals with
the server, so no one is penalized). Stored events are read back through
:mod:`phantom_auction.engine.codec`, the engine's one JSON form of its audit events.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

from ...config import AuctionConfig, AuctionMechanicsConfig, PhantomAuctionConfig
from ...engine import (
    Auction,
    AuctionResult,
    CommitAccepted,
    RevealAccepted,
    SealedBid,
    SettlementRequest,
    abort_auction,
    event_from_jsonable,
    finalize_auction,
)
from ...engine.clock import Clock, from_us, to_us
from ...errors import InvalidBidParameters, PhantomAuctionError
from ..metrics import ServiceMetrics
from ..store import AuctionFinished, AuctionRecord, BidEvent, Store
from .documents import RECOVERED, competition_document, iso_us, result_document

__all__ = ["accepted_events", "rebuild_auction", "recover_open_auctions"]

_log = logging.getLogger(__name__)


def _codec_form(event: BidEvent) -> dict[str, Any]:
    """The stored message as :func:`~phantom_auction.engine.to_jsonable` writes its
    audit event: the payload holds the bidder's wire fields and the engine's time
    (``at_us``); the bid's timestamp is when it was received."""
    p = event.payload
    bid: dict[str, Any] = {
        "bidder_id": event.bidder_id,
        "token_pair": p["token_pair"],
        "commitment_hash": p["commitment"],
        "nonce": p["nonce"],
        "timestamp": iso_us(event.received_at_us),
    }
    if event.kind == "commit":
        return {"type": "CommitAccepted", "at": iso_us(p["at_us"]), "bid": bid}
    for name in ("improved_price", "volume", "priority_fee", "salt"):
        bid[name] = p[name]
    return {"type": "RevealAccepted", "at": iso_us(p["at_us"]), "bid": bid}


def accepted_events(events: Iterable[BidEvent]) -> Iterator[CommitAccepted | RevealAccepted]:
    """The engine's audit events of the accepted commits and reveals in ``events``, in
    order: what :meth:`Auction.replay` needs to rebuild the auction's state (rejections
    change nothing, and the house never closes a collection window early)."""
    for event in events:
        if not event.accepted or "at_us" not in event.payload:
            continue  # no verdict of the engine's: nothing to replay
        audit = event_from_jsonable(_codec_form(event))
        assert isinstance(audit, CommitAccepted | RevealAccepted)
        yield audit


def config_from_sections(base: AuctionConfig, sections: dict[str, Any]) -> AuctionConfig:
    """``base`` with the auction's own stored rules (``engine_params["config"]``)."""
    return AuctionConfig(
        phantom_auction=PhantomAuctionConfig.model_validate(sections["phantom_auction"]),
        auction_mechanics=AuctionMechanicsConfig.model_validate(sections["auction_mechanics"]),
        security=base.security,
        resources=base.resources,
        service=base.service,
    )


def stored_rules(
    base: AuctionConfig, record: AuctionRecord, seen: dict[str, AuctionConfig]
) -> AuctionConfig:
    """:func:`config_from_sections` of ``record``'s stored rules, made once per distinct
    rule set (``seen`` keeps them)."""
    sections = record.engine_params["config"]
    key = json.dumps(sections, sort_keys=True)
    if key not in seen:
        seen[key] = config_from_sections(base, sections)
    return seen[key]


def rebuild_auction(record: AuctionRecord, config: AuctionConfig) -> Auction:
    """The engine's auction as ``record`` opened it (same windows, same phantom seed)."""
    params = record.engine_params
    auction = Auction(
        SettlementRequest(
            record.token_in, record.token_out, record.amount, params.get("request_id", "")
        ),
        record.baseline_price,
        record.amount,
        from_us(params["deadline_us"]),
        config=config,
        auction_id=record.auction_id,
        now=from_us(record.opened_at_us),
        phantom_seed=bytes.fromhex(record.phantom_seed),
        reserve_ms=params["reserve_ms"],
    )
    if (to_us(auction.commit_deadline), to_us(auction.reveal_deadline)) != (
        record.commit_deadline_us,
        record.reveal_deadline_us,
    ):
        raise InvalidBidParameters(
            "engine_params", params, "rebuilt windows differ from the stored ones"
        )
    return auction


async def _stored_keys(store: Store, events: Iterable[BidEvent]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for bidder_id in dict.fromkeys(e.bidder_id for e in events):
        bidder = await store.bidder(bidder_id)
        if bidder is not None:
            keys[bidder_id] = bidder.public_key.hex()
    return keys


async def recover_open_auctions(
    store: Store,
    config: AuctionConfig,
    clock: Clock,
    metrics: ServiceMetrics,
    orphaned: Callable[[AuctionRecord], Awaitable[bool]] | None = None,
    *,
    ended: Callable[[AuctionResult, str, Mapping[str, SealedBid]], None] | None = None,
) -> dict[str, str]:
    """End every auction a crash left open (finalize past its reveal window with every
    commitment revealed, else abort);
    the status given to each, by auction id. With ``orphaned`` (``serve --workers``),
    only the open auctions it says no running process owns. ``ended`` is called with
    each one's result, status and commitments once its end is stored."""
    recovered: dict[str, str] = {}
    configs: dict[str, AuctionConfig] = {}
    for record in await store.open_auctions():
        if orphaned is not None and not await orphaned(record):
            continue
        events = await store.events(record.auction_id)
        now = clock.now()
        rules = stored_rules(config, record, configs)
        try:
            auction = rebuild_auction(record, rules)
            auction.replay(accepted_events(events))
            # Cleared only with every reveal in: one the server had not stored when it
            # stopped (during the window, or while it was stopping) is not the bidder's
            # doing, and clearing on the others would give another result.
            if now >= auction.reveal_deadline and not auction.unrevealed:
                result = finalize_auction(auction, now=max(auction.clock, auction.reveal_deadline))
                status = "finalized"
            else:
                why = (
                    "server restarted during the auction"
                    if now < auction.reveal_deadline
                    else "server stopped before every reveal was stored"
                )
                result = abort_auction(auction, why, now=max(now, auction.clock))
                status = "aborted"
        except Exception as exc:  # a bug here must not stop every restart
            _log.log(
                logging.ERROR,
                "auction %s cannot be replayed: %s",
                record.auction_id,
                exc,
                exc_info=not isinstance(exc, PhantomAuctionError),
            )
            auction = rebuild_auction(record, rules)
            result = abort_auction(auction, f"replay failed: {exc}", now=max(now, auction.clock))
            status = "aborted"
        keys = await _stored_keys(store, events)
        # Marked, so that readers (the explorer's /bidders) leave its no-reveals out, as
        # the penalties do: its bidders' reveals may have been lost with the server.
        document = {**result_document(result), RECOVERED: True}
        await store.apply(
            [
                AuctionFinished(
                    record.auction_id,
                    status,  # type: ignore[arg-type]
                    str(result.outcome),
                    document,
                    competition_document(record, events, result, status, keys, auction.rule_book),
                    to_us(clock.now()),
                )
            ]
        )
        recovered[record.auction_id] = status
        metrics.count_auction(str(result.outcome))
        if ended is not None:
            ended(result, status, auction.commitments)
    if recovered:
        _log.warning("recovered %d auctions left open by a crash", len(recovered))
    return recovered
