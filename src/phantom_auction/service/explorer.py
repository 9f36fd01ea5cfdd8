"""The auction explorer: a public web page of the service's auctions, verified in the browser.

``GET /`` is the live feed, ``/auctions/{id}`` one auction's competition, ``/bidders``
the bidders' record; one HTML shell and its scripts (``explorer_static/``, shipped in
the package: no build step, no CDN) render them from public JSON only:

- ``GET /explorer/api/feed?since=<seq>&epoch=<id>&wait=<s>``: open auctions and the
  latest finished ones as summaries; ``seq`` grows with every change, so a page asks for
  what changed: the summaries changed and the auctions removed since (or, when it is too
  far behind or the server is not the one it asked before, the whole feed again). With
  ``wait``, a long poll: when nothing changed since, the answer waits (up to
  :data:`WAIT_MAX_S`) for an auction to open or end, so that a page sees each auction
  while it is open (a 100 ms auction fell between most 300 ms polls) without asking
  more often.
- ``GET /explorer/api/auctions/{id}``: one summary (open auctions too, before their
  competition exists).
- ``GET /explorer/api/bidders``: per bidder seen in the recent auctions, auctions
  entered, wins, no-reveals (not in an aborted auction or one ended by crash recovery,
  as penalties count them), and its penalty state.
- ``GET /v1/auctions/{id}/competition`` (the service's own) is what the page verifies.

The feed watches ``house.live`` for open auctions and hears each auction the house
finishes (``house.finish_listeners``) with its bid events, so its summary is made from
memory: reading each one's events back from the store cost ~2 ms of the event loop an
auction, a fifth of a core at 100 auctions/s while a page was open. With ``serve
--workers``, it lists the other processes' auctions too: open ones from their
announcement (``house.peers.remote``), ended ones read from the store when their end is
heard (``house.peers.end_listeners``). It keeps no task of its own (a waiting page is
its request, woken by the house's ``open_listeners`` and ``finish_listeners``): the work
is done when a page asks, so a server nobody watches pays nothing (until the first
page, nothing at all; then, of the latest ends, each bid event's bidder, kind and
verdict). Nothing secret is published: while an auction is open the summary gives its
commitment count, never its phantoms (the seed stays sealed until the competition is
published).

One concept past 600 lines: the explorer's server side (its routes and the feed they
read).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import secrets
from collections import OrderedDict, deque
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..engine.clock import to_us
from .house.documents import RECOVERED, events_covered, is_competition_view, terms_document

if TYPE_CHECKING:
    from .house import AuctionHouse, LiveAuction
    from .store import AuctionRecord, BidEvent, EventMark

__all__ = ["Feed", "router"]

#: Finished auctions the feed keeps (and the bidders page counts).
RECENT: Final = 500
#: What a feed answer lists at most (the newest changes first).
PAGE: Final = 200
#: Ended auctions the first sync reads from the store at a time: each read decodes its
#: rows on the event loop (500 at once held it ~150 ms, past a 20 ms reveal window).
LOAD_CHUNK: Final = 25
#: How often (s) a sync checks for auctions a prune removed: a read of ~1.8 ms, where a
#: sync is otherwise ~0.1 ms and a page asks several times a second; prunes run once a minute.
PRUNE_CHECK_S: Final = 5.0
#: How often (s) a sync recounts the commits of other processes' open auctions (``serve
#: --workers``), one store read for all of them.
REMOTE_COUNT_S: Final = 1.0
#: Removals (pruned, ended without a result, or past :data:`RECENT`) the feed remembers
#: for pages asking what changed; a page further behind is sent the whole feed again.
REMOVALS_KEPT: Final = 1000
#: The longest (s) a feed request may wait for a change: under common proxies' idle
#: timeouts, and a page still hears of its commit counts that often.
WAIT_MAX_S: Final = 10.0

_STATIC: Final = resources.files("phantom_auction.service") / "explorer_static"
_MEDIA: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _iso(us: int | None) -> str | None:
    return None if us is None else datetime.fromtimestamp(us / 1e6, UTC).isoformat()


def _open_summary(live: LiveAuction) -> dict[str, Any]:
    record = live.record
    return {
        **_order(record),
        "status": "open",
        "outcome": None,
        "commits": len(live.auction.commitments),
        "real_bids": None,
        "phantom_bids": None,
        "winner": None,
        "price": None,
        "improvement_bps": None,
        "mechanism": live.auction.announcement.mechanism,
        "terms": terms_document(live.auction),
    }


def _announced_summary(text: str) -> dict[str, Any]:
    """The summary of another process's open auction, from its ``auction_opened`` push
    (its commits are counted from the store)."""
    announced = json.loads(text)

    def at(field: str) -> str | None:  # as _iso writes the stored time of this process
        return _iso(to_us(datetime.fromisoformat(announced[field])))

    return {
        "auction_id": announced["auction_id"],
        "token_pair": announced["token_pair"],
        "amount": announced["amount"],
        "baseline_price": announced["baseline_price"],
        "opened_at": at("opened_at"),
        "commit_deadline": at("commit_deadline"),
        "reveal_deadline": at("reveal_deadline"),
        "phantom_commitment": announced["phantom_commitment"],
        "status": "open",
        "outcome": None,
        "commits": 0,
        "real_bids": None,
        "phantom_bids": None,
        "winner": None,
        "price": None,
        "improvement_bps": None,
        "mechanism": announced["mechanism"],
        "terms": {k: announced.get(k) for k in ("phantom_policy", "rules", "phantom_model")},
    }


def _order(record: AuctionRecord) -> dict[str, Any]:
    return {
        "auction_id": record.auction_id,
        "token_pair": [record.token_in, record.token_out],
        "amount": record.amount,
        "baseline_price": record.baseline_price,
        "opened_at": _iso(record.opened_at_us),
        "commit_deadline": _iso(record.commit_deadline_us),
        "reveal_deadline": _iso(record.reveal_deadline_us),
        "phantom_commitment": record.phantom_commitment,
    }


def _finished_summary(
    record: AuctionRecord, competition: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The public summary of an ended auction (``competition``: its published document),
    and what the bidders page counts."""
    competition = competition or {}
    result = record.result or {}
    winner = result.get("winning_bid") or {}
    window_opened = _reveal_window_opened(record)
    ranking = competition.get("ranking", [])
    accepted = {c["bidder_id"] for c in competition.get("commitments", []) if c.get("accepted")}
    filled = {f["bidder_id"] for f in competition.get("fills", []) if f.get("bidder_id")}
    summary = {
        **_order(record),
        "status": record.status,
        "outcome": record.outcome,
        "commits": len(competition.get("commitments", [])),
        "real_bids": sum(1 for r in ranking if not r.get("is_phantom")),
        "phantom_bids": len(competition.get("phantom_bids", [])),
        "winner": winner.get("bidder_id"),
        "price": competition.get("price", result.get("price")),
        "improvement_bps": competition.get("improvement_bps", result.get("improvement_bps")),
        "mechanism": competition.get("mechanism", result.get("mechanism")),
        "finished_at": _iso(record.finished_at_us),
        "reveal_window_opened": window_opened,
    }
    tally = {
        "entered": sorted(accepted),
        "won": sorted(filled),
        # Not in an aborted auction (the venue ended it, before its reveal window or
        # during it) or one ended by crash recovery, where no bidder is penalized either.
        "unrevealed": []
        if record.status == "aborted" or result.get(RECOVERED)
        else sorted(competition.get("unrevealed", [])),
    }
    return summary, tally


