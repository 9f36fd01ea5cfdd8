"""The auction house among other server processes (``serve --workers N``, PostgreSQL).

The design is in :mod:`phantom_auction.service.notify`: an auction is run by the
process that opened it (its owner); pushes fan out to every process's bidders; a
commit or reveal reaching another process is forwarded to the owner, and the bidder is
acknowledged with the owner's verdict once the owner has made it durable.
:class:`HousePeers` is the house's side of that: what it publishes when its own
auctions open, take a commit, reveal and end, and what it does when another process
speaks or stops.

Nonces: the process a bidder is connected to sees its messages in the order sent, so
it carries the nonce rule. A forwarded commit takes along the last nonce this process
knows the bidder used (the owner raises its own to it before judging), and an accepted
forwarded commit raises this process's; the owners also publish the accepted nonces at
each reveal window. Publishing each nonce as it is accepted would not do: a commit
forwarded to one owner can arrive after a later commit of the same bidder taken by
another, and would be refused although sent in order. For the same reason the owner
judges forwarded commits and applies published nonces in the order it hears them
(:meth:`HousePeers._in_order`): a forward heard before a reveal window's nonces (one
NOTIFY batch after a delay, or while the bidder's registration is read from the store)
is judged before they raise the registry. What is left open: a bidder reusing a nonce
within a forward's round trip (about a millisecond), or over two connections to two
processes (see docs/service.md, "Several processes").
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...engine import AuctionResult, SealedBid
from ...errors import PhantomAuctionError
from ..notify import OWNER_GONE_DETAIL, ForwardedVerdict, PeerLink
from ..penalties import PenaltyState
from ..schemas import CommitBody, RevealBody
from ..store import AuctionRecord, PenaltyUpdate, Store, compact_json
from ..ws_fastpath import text_frame
from .auction_house import CLOSED_REMEMBERED
from .documents import announcement_document
from .live import Verdict
from .recovery import rebuild_auction, stored_rules

if TYPE_CHECKING:
    from ...config import AuctionConfig
    from .auction_house import AuctionHouse
    from .sessions import BidderState

__all__ = ["HousePeers"]

_log = logging.getLogger(__name__)


class HousePeers:
    """Fan-out and forwarding for one :class:`~.auction_house.AuctionHouse`."""

    def __init__(self, house: AuctionHouse, database_url: str) -> None:
        self.house = house
        self.link = PeerLink(database_url, self._heard, self._gone, house.lost_database)
        #: Other processes' running auctions: id -> (owner, ``auction_opened`` text).
        self.remote: dict[str, tuple[int, str]] = {}
        #: Owners found stopped: messages for their auctions are answered at once.
        self.gone: set[int] = set()
        #: Waiters for the end of another process's auction (idempotent retries).
        self._ends: dict[str, asyncio.Future[None]] = {}
        #: Forwarded messages and published nonces heard but not yet applied (a bidder's
        #: registration is being read from the store), in the order heard.
        self._backlog: deque[tuple[str, dict[str, Any]]] = deque()
        self._draining = False
        #: Called with each auction another process ended, once its end is durable (or
        #: this one ended for a stopped process): the explorer's feed reads it then.
        self.end_listeners: list[Callable[[str], None]] = []
        #: Called with each auction another process opened, as its announcement is heard.
        self.open_listeners: list[Callable[[str], None]] = []

    @property
    def me(self) -> int:
        """This process's owner id (stored with every auction it opens)."""
        return self.link.me

    async def start(self) -> None:
        await self.link.start()

    async def close(self) -> None:
        await self.link.close()
        for end in self._ends.values():
            if not end.done():
                end.set_result(None)

    async def learn_running(self, config: AuctionConfig) -> None:
        """Take in the other processes' auctions that were already running when this one
        started listening (a restarted worker): from the store, each announcement rebuilt
        as its owner made it, so that ``GET /v1/auctions/open`` and the explorer list
        them. Called after recovery, so the owners of those still open are running."""
        configs: dict[str, AuctionConfig] = {}
        running = []
        for record in await self.house.store.open_auctions():
            owner = record.engine_params.get("owner")
            if not isinstance(owner, int) or owner == self.me:
                continue
            try:
                auction = rebuild_auction(record, stored_rules(config, record, configs))
            except PhantomAuctionError as exc:  # its owner runs it; only the listing lacks it
                _log.error("auction %s of process %x: %s", record.auction_id, owner, exc)
                continue
            running.append((record.auction_id, owner, announcement_document(auction)))
        for auction_id, owner, announcement in running:
            # Not one whose end was heard while the store was read.
            if auction_id not in self.house.closed:
                self.remote.setdefault(auction_id, (owner, compact_json(announcement)))

    async def orphaned(self, record: AuctionRecord) -> bool:
        """Whether ``record`` (open in the store) belongs to no running process."""
        return not await self.link.owner_alive(record.engine_params.get("owner"))

    # ------------------------------------------------------------------ this process's auctions

    def opened(self, auction_id: str, announcement: str) -> None:
        self.link.publish("opened", {"a": auction_id, "t": announcement})

    def logged_in(self, bidder_id: str, started_ns: int) -> None:
        """A bidder's WebSocket session started here: older ones elsewhere are closed."""
        self.link.publish("login", {"b": bidder_id, "t": started_ns})

    def reveal_open(self, auction_id: str, text: str, commitments: Mapping[str, SealedBid]) -> None:
        # The accepted commits' nonces travel along: every process keeps the nonce rule.
        nonces = {bidder_id: sealed.nonce for bidder_id, sealed in commitments.items()}
        self.link.publish_chunked("reveal_open", {"a": auction_id, "t": text}, "n", nonces)

    def closed(
        self,
        result: AuctionResult,
        status: str,
        committed: Mapping[str, SealedBid],
        penalties: Sequence[PenaltyUpdate],
    ) -> None:
        """An auction this process ended (its own, or a stopped process's)."""
        ended = {
            "a": result.auction_id,
            "s": status,
            "o": str(result.outcome),
            "p": result.price,
            "i": result.improvement_bps,
            "f": {
                fill.bidder_id: [fill.volume, fill.price]
                for fill in result.fills
                if fill.bidder_id is not None
            },
            "u": list(result.unrevealed),
        }
        self.link.publish_chunked("closed", ended, "c", dict.fromkeys(committed, 1))
        if penalties:
            states = {
                update.bidder_id: [
                    update.penalty.no_reveal_rate,
                    update.penalty.blocked_until_us,
                    update.penalty.block_count,
                    update.penalty.reason,
                ]
                for update in penalties
            }
            self.link.publish_chunked("penalties", {}, "b", states)

    # ------------------------------------------------------------------ other processes' auctions

    def owner_of(self, auction_id: str) -> int | None:
        """The process running ``auction_id`` if it is another one and known to run."""
        found = self.remote.get(auction_id)
        return None if found is None else found[0]

    async def forward(
        self,
        owner: int,
        kind: str,
        bidder_id: str,
        body: CommitBody | RevealBody,
        auction_id: str,
        transport: str,
        last_nonce: int | None = None,
    ) -> Verdict:
        """Have ``owner`` take the message; its verdict once it is durable there.
        ``last_nonce``: the bidder's last accepted nonce known here when it came (the
        owner raises its own to it, so that the nonce rule follows the bidder's order)."""
        if owner in self.gone:
            self.house.metrics.count_rejection("store_unavailable")
            return Verdict(kind, auction_id, False, "store_unavailable", OWNER_GONE_DETAIL)
        request: dict[str, Any] = {
            "kind": kind,
            "b": bidder_id,
            "a": auction_id,
            "tr": transport,
            # The HTTP body's fields (a WebSocket message adds type, ref, auction_id).
            "body": body.model_dump(mode="json", include=set(_model(kind).model_fields)),
        }
        nonces = self.house.nonces
        if isinstance(body, CommitBody):
            request["ln"] = last_nonce
        answer = await self.link.forward(owner, request)
        if answer.reason is not None and not answer.from_owner:  # the owner counted its own
            self.house.metrics.count_rejection(answer.reason)
        elif isinstance(body, CommitBody) and answer.accepted:
            nonces.restore(bidder_id, body.nonce)
        return Verdict(kind, auction_id, answer.accepted, answer.reason, answer.detail)

    async def wait_for_end(self, auction_id: str, timeout_s: float, store: Store) -> None:
        """Until another process's ``auction_id`` ends (or ``timeout_s``)."""
        end = self._ends.get(auction_id)
        if end is None:
            end = self._ends[auction_id] = asyncio.get_running_loop().create_future()
        try:
            record = await store.auction(auction_id)  # it may have ended before we listened
            if record is not None and record.status == "open":
                await asyncio.wait_for(asyncio.shield(end), timeout_s)
        except TimeoutError:
            pass  # the caller reads the stored record as it stands
        finally:
            if self._ends.get(auction_id) is end:
                del self._ends[auction_id]

    def open_announcements(self) -> list[str]:
        """``auction_opened`` texts of the other processes' running auctions."""
        return [text for _, text in self.remote.values()]

    # ------------------------------------------------------------------ hearing

    def _heard(self, kind: str, message: dict[str, Any]) -> None:
        house = self.house
        identities = house.identities
        if kind == "opened":
            text = message["t"]
            self.remote[message["a"]] = (message["w"], text)
            identities.broadcast(text, text_frame(text))
            for listener in self.open_listeners:
                listener(message["a"])
        elif kind == "login":
            state = house.bidders.get(message["b"])
            session = None if state is None else state.session
            if session is not None and session.started_ns < message["t"]:
                session.replaced()  # a newer login elsewhere, as one here would
            untold = house.untold(message["b"])
            if untold:  # ends it missed, for the process it logged in at
                self.link.publish_chunked("untold", {"b": message["b"]}, "t", untold)
        elif kind == "untold":
            state = house.bidders.get(message["b"])
            if state is not None and state.session is not None:
                for text in message["t"].values():
                    state.session.send(text)
        elif kind == "told":
            house.told(message["a"], message["b"])
        elif kind == "reveal_open":
            nonces: dict[str, int] = message["n"]
            self._in_order("nonces", nonces)
            text = message["t"]
            identities.push(nonces, text, text_frame(text))
        elif kind == "closed":
            self._closed(message)
        elif kind == "penalties":
            self._penalties(message["b"])
        elif kind == "forward":
            self._in_order("forward", message)
        else:
            _log.warning("unknown notification %r from process %s", kind, message.get("w"))

    def ended(self, statuses: Mapping[str, str]) -> None:
        """Another process's auctions have ended, or this one ended a stopped process's
        (status by id)."""
        ended = self.house.closed
        for auction_id, status in statuses.items():
            self.remote.pop(auction_id, None)
            ended[auction_id] = status
            if len(ended) > CLOSED_REMEMBERED:
                ended.popitem(last=False)
            end = self._ends.pop(auction_id, None)
            if end is not None and not end.done():
                end.set_result(None)
            for listener in self.end_listeners:
                listener(auction_id)

    def _gone(self, owner: int) -> None:
        """``owner``'s process has stopped: forget its auctions, end them from the store."""
        if owner in self.gone:
            return
        _log.warning("process %x has stopped: ending its open auctions", owner)
        self.gone.add(owner)
        for auction_id, (running, _text) in list(self.remote.items()):
            if running == owner:
                del self.remote[auction_id]
        self.house._spawn(self.house.recover_stopped())

    def _closed(self, message: dict[str, Any]) -> None:
        auction_id = message["a"]
        self.ended({auction_id: message["s"]})
        fills: dict[str, list[float]] = message["f"]
        unrevealed = set(message["u"])
        told = {}
        for bidder_id in message["c"]:
            state = self.house.bidders.get(bidder_id)
            if state is None or state.session is None:
                continue
            told[bidder_id] = 1
            volume, price = fills.get(bidder_id, (0.0, None))
            closed = {
                "type": "auction_closed",
                "auction_id": auction_id,
                "status": message["s"],
                "outcome": message["o"],
                "price": message["p"],
                "improvement_bps": message["i"],
                "filled": volume,
                "fill_price": price,
                "revealed": bidder_id not in unrevealed,
            }
            state.session.send(compact_json(closed))
        if told:  # the process that ended it need not keep them for a next login
            self.link.publish_chunked("told", {"a": auction_id}, "b", told)

    def _penalties(self, states: dict[str, list[Any]]) -> None:
        house = self.house
        for bidder_id, (rate, until_us, count, reason) in states.items():
            state = house.bidders.get(bidder_id)
            if state is None:
                continue
            blocked_now = count > state.penalty.block_count
            state.penalty = PenaltyState(rate, until_us, count, reason)
            if blocked_now and state.session is not None:
                state.session.send(compact_json({"type": "blocked", **house.status(state)}))

    def _in_order(self, kind: str, message: dict[str, Any]) -> None:
        """Apply a forwarded message or a reveal window's nonces in the order heard.

        Both move the nonce registry: a forward heard before nonces published later
        must be judged first, or its nonce (sent before theirs) would be refused as
        replayed. Done at once when nothing waits; a forward whose bidder must first be
        read from the store queues itself and everything heard after it."""
        if not self._backlog and self._apply_now(kind, message):
            return
        self._backlog.append((kind, message))
        if not self._draining:
            self._draining = True
            self.house._spawn(self._drain())

    def _apply_now(self, kind: str, message: dict[str, Any]) -> bool:
        """Apply without waiting; False if a forward's bidder is not loaded."""
        if kind == "nonces":
            for bidder_id, nonce in message.items():
                self.house.nonces.restore(bidder_id, nonce)
            return True
        state = self.house.identities.cached_bidder_state(message["b"])
        if state is None:
            return False
        self._take_forwarded(message, state)
        return True

    async def _drain(self) -> None:
        try:
            while self._backlog:
                kind, message = self._backlog[0]
                try:
                    if not self._apply_now(kind, message):
                        state = await self.house.identities.bidder_state(message["b"])
                        self._take_forwarded(message, state)
                except Exception as exc:
                    _log.exception("%s from process %s failed", kind, message.get("w"))
                    if kind == "forward":
                        verdict = ForwardedVerdict(False, "store_unavailable", f"not taken: {exc}")
                        self._refuse(message, verdict)
                finally:
                    self._backlog.popleft()
        finally:
            self._draining = False

    def _take_forwarded(self, request: dict[str, Any], state: BidderState | None) -> None:
        """Judge another process's bidder message here, where its auction lives (now, in
        the order heard), and answer once the verdict is durable."""
        house = self.house
        kind, auction_id = request["kind"], request["a"]
        if state is None:
            self._refuse(request, ForwardedVerdict(False, "bad_signature", "unknown bidder"))
            return
        try:
            body = _model(kind).model_validate(request["body"])
            last = request.get("ln")
            if isinstance(last, int) and not isinstance(last, bool) and last >= 0:
                house.nonces.restore(state.bidder_id, last)
            transport = "http" if request["tr"] == "http" else "ws"
            taken = house.take_forwarded(kind, state, body, auction_id, transport)
        except Exception as exc:
            _log.exception("forwarded %s for %s failed", kind, auction_id)
            self._refuse(request, ForwardedVerdict(False, "store_unavailable", f"not taken: {exc}"))
            return

        def answer(done: asyncio.Future[Verdict]) -> None:
            if done.cancelled() or done.exception() is not None:
                _log.error("forwarded %s for %s failed: %r", kind, auction_id, done)
                self._refuse(request, ForwardedVerdict(False, "store_unavailable", "not taken"))
                return
            taken = done.result()  # counted by the bid path
            self.link.answer(request, ForwardedVerdict(taken.accepted, taken.reason, taken.detail))

        taken.add_done_callback(answer)

    def _refuse(self, request: dict[str, Any], verdict: ForwardedVerdict) -> None:
        """Answer a forwarded message with a refusal made here, counted here (the sender
        counts only what its link made itself)."""
        if verdict.reason is not None:
            self.house.metrics.count_rejection(verdict.reason)
        self.link.answer(request, verdict)


def _model(kind: str) -> type[CommitBody] | type[RevealBody]:
    return CommitBody if kind == "commit" else RevealBody
