"""The in-memory :class:`~.interface.Store`: dictionaries, for unit tests (not durable)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from .interface import PRUNE_BATCH_AUCTIONS, PRUNE_PAUSE_RATIO, Store, check_prune_pace
from .records import (
    REVOKED_PREFIX,
    AuctionRecord,
    AuctionStatus,
    BidderRecord,
    BidEvent,
    ClientRecord,
    EventMark,
    Pruned,
    StoreConflict,
    Write,
    now_us,
    split_writes,
)

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Dictionaries behind the :class:`Store` interface: for unit tests, not durable."""

    durable = False

    def __init__(self) -> None:
        self._clients: dict[int, tuple[ClientRecord, str]] = {}
        self._bidders: dict[str, BidderRecord] = {}
        self._auctions: dict[str, AuctionRecord] = {}
        self._events: list[BidEvent] = []
        self._last_event_id = 0
        self._nonce_marks: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def add_client(self, name: str, token_hash: str) -> ClientRecord:
        async with self._lock:
            if any(c.name == name for c, _ in self._clients.values()):
                raise StoreConflict("name", name)
            record = ClientRecord(len(self._clients) + 1, name, now_us())
            self._clients[record.client_id] = (record, token_hash)
            return record

    async def client_by_token_hash(self, token_hash: str) -> ClientRecord | None:
        return next((c for c, h in self._clients.values() if h == token_hash), None)

    async def add_bidder(self, bidder_id: str, public_key: bytes) -> BidderRecord:
        async with self._lock:
            if bidder_id in self._bidders:
                raise StoreConflict("bidder_id", bidder_id)
            record = BidderRecord(bidder_id, bytes(public_key), now_us())
            self._bidders[bidder_id] = record
            return record

    async def bidder(self, bidder_id: str) -> BidderRecord | None:
        return self._bidders.get(bidder_id)

    async def clients(self) -> list[ClientRecord]:
        return [
            replace(c, revoked=h.startswith(REVOKED_PREFIX))
            for c, h in sorted(self._clients.values(), key=lambda ch: ch[0].client_id)
        ]

    async def revoke_client(self, name: str) -> bool:
        async with self._lock:
            for client_id, (record, _hash) in self._clients.items():
                if record.name == name:
                    self._clients[client_id] = (record, f"{REVOKED_PREFIX}{client_id}")
                    return True
            return False

    async def bidders(self) -> list[BidderRecord]:
        return [self._bidders[b] for b in sorted(self._bidders)]

    async def remove_bidder(self, bidder_id: str) -> bool:
        async with self._lock:
            return self._bidders.pop(bidder_id, None) is not None

    async def apply(self, writes: Sequence[Write]) -> None:
        opened, events, finished, penalties = split_writes(writes)
        async with self._lock:
            # Check everything first so that a failing batch changes nothing.
            keys = {(a.client_id, a.idempotency_key) for a in self._auctions.values()}
            new_ids = set(self._auctions)
            for a in opened:
                if a.auction_id in new_ids:
                    raise StoreConflict("auction_id", a.auction_id)
                if a.idempotency_key is not None and (a.client_id, a.idempotency_key) in keys:
                    raise StoreConflict("idempotency_key", a.idempotency_key)
                new_ids.add(a.auction_id)
                keys.add((a.client_id, a.idempotency_key))
            for e in events:
                if e.auction_id not in new_ids:
                    raise StoreConflict("auction_id (unknown)", e.auction_id)
            for f in finished:
                if f.auction_id not in new_ids:
                    raise StoreConflict("auction_id (unknown)", f.auction_id)
            for p in penalties:
                if p.bidder_id not in self._bidders:
                    raise StoreConflict("bidder_id (unknown)", p.bidder_id)
            for a in opened:
                self._auctions[a.auction_id] = a
            for e in events:
                self._last_event_id += 1
                self._events.append(replace(e, event_id=self._last_event_id))
            for f in finished:
                if self._auctions[f.auction_id].status != "open":
                    continue  # the first end stored stands (FINISH_UPDATE's guard)
                self._auctions[f.auction_id] = replace(
                    self._auctions[f.auction_id],
                    status=f.status,
                    outcome=f.outcome,
                    result=f.result,
                    competition=f.competition,
                    finished_at_us=f.finished_at_us,
                )
            for p in penalties:
                self._bidders[p.bidder_id] = replace(self._bidders[p.bidder_id], penalty=p.penalty)

    async def auction(self, auction_id: str) -> AuctionRecord | None:
        return self._auctions.get(auction_id)

    async def auctions(self, auction_ids: Sequence[str]) -> list[AuctionRecord]:
        found = (self._auctions.get(auction_id) for auction_id in dict.fromkeys(auction_ids))
        return [record for record in found if record is not None]

    async def auction_by_key(self, client_id: int, idempotency_key: str) -> AuctionRecord | None:
        return next(
            (
                a
                for a in self._auctions.values()
                if a.client_id == client_id and a.idempotency_key == idempotency_key
            ),
            None,
        )

    async def open_auctions(self) -> list[AuctionRecord]:
        return [a for a in self._auctions.values() if a.status == "open"]

    async def events(self, auction_id: str) -> list[BidEvent]:
        return [e for e in self._events if e.auction_id == auction_id]

    async def event_marks(self, auction_ids: Sequence[str]) -> dict[str, list[EventMark]]:
        wanted = set(auction_ids)
        marks: dict[str, list[EventMark]] = {}
        for e in self._events:
            if e.auction_id in wanted:
                marks.setdefault(e.auction_id, []).append((e.bidder_id, e.kind, e.accepted))
        return marks

    async def last_nonces(self) -> dict[str, int]:
        out = dict(self._nonce_marks)
        for e in self._events:
            if e.kind == "commit" and e.accepted and e.nonce is not None:
                out[e.bidder_id] = max(out.get(e.bidder_id, e.nonce), e.nonce)
        return out

    async def prune(
        self,
        ended_before_us: int,
        *,
        batch_auctions: int = PRUNE_BATCH_AUCTIONS,
        pause_ratio: float = PRUNE_PAUSE_RATIO,
    ) -> Pruned:
        check_prune_pace(batch_auctions, pause_ratio)
        async with self._lock:
            ended = self._ended(ended_before_us)
            kept: list[BidEvent] = []
            for e in self._events:
                if e.auction_id not in ended:
                    kept.append(e)
                elif e.kind == "commit" and e.accepted and e.nonce is not None:
                    mark = self._nonce_marks.get(e.bidder_id, e.nonce)
                    self._nonce_marks[e.bidder_id] = max(mark, e.nonce)
            pruned = Pruned(len(ended), len(self._events) - len(kept))
            self._events = kept
            for auction_id in ended:
                del self._auctions[auction_id]
            return pruned

    async def count_ended(self, ended_before_us: int) -> Pruned:
        ended = self._ended(ended_before_us)
        return Pruned(len(ended), sum(e.auction_id in ended for e in self._events))

    def _ended(self, before_us: int) -> set[str]:
        return {
            a.auction_id
            for a in self._auctions.values()
            if a.status != "open" and a.finished_at_us is not None and a.finished_at_us < before_us
        }

    async def auction_ids(self, status: AuctionStatus | None = None) -> list[str]:
        return [a.auction_id for a in self._auctions.values() if status in (None, a.status)]

    async def latest_ended(self, limit: int, ended_by_us: int | None = None) -> list[AuctionRecord]:
        by = ended_by_us
        ended = [
            a
            for a in self._auctions.values()
            if a.status != "open" and (by is None or (a.finished_at_us or 0) <= by)
        ]
        ended.sort(key=lambda a: a.finished_at_us or 0)
        return ended[-limit:] if limit > 0 else []