def _reveal_window_opened(record: AuctionRecord) -> bool:
    """Whether ``record`` (ended) reached its reveal window: a finalized auction did; an
    aborted one, if the engine ended it after its commit deadline (the stored end
    time, a little later, where its result has none)."""
    if record.status != "aborted":
        return True
    ended = (record.result or {}).get("finalized_at")
    ended_us = to_us(datetime.fromisoformat(ended)) if ended else record.finished_at_us
    return ended_us is not None and ended_us > record.commit_deadline_us


_TALLIES: Final = (("entered", "auctions"), ("won", "wins"), ("unrevealed", "no_reveals"))


def _marks(events: list[BidEvent]) -> list[EventMark]:
    # What the feed keeps of an ended auction's bid events (its summary counts the
    # commitments; whole events, ~60 KB an auction, would sit in memory).
    return [(e.bidder_id, e.kind, e.accepted) for e in events]


def _ended_summary(
    record: AuctionRecord, marks: list[EventMark]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`_finished_summary` of an ended auction from its stored competition and its
    bid events' marks (the commitments the published document lists: the commits among
    the events it covers)."""
    stored = record.competition or {}
    if is_competition_view(stored):
        covered = marks[: events_covered(stored)]
        commitments = [
            {"bidder_id": b, "accepted": ok} for b, kind, ok in covered if kind == "commit"
        ]
        stored = {**stored, "commitments": commitments}
    return _finished_summary(record, stored)


class Feed:
    """Summaries of the house's open and recent auctions, each stamped with the ``seq``
    of its last change (``entries`` is kept in that order), and the removals."""

    def __init__(self, house: AuctionHouse) -> None:
        self.house = house
        #: Names this feed's ``seq``s: another process's, or this one's before a restart,
        #: count from another start.
        self.epoch = secrets.token_hex(8)
        self.seq = 0
        self.entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._removed: deque[tuple[int, str]] = deque()
        self._forgotten = 0  # removals up to this seq are no longer in _removed
        self.tallies: dict[str, dict[str, Any]] = {}
        self._watched: set[str] = set()
        self._loaded = False
        self._lock = asyncio.Lock()
        self.prune_check_s = PRUNE_CHECK_S
        self._prune_checked = -math.inf
        # Auctions finished since the last sync (only the latest matter), summarized then.
        self._ended: deque[tuple[AuctionRecord, list[EventMark]]] = deque(maxlen=RECENT)
        house.finish_listeners.append(self._finished)
        # Set (and replaced) when an auction opens or ends here or elsewhere: the pages
        # waiting for a change answer then, each on the event of when it asked.
        self._wake = asyncio.Event()
        self._stopping = False  # a graceful stop began: no page waits any more
        house.open_listeners.append(self._opened)
        # Auctions other processes ended (``serve --workers``): read from the store then.
        self._ended_elsewhere: deque[str] = deque(maxlen=RECENT)
        self.remote_count_s = REMOTE_COUNT_S
        self._remote_counted = -math.inf
        if house.peers is not None:
            house.peers.end_listeners.append(self._ended_there)
            house.peers.open_listeners.append(lambda _auction_id: self._wake_pages())

    def _finished(self, record: AuctionRecord, events: list[BidEvent]) -> None:
        self._ended.append((record, _marks(events)))
        self._wake_pages()

    def _ended_there(self, auction_id: str) -> None:
        self._ended_elsewhere.append(auction_id)
        self._wake_pages()

    def _opened(self, auction_id: str | None) -> None:
        if auction_id is None:
            self._stopping = True
        self._wake_pages()

    def _wake_pages(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    async def wait(self, since: int, epoch: str | None, seconds: float) -> None:
        """Sync; then, if nothing changed after ``since`` (the page would be sent nothing),
        wait up to ``seconds`` for an auction to open or end and sync again."""
        wake = self._wake  # taken first: an auction opening during the sync wakes it
        await self.sync()
        quiet = since != 0 and since == self.seq and epoch in (None, self.epoch)
        if not quiet or seconds <= 0 or self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await wake.wait()
        await self.sync()

    def _put(self, summary: dict[str, Any], tally: dict[str, Any] | None = None) -> None:
        self.seq += 1
        auction_id = summary["auction_id"]
        self.entries[auction_id] = {**summary, "seq": self.seq}
        self.entries.move_to_end(auction_id)
        if tally is not None:
            self.tallies[auction_id] = tally
        while len(self.entries) > RECENT + len(self.house.live):
            self._remove(next(iter(self.entries)))

    def _remove(self, auction_id: str) -> None:
        del self.entries[auction_id]
        self.tallies.pop(auction_id, None)
        self._watched.discard(auction_id)
        self.seq += 1
        self._removed.append((self.seq, auction_id))
        if len(self._removed) > REMOVALS_KEPT:
            self._forgotten = self._removed.popleft()[0]

    async def _summary(self, record: AuctionRecord) -> tuple[dict[str, Any], dict[str, Any]]:
        return _finished_summary(record, await self.house.competition(record))

    async def sync(self) -> None:
        """Bring the entries up to date with the house (and, the first time, the store)."""
        async with self._lock:
            house = self.house
            if not self._loaded:
                self._loaded = True
                await self._load()
            while self._ended:  # in the order they ended, those before the load included
                record, marks = self._ended.popleft()
                self._watched.discard(record.auction_id)
                self._put(*_ended_summary(record, marks))
            if self._ended_elsewhere:
                await self._read_ended_elsewhere()
            for auction_id, live in house.live.items():
                if auction_id not in self._watched:
                    self._watched.add(auction_id)
                    self._put(_open_summary(live))
                else:
                    entry = self.entries.get(auction_id)
                    commits = len(live.auction.commitments)
                    if entry is not None and entry["commits"] != commits:
                        self._put({**entry, "commits": commits})
            now = house.clock.monotonic()
            remote = {} if house.peers is None else house.peers.remote
            for auction_id, (_owner, text) in list(remote.items()):
                if auction_id not in self._watched:
                    self._watched.add(auction_id)
                    self._put(_announced_summary(text))
            if remote and now - self._remote_counted >= self.remote_count_s:
                self._remote_counted = now
                await self._count_remote_commits(list(remote))
            running = house.live.keys() | remote.keys()
            for auction_id in [a for a in self._watched if a not in running]:
                if auction_id not in house.closed:  # stopped before its end was stored
                    if auction_id in self.entries:
                        self._remove(auction_id)
                    self._watched.discard(auction_id)
            if now - self._prune_checked >= self.prune_check_s:
                self._prune_checked = now
                await self._drop_pruned()

    async def _load(self) -> None:
        """Summarize the store's latest ended auctions (those this process has just
        finished excepted: they are summarized from memory), :data:`LOAD_CHUNK` at a
        time."""
        ended = {record.auction_id for record, _ in self._ended}
        latest = [
            stored
            for stored in await self._latest_stored()
            if stored.auction_id not in self.house.live and stored.auction_id not in ended
        ]
        for start in range(0, len(latest), LOAD_CHUNK):
            await self._put_stored(latest[start : start + LOAD_CHUNK])

    async def _read_ended_elsewhere(self) -> None:
        """Summarize the auctions other processes ended since the last sync, read from
        the store :data:`LOAD_CHUNK` at a time (one gone from it already is dropped)."""
        ended = list(dict.fromkeys(self._ended_elsewhere))
        self._ended_elsewhere.clear()
        for start in range(0, len(ended), LOAD_CHUNK):
            chunk = ended[start : start + LOAD_CHUNK]
            found = {r.auction_id: r for r in await self.house.store.auctions(chunk)}
            stored = []
            for auction_id in chunk:  # in the order their ends were heard
                self._watched.discard(auction_id)
                record = found.get(auction_id)
                if record is not None and record.status != "open":
                    stored.append(record)
                elif auction_id in self.entries:
                    self._remove(auction_id)
            await self._put_stored(stored)

    async def _put_stored(self, records: list[AuctionRecord]) -> None:
        """Summarize ended ``records`` from their bid events' marks (one read); one whose
        events a prune took since it was read is dropped."""
        marks = await self.house.store.event_marks([r.auction_id for r in records])
        for record in records:
            stored = record.competition or {}
            got = marks.get(record.auction_id, [])
            if is_competition_view(stored) and len(got) < events_covered(stored):
                if record.auction_id in self.entries:
                    self._remove(record.auction_id)
                continue
            self._put(*_ended_summary(record, got))

    async def _count_remote_commits(self, auction_ids: list[str]) -> None:
        """Recount the commits of other processes' open auctions (accepted ones: one a
        bidder, as an auction keeps them) from the store."""
        marks = await self.house.store.event_marks(auction_ids)
        for auction_id in auction_ids:
            entry = self.entries.get(auction_id)
            if entry is None or entry["status"] != "open":
                continue
            committed = {b for b, kind, ok in marks.get(auction_id, []) if kind == "commit" and ok}
            if entry["commits"] != len(committed):
                self._put({**entry, "commits": len(committed)})

    async def _latest_stored(self) -> list[AuctionRecord]:
        """The store's :data:`RECENT` latest ended auctions, earliest end first, read
        :data:`LOAD_CHUNK` at a time from the latest back."""
        found: dict[str, AuctionRecord] = {}
        ended_by = None
        while len(found) < RECENT:
            chunk = await self.house.store.latest_ended(LOAD_CHUNK, ended_by)
            new = [record for record in chunk if record.auction_id not in found]
            if not new:
                break
            found.update((record.auction_id, record) for record in new)
            ended_by = chunk[0].finished_at_us  # (ends at that time again: seen, skipped)
        latest = sorted(found.values(), key=lambda record: record.finished_at_us or 0)
        return latest[-RECENT:]

    async def _drop_pruned(self) -> None:
        """Forget the finished auctions a prune removed (``service.retention_days``, in
        this process or another, or ``auctions prune``), so no page links to them for
        more than :data:`PRUNE_CHECK_S`.

        A prune takes the auctions that ended first, and the finished entries are kept
        in the order they finished: the check reads from the oldest and stops at the first
        still stored (one read a check while nothing is pruned)."""
        for auction_id, entry in list(self.entries.items()):
            if entry["status"] == "open":
                continue
            if await self.house.store.auction(auction_id) is not None:
                return
            self._remove(auction_id)

    def page(self, since: int, epoch: str | None = None) -> dict[str, Any]:
        """What changed after ``since``: the summaries (newest change first) and the ids
        removed. The whole feed instead (``reset``: the page starts over) at ``since=0``,
        for another ``epoch``, or when more than :data:`PAGE` changed or the removals are
        no longer known (without an ``epoch``, ``since`` is trusted if not ahead)."""
        reset = since == 0 or since > self.seq or since < self._forgotten
        reset = reset or (epoch is not None and epoch != self.epoch)
        changed: list[dict[str, Any]] = []
        for entry in reversed(self.entries.values()):  # latest change first
            if (entry["seq"] <= since and not reset) or len(changed) > PAGE:
                break
            changed.append(entry)
        reset = reset or len(changed) > PAGE
        removed: list[str] = []
        if not reset:
            for seq, auction_id in reversed(self._removed):
                if seq <= since:
                    break
                removed.append(auction_id)
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "server_time": datetime.now(UTC).isoformat(),
            "reset": reset,
            "auctions": changed[:PAGE],
            "removed": removed,
        }

    async def bidders(self) -> list[dict[str, Any]]:
        """Per bidder seen in the recent finished auctions: counts and penalty state."""
        counts: dict[str, dict[str, int]] = {}
        for tally in self.tallies.values():
            for key, field in _TALLIES:
                for bidder_id in tally[key]:
                    counts.setdefault(bidder_id, {"auctions": 0, "wins": 0, "no_reveals": 0})
                    counts[bidder_id][field] += 1
        rows = []
        for bidder_id in sorted(counts):
            c = counts[bidder_id]
            state = await self.house.bidder_state(bidder_id)
            status = self.house.status(state) if state is not None else {}
            rows.append(
                {
                    "bidder_id": bidder_id,
                    **c,
                    "win_share": c["wins"] / c["auctions"] if c["auctions"] else 0.0,
                    "no_reveal_share": c["no_reveals"] / c["auctions"] if c["auctions"] else 0.0,
                    "no_reveal_rate": status.get("no_reveal_rate"),
                    "no_reveal_threshold": status.get("no_reveal_threshold"),
                    "blocked": status.get("blocked", False),
                    "blocked_until": status.get("blocked_until"),
                    "block_count": status.get("block_count", 0),
                }
            )
        return rows


def _feed(request: Request) -> Feed:
    state = request.app.state
    feed: Feed | None = getattr(state, "explorer_feed", None)
    if feed is None:
        feed = state.explorer_feed = Feed(state.house)
    return feed


# Not in the OpenAPI schema: the explorer's JSON is documented in docs/phantoms.md.
router = APIRouter(include_in_schema=False)
#: Auction ids the explorer looks up (the service makes hex ids): anything else is
#: unknown without a query (a NUL byte would make PostgreSQL fail).
_AUCTION_ID: Final = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")


def _shell() -> HTMLResponse:
    return HTMLResponse(
        (_STATIC / "index.html").read_text("utf-8"), headers={"Cache-Control": "no-cache"}
    )


@router.get("/", response_class=HTMLResponse)
async def explorer_home() -> HTMLResponse:
    """The live feed of auctions."""
    return _shell()


@router.get("/auctions/{auction_id}", response_class=HTMLResponse)
async def explorer_auction(auction_id: str) -> HTMLResponse:
    """One auction's page (rendered in the browser from the public documents)."""
    del auction_id
    return _shell()


@router.get("/bidders", response_class=HTMLResponse)
async def explorer_bidders() -> HTMLResponse:
    """The bidders' record."""
    return _shell()


@router.get("/explorer/static/{name}")
async def explorer_static(name: str) -> Response:
    """The explorer's scripts and style sheet (shipped in the package)."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    resource = _STATIC / name
    if "/" in name or name.startswith(".") or suffix not in _MEDIA or not resource.is_file():
        return JSONResponse(
            {"status": "rejected", "reason": "not_found", "detail": f"no explorer file {name!r}"},
            status_code=404,
        )
    return Response(
        resource.read_bytes(), media_type=_MEDIA[suffix], headers={"Cache-Control": "no-cache"}
    )


@router.get("/explorer/api/feed")
async def explorer_feed(
    request: Request,
    since: Annotated[int, Query(ge=0, description="Only what changed after this seq")] = 0,
    epoch: Annotated[
        str | None, Query(max_length=64, description="The epoch of the answer `since` is from")
    ] = None,
    wait: Annotated[
        float,
        Query(ge=0, le=WAIT_MAX_S, description="Seconds to wait for a change when none"),
    ] = 0.0,
) -> JSONResponse:
    """Open auctions and the latest finished ones (public summaries, newest change
    first): what changed after ``since``, or all of them; with ``wait``, once something
    has changed (or an auction opened or ended, or ``wait`` seconds passed)."""
    feed = _feed(request)
    await feed.wait(since, epoch, wait)
    return JSONResponse(feed.page(since, epoch))


@router.get("/explorer/api/auctions/{auction_id}")
async def explorer_summary(request: Request, auction_id: str) -> JSONResponse:
    """One auction's public summary (open or ended)."""
    feed = _feed(request)
    await feed.sync()
    entry = feed.entries.get(auction_id)
    if entry is None:
        known = _AUCTION_ID.fullmatch(auction_id) is not None
        record = await feed.house.auction_record(auction_id) if known else None
        if record is None:
            return JSONResponse(
                {
                    "status": "rejected",
                    "reason": "unknown_auction",
                    "detail": f"auction_id={auction_id!r}: no such auction",
                },
                status_code=404,
            )
        if record.status == "open":
            live = feed.house.live.get(auction_id)
            entry = (
                _open_summary(live) if live is not None else {**_order(record), "status": "open"}
            )
        else:
            entry = (await feed._summary(record))[0]
    return JSONResponse({"server_time": datetime.now(UTC).isoformat(), **entry})


@router.get("/explorer/api/bidders")
async def explorer_bidders_api(request: Request) -> JSONResponse:
    """Per bidder in the recent auctions: entered, wins, no-reveals, penalty state."""
    feed = _feed(request)
    await feed.sync()
    return JSONResponse({"recent_auctions": len(feed.tallies), "bidders": await feed.bidders()})
