"""The bidder SDK: run any simulator strategy against a live phantom-auction server.

One concept past 600 lines: a bidder's side of the wire protocol (connect and log in,
commit, reveal, record acks, reconnect), with the ``websockets`` connection it runs on
and the HTTP request signing the same bidder uses without a socket.

    from phantom_auction.client import BidderClient
    report = BidderClient("http://127.0.0.1:8080", "mm-1", private_key_hex).run(strategy)

``strategy`` is anything with the seed's ``generate_bid(baseline_price,
baseline_quantity, market, rng)`` method (every simulator strategy), or a plain function
with that signature. For each ``auction_opened`` push the client asks the strategy for
a bid (sent at the strategy's ``timestamp``, ms after the auction opened), seals it
with a fresh salt and the next nonce, signs the commit with the bidder's Ed25519 key,
and reveals it as soon as the collection window is over: at the window's end by its
own clock, or on the server's ``reveal_open`` push if that comes first (a reveal the
server found early is sent again on the push). A reveal does not wait for its
commit's ack (in a 20 ms window one slow durable write would cost every reveal behind
it), but a commit already refused is not revealed; a lost connection's unacknowledged commits (while
collecting) and reveals are sent again on the next one, as are messages answered
``store_unavailable``. Every ack is recorded. A strategy that raises loses that auction
only (logged), not the run, as does one proposing what is not a bid (counted in
``report.strategy_errors``). A removed bidder's run ends with :class:`BidderRemovedError`;
one that cannot reach the server is warned about, and with ``give_up_after_s`` ends
with :class:`ServerUnreachableError`.

:func:`signed_headers` signs plain HTTP requests for bidders that do not use the
WebSocket. Needs the ``service`` extra (``websockets``, ``cryptography``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import inspect
import itertools
import json
import logging
import math
import ssl
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ._extras import require
from .engine import AuctionAnnouncement, ImprovementBid, PhantomModel
from .errors import InvalidBidParameters, PhantomAuctionError
from .simulation.live import StrategyBidder
from .simulation.strategies.base import AuctionView

require("websockets", "service")
require("cryptography", "service")
require("nacl", "service")
require("orjson", "service")

import orjson  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import (  # noqa: E402
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)
from websockets.frames import Frame, Opcode  # noqa: E402
from websockets.protocol import State  # noqa: E402

from .wire import (  # noqa: E402
    BIDDER_ID_HEADER,
    BIDDER_SIGNATURE_HEADER,
    BIDDER_TIMESTAMP_HEADER,
    BIDDER_WS_PATH,
    Signer,
    commit_message,
    commit_signing_bytes,
    load_private_key,
    login_message,
    login_signing_bytes,
    request_signing_bytes,
    reveal_message,
    sign,
    status_message,
)

__all__ = [
    "Ack",
    "BidderClient",
    "BidderLoginError",
    "BidderRemovedError",
    "BidderReport",
    "ServerUnreachableError",
    "signed_headers",
]

_log = logging.getLogger(__name__)
#: Sent this long after the collection window ends (own clock), unless the server's
#: ``reveal_open`` push comes first: the reveal does not wait for a round trip.
REVEAL_MARGIN_S = 0.0005
_MAX_ROUNDS = 4096
#: How many times a commit or a reveal answered ``store_unavailable`` is sent again.
_STORE_RETRIES = 3
#: Close reasons (code 1008, after an ``error`` push) that end the session for good: the
#: same key would only be refused at the next login, or (``session_replaced``) another
#: login of this bidder took over, and logging in again would take turns with it.
_FATAL_REASONS = frozenset({"bidder_removed", "bidder_key_changed", "session_replaced"})
#: Without a logged-in session this long (s), the client says so at WARNING (it retries
#: at INFO before: a server restarting looks the same), then again every
#: :data:`UNREACHABLE_REPEAT_S` while it lasts.
UNREACHABLE_WARN_S = 10.0
UNREACHABLE_REPEAT_S = 60.0
#: With ``max_auctions``, an auction whose ``auction_closed`` has not come this long (s)
#: after its reveal window counts as over (checked every ``_SWEEP_S``).
CLOSE_GRACE_S = 30.0
_SWEEP_S = 1.0
#: A session the server closes cleanly sooner than this (s) keeps the reconnect back-off.
_STEADY_S = 5.0


#: An ack as kept during a run: the fields of :class:`Ack`, in order.
_AckRow = tuple[str | int | None, str, str | None, str, str | None, str | None, float]


class BidderRemovedError(PhantomAuctionError):
    """The server ended the session for good (``reason``: ``bidder_removed``,
    ``bidder_key_changed``, or ``session_replaced``: the same bidder logged in on another
    connection, e.g. a second process with this key): the client does not reconnect.
    ``report``: the run's report up to then."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        self.report: BidderReport | None = None
        super().__init__(f"session ended by the server: {reason}: {detail}")


class ServerUnreachableError(PhantomAuctionError):
    """No session could be opened for ``give_up_after_s`` seconds (``down_s``: how long;
    ``last_error``: the last attempt's failure). ``report``: the run's report up to then."""

    def __init__(self, url: str, down_s: float, last_error: str) -> None:
        self.url = url
        self.down_s = down_s
        self.last_error = last_error
        self.report: BidderReport | None = None
        super().__init__(f"no session with {url} for {down_s:.1f} s: {last_error}")


class BidderLoginError(PhantomAuctionError):
    """The server refused the login (``reason``: ``bad_signature``, ``malformed``, ...), or
    the URL can never serve it (``bad_url``, ``handshake_refused``, ``tls_failed``).
    ``report``: the run's report up to then (a refusal may come at a reconnect)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        self.report: BidderReport | None = None
        super().__init__(f"login refused: {reason}: {detail}")


@dataclass(frozen=True, slots=True)
class Ack:
    """The server's verdict on one commit or reveal, as received (``received_at``: unix s)."""

    ref: str | int | None
    kind: str
    auction_id: str | None
    status: str
    reason: str | None
    detail: str | None
    received_at: float


@dataclass(frozen=True, slots=True)
class BidderReport:
    """What one run did: counts, rejections by reason, wins and the latest acks.

    ``accepted`` and ``rejected`` count every ack; ``acks`` holds the client's
    ``keep_acks`` latest (every one with ``keep_acks=None``). ``unanswered``: messages
    sent without an ack (the connection dropped first); ``unsent``: messages the
    connection was gone for. ``reveals_late`` and ``reveals_after_window``: reveals that
    left this client more than half the reveal window after it opened, and after it had
    closed, by the client's own clock: a process too busy to reveal in time (the server
    refuses the second kind as ``outside_reveal_window``). ``strategy_errors``: auctions
    without a commit because the strategy raised or proposed no sendable bid (each logged
    at WARNING or above, naming the field and value). Units: ``filled_volume`` in token A;
    an ack's ``received_at`` in unix seconds.
    """

    bidder_id: str
    auctions_seen: int
    commits_sent: int
    reveals_sent: int
    accepted: int
    rejected: dict[str, int]
    unanswered: int
    unsent: int
    auctions_won: int
    filled_volume: float
    acks: tuple[Ack, ...]
    status: dict[str, Any] | None
    reveals_late: int = 0
    reveals_after_window: int = 0
    strategy_errors: int = 0


@dataclass(slots=True)
class _Round:
    """This bidder's part in one auction (``reveal``: the reveal's message, made with the
    commit so that the window's opening only sends it; ``timer``: the commit or reveal
    due next)."""

    announcement: AuctionAnnouncement
    bid: ImprovementBid | None = None
    #: none | sent (waiting for its ack) | accepted | rejected | unknown (written, but the
    #: connection was lost before its ack) | unsent (no connection took it)
    commit: str = "none"
    reveal_sent: bool = False
    reveal_open: bool = False
    reveal_retried: bool = False
    reveal: tuple[int, bytes] | None = None
    timer: asyncio.TimerHandle | None = None
    #: The signed commit as sent (``(ref, message)``), sent again after a reconnect.
    commit_sent: tuple[int, bytes] | None = None
    #: The strategy's proposal, sealed again (fresh nonce) after ``store_unavailable``.
    proposal: Any = None
    #: The commit was sent again after a reconnect: a refusal as already known
    #: (``duplicate_commit``, ``replayed_nonce``) may mean the first one was taken.
    commit_resent: bool = False
    reveal_answered: bool = False
    #: Sends again after ``store_unavailable`` (bounded by ``_STORE_RETRIES``).
    commit_retries: int = 0
    reveal_retries: int = 0

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


#: Unsent bytes above which a message waits (``ws.send``'s flow control) instead of
#: being written at once by :meth:`_Connection.send_now`.
_SEND_NOW_MAX_BUFFERED = 1 << 16


class _Connection(ClientConnection):
    """``websockets``' client connection with a shorter path for a run's messages.

    - With ``on_text`` set, each whole text message is handed to it as it is parsed
      (``process_event``), instead of going through the receive queue, the async
      iterator and a task wake-up. Only while that queue is empty, so that messages
      queued before (or a fragmented one) are still read in order through ``recv``.
    - :meth:`send_now` writes a text message without ``send``'s coroutine machinery
      when nothing stands in the way (open, no fragmented send going on, little unsent).

    With 20 bidders on one event loop these were about a fifth of the bidders' CPU.
    Everything else (handshake, pings, close) is ``websockets``' own.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_text: Any = None
        #: Messages waiting for ``send`` (with their refs), in order: see ``BidderClient._send``.
        self.outbox: deque[tuple[int, bytes]] = deque()

    def process_event(self, event: Any) -> None:
        on_text = self.on_text
        if (
            on_text is not None
            and self.response is not None
            and isinstance(event, Frame)
            and event.opcode is Opcode.TEXT
            and event.fin
            and not self._receive_queued()
        ):
            on_text(event.data)
            return
        super().process_event(event)

    def _receive_queued(self) -> bool:
        # The receive queue's frames (websockets 14-17); unknown internals: never direct.
        frames = getattr(self.recv_messages, "frames", None)
        try:
            return frames is None or len(frames) > 0
        except TypeError:
            return True

    def send_now(self, data: bytes) -> bool:
        """Send ``data`` (UTF-8 JSON) as a text message now; False when it must go
        through ``send`` instead."""
        if (
            self.protocol.state is not State.OPEN
            or getattr(self, "send_in_progress", None) is not None
            or self.transport.get_write_buffer_size() > _SEND_NOW_MAX_BUFFERED
        ):
            return False
        self.protocol.send_text(data)
        try:
            self.send_data()
        except Exception:  # the socket is gone: as send() does, end the connection
            self.transport.abort()
        return True


def _closed(ws: Any) -> bool:
    """The connection is closing or closed (a stand-in without ``protocol``: open)."""
    protocol = getattr(ws, "protocol", None)
    return protocol is not None and protocol.state is not State.OPEN


def _refused_for_good(url: str, exc: InvalidStatus | InvalidURI) -> BidderLoginError | None:
    """The error to stop on when the WebSocket can never open at ``url``: a bad URL, or
    an HTTP 4xx answer to the upgrade (a wrong path, say) other than 408 and 429, which
    retrying cannot mend; None for what may pass (5xx: the server restarting)."""
    if isinstance(exc, InvalidURI):
        return BidderLoginError("bad_url", f"url={url!r}: {exc}")
    status = exc.response.status_code
    if 400 <= status < 500 and status not in (408, 429):
        return BidderLoginError(
            "handshake_refused",
            f"url={url!r}: the server answered HTTP {status} to the WebSocket upgrade "
            "(the service's bidder endpoint is /v1/bidders/ws)",
        )
    return None


_NO_FIELD = object()


def _check_proposal(proposal: Any, honour_timing: bool) -> None:
    """Raise naming the field and value when the strategy's proposal is not a bid the
    client can seal (a dict, a bare price, a price that is no number or not finite)."""
    fields = ("price", "quantity", "priority_fee", "timestamp")
    for field in fields if honour_timing else fields[:3]:  # without it, timestamp unused
        value: Any = getattr(proposal, field, _NO_FIELD)
        if value is _NO_FIELD:
            raise InvalidBidParameters(
                "bid",
                proposal,
                f"has no {field}: a strategy returns None (no bid) or an object with "
                "price, quantity, timestamp and priority_fee, such as phantom_auction.Bid",
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidBidParameters(f"bid.{field}", value, "must be a number") from None
        if not math.isfinite(number):
            raise InvalidBidParameters(f"bid.{field}", value, "must be finite")


def _tls_refused(url: str, exc: OSError) -> BidderLoginError | None:
    """The error to stop on when TLS can never work at ``url``: an untrusted certificate,
    or a server that does not speak TLS (``https://`` given for an ``http://`` server);
    retried, these were one INFO line each, forever. None for other failures."""
    if isinstance(exc, ssl.SSLCertVerificationError) or (
        isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER"
    ):
        return BidderLoginError(
            "tls_failed",
            f"url={url!r}: {exc} (a server without TLS is reached with http://, not https://)",
        )
    return None


def _loop_running() -> bool:
    """Whether this thread runs an event loop (Jupyter's, an async app's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _check_signature(strategy: Any) -> None:
    """Refuse a ``generate_bid`` that cannot take ``(baseline_price, baseline_quantity,
    market, rng)``: it raised in every auction, each one logged, none saying why."""
    try:
        signature = inspect.signature(strategy.generate_bid)
    except ValueError:  # no signature to read (a builtin): called as it is
        return
    known = {k: None for k in ("view", "private_value") if k in signature.parameters}
    try:
        signature.bind(1.0, 1.0, None, None, **known)
    except TypeError as exc:
        raise TypeError(
            f"strategy={strategy!r}: generate_bid cannot be called as generate_bid("
            f"baseline_price, baseline_quantity, market, rng): {exc}"
        ) from None


class _FunctionStrategy:
    """A plain ``generate_bid(...)`` function seen as a strategy object."""

    def __init__(self, function: Any) -> None:
        self.generate_bid = function

    def __repr__(self) -> str:
        return f"_FunctionStrategy({getattr(self.generate_bid, '__name__', self.generate_bid)})"


_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def _ws_url(url: str) -> str:
    """The WebSocket URL for ``url``: its path, else the service's bidder endpoint."""
    if not isinstance(url, str):
        raise TypeError(f"url={url!r}: expected a string such as 'http://127.0.0.1:8080'")
    # Parsed, not cut at the first "/": a query string ("http://h:1?x=1") was taken as
    # the host and the endpoint's path pasted after it; "HTTP://" was refused.
    parts = urlsplit(url.strip())
    scheme = _WS_SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(
            f"url={url!r}: expected http(s):// or ws(s):// and host:port, "
            "such as 'http://127.0.0.1:8080'"
        )
    path = parts.path if parts.path not in ("", "/") else BIDDER_WS_PATH
    return f"{scheme}://{parts.netloc}{path}{'?' + parts.query if parts.query else ''}"


#: Phantom models as announced, parsed once (a server announces few): 2.2 us a push instead
#: of 7 us, in the bidders' process that bounds the service benchmark's rate.
_MODELS: dict[tuple[Any, ...], PhantomModel] = {}


def _phantom_model(doc: Any) -> PhantomModel | None:
    if doc is None:  # a server that does not state its terms
        return None
    key = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in doc.items())
    model = _MODELS.get(key)
    if model is None:
        if len(_MODELS) >= 256:
            _MODELS.clear()
        model = _MODELS[key] = PhantomModel.from_document(doc)
    return model


def _announcement(message: dict[str, Any]) -> AuctionAnnouncement:
    """An ``auction_opened`` push as the engine's announcement, with the auction's terms
    where the server states them (``phantom_policy``, ``rules``, ``phantom_model``)."""
    rules = message.get("rules") or {}
    min_participants = rules.get("min_participants")
    return AuctionAnnouncement(
        auction_id=str(message["auction_id"]),
        token_pair=(int(message["token_pair"][0]), int(message["token_pair"][1])),
        baseline_price=float(message["baseline_price"]),
        amount=float(message["amount"]),
        opened_at=datetime.fromisoformat(message["opened_at"]),
        commit_deadline=datetime.fromisoformat(message["commit_deadline"]),
        reveal_deadline=datetime.fromisoformat(message["reveal_deadline"]),
        phantom_commitment=bytes.fromhex(message["phantom_commitment"]),
        mechanism=str(message["mechanism"]),
        min_improvement_bps=float(message["min_improvement_bps"]),
        max_improvement_bps=float(message["max_improvement_bps"]),
        max_volume=float(message["max_volume"]),
        priority_fee_max_ratio=float(message["priority_fee_max_ratio"]),
        phantom_policy=message.get("phantom_policy"),
        min_participants=None if min_participants is None else int(min_participants),
        phantom_model=_phantom_model(message.get("phantom_model")),
    )


_last_stamp_ms = 0


def signed_headers(
    bidder_id: str,
    private_key: Ed25519PrivateKey | bytes | str,
    method: str,
    path: str,
    body: bytes | str = b"",
    *,
    timestamp_ms: int | None = None,
) -> dict[str, str]:
    """The ``X-Bidder-*`` headers that authenticate an HTTP request by a bidder.

    ``path``: the request's path (``/v1/bidders/me``); the server signs it without the
    query string, so a query or a whole URL given here is cut to the path. ``body``:
    exactly the bytes sent (text is taken as UTF-8, as ``httpx`` sends it). The server
    takes each signed request once, so the timestamp (unix ms) is kept strictly
    increasing within this process: two identical requests in the same millisecond
    still differ.
    """
    global _last_stamp_ms
    if isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(
            f"body: a {type(body).__name__}, expected the bytes sent (json.dumps(...).encode())"
        )
    # Signed with its query or as a whole URL, the request was refused as bad_signature,
    # which does not say why: the server checks the path alone.
    if "?" in path or "://" in path:
        path = urlsplit(path).path
    if not path.startswith("/"):
        raise ValueError(f"path={path!r}: the request's path from its '/', e.g. '/v1/bidders/me'")
    key = load_private_key(private_key)
    if timestamp_ms is None:
        timestamp_ms = _last_stamp_ms = max(int(time.time() * 1000), _last_stamp_ms + 1)
    stamp = timestamp_ms
    signature = sign(key, request_signing_bytes(bidder_id, method, path, stamp, bytes(body)))
    return {
        BIDDER_ID_HEADER: bidder_id,
        BIDDER_TIMESTAMP_HEADER: str(stamp),
        BIDDER_SIGNATURE_HEADER: signature,
    }


class BidderClient:
    """One bidder on a live server over the WebSocket (``/v1/bidders/ws``).

    ``url``: the server (``http://host:port`` or the WebSocket URL); ``private_key``:
    Ed25519, as a key object, 32 raw bytes, hex, base64 or PEM. ``market`` and ``rng``
    are passed to the strategy (defaults: the simulator's ``MarketConditions()`` and
    ``numpy.random.default_rng()``). With ``honour_timing`` (default) a commit is sent
    at the strategy's ``timestamp``; with ``reconnect`` a dropped connection is retried
    with back-off until the run ends, or, with ``give_up_after_s``, until no session
    could be opened for that many seconds (:class:`ServerUnreachableError`); after
    :data:`UNREACHABLE_WARN_S` without one it warns. ``keep_acks``: how many of the latest acks the
    report lists (``None``: every one; a bidder that runs for days at 100 auctions/s
    would otherwise keep ~17 million a day); its counts always cover every ack. A
    simulator strategy is told each auction's announced rules over ``view`` (what the
    announcement does not say: rivals, value distribution, phantom model; see
    :class:`~phantom_auction.simulation.live.StrategyBidder`). ``first_nonce``: the first
    commit's nonce (default: the time in microseconds, so that nonces keep increasing
    across runs and restarts; a fixed one is where every run starts again, and the
    server refuses a second run's commits as ``replayed_nonce``).

    The strategy's bid (``phantom_auction.Bid``, or None for no bid): ``price`` token B
    per token A, ``quantity`` token A, ``timestamp`` ms after the auction opened,
    ``priority_fee`` token units; the server takes an improvement of the announced
    ``min_improvement_bps``-``max_improvement_bps`` over the baseline price (bps: 1/10,000).
    """

    def __init__(
        self,
        url: str,
        bidder_id: str,
        private_key: Ed25519PrivateKey | bytes | str,
        *,
        market: Any = None,
        rng: np.random.Generator | None = None,
        honour_timing: bool = True,
        reconnect: bool = True,
        give_up_after_s: float | None = None,
        first_nonce: int | None = None,
        keep_acks: int | None = 10_000,
        view: AuctionView | None = None,
    ) -> None:
        # Checked for their type too: "5" failed on a comparison that named neither.
        if keep_acks is not None and (
            not isinstance(keep_acks, int) or isinstance(keep_acks, bool) or keep_acks < 0
        ):
            raise ValueError(f"keep_acks={keep_acks!r}: a count of acks (>= 0) or None")
        if give_up_after_s is not None and not (
            isinstance(give_up_after_s, int | float) and give_up_after_s > 0
        ):
            raise ValueError(f"give_up_after_s={give_up_after_s!r}: seconds (> 0) or None")
        self.url = _ws_url(url)
        self.bidder_id = bidder_id
        self.key = load_private_key(private_key)
        self._signer = Signer(self.key)
        self.market = market
        self.rng = rng
        self.honour_timing = honour_timing
        self.reconnect = reconnect
        self.give_up_after_s = give_up_after_s
        self.first_nonce = first_nonce
        self.view = view
        self.status: dict[str, Any] | None = None
        self.connected = asyncio.Event()
        # The latest acks, as plain tuples (turned into Ack objects by report()): tuples
        # of strings and numbers drop out of the garbage collector's sight where
        # dataclass instances would make each full collection longer. Bounded, so that
        # a long run's acks are freed as fast as they come: an ever-growing list made
        # the collector's young passes walk ~50,000 survivors (11-16 ms, stalling every
        # bidder on the loop past a 20 ms reveal window).
        self._acks: deque[_AckRow] = deque(maxlen=keep_acks)
        self._accepted = 0
        self._rejected: Counter[str] = Counter()
        self._pending: dict[str | int, tuple[str, str]] = {}
        self._rounds: dict[str, _Round] = {}
        #: Reveals waiting for their time, as ``(due, n, round)`` (a heap; ``due`` in unix
        #: seconds): see :meth:`_send_due_reveals`.
        self._due: list[tuple[float, int, _Round]] = []
        self._due_order = itertools.count()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ref = 0
        self._seen = 0
        #: The latest auctions announced (a login repeats those still taking commits).
        self._announced: OrderedDict[str, None] = OrderedDict()
        self._commits = 0
        self._reveals = 0
        self._reveals_late = 0
        self._reveals_after_window = 0
        self._strategy_errors = 0
        self._skew_warned = False
        self._won = 0
        self._filled = 0.0
        self._closed_auctions = 0
        self._unsent = 0
        self._ws: _Connection | None = None
        self._bidder: StrategyBidder | None = None
        self._max_auctions: int | None = None
        self._stop = asyncio.Event()

    # ---------------------------------------------------------------- running

    def run(
        self,
        strategy: Any,
        *,
        max_auctions: int | None = None,
        duration_s: float | None = None,
        private_value: Any = None,
    ) -> BidderReport:
        """Bid with ``strategy`` until ``max_auctions`` auctions are over for this bidder
        (closed; or without a bid of its own, or with its commit refused) or ``duration_s``
        seconds have passed (or forever); blocking. Each run's report counts that run
        only; interrupted (Ctrl-C), :meth:`report` still gives its counts so far.

        ``private_value`` (token B per token A, or a callable ``(announcement, rng) ->
        value``, e.g. your own fair-price estimate) is passed to strategies that use one.
        """
        if _loop_running():  # asyncio.run's own message does not say what to do instead
            raise RuntimeError(
                "BidderClient.run() blocks, so it cannot be called inside a running event "
                "loop (Jupyter, an async app): use `await client.arun(...)` there"
            )
        return asyncio.run(
            self.arun(
                strategy,
                max_auctions=max_auctions,
                duration_s=duration_s,
                private_value=private_value,
            )
        )

    async def arun(
        self,
        strategy: Any,
        *,
        max_auctions: int | None = None,
        duration_s: float | None = None,
        stop: asyncio.Event | None = None,
        private_value: Any = None,
    ) -> BidderReport:
        """:meth:`run` on the current event loop; also stops when ``stop`` is set."""
        if max_auctions is not None and (
            not isinstance(max_auctions, int | np.integer)
            or isinstance(max_auctions, bool)
            or max_auctions < 1
        ):  # 0 took no auction and so never ended
            raise ValueError(f"max_auctions={max_auctions!r}: a count of auctions (>= 1) or None")
        if duration_s is not None and not (
            isinstance(duration_s, int | float) and 0 <= duration_s < math.inf
        ):  # NaN never ended
            raise ValueError(f"duration_s={duration_s!r}: seconds (>= 0) or None")
        if isinstance(strategy, type) and inspect.isfunction(  # a method: price as self
            inspect.getattr_static(strategy, "generate_bid", None)
        ):
            raise TypeError(
                f"strategy={strategy.__name__}: a class; pass an instance, {strategy.__name__}(...)"
            )
        if not callable(getattr(strategy, "generate_bid", None)):
            if not callable(strategy):
                raise TypeError(
                    f"strategy={strategy!r}: needs generate_bid(baseline_price, "
                    "baseline_quantity, market, rng) or to be such a function"
                )
            strategy = _FunctionStrategy(strategy)
        _check_signature(strategy)
        if inspect.iscoroutinefunction(strategy.generate_bid):
            raise TypeError(
                f"strategy={strategy!r}: generate_bid is async; the client calls it on its "
                "event loop, once per auction, and needs a plain function"
            )
        self._new_run()
        bidder = StrategyBidder(
            strategy,
            self.bidder_id,
            self.market,
            self.rng,
            first_nonce=self.first_nonce,
            honour_timing=self.honour_timing,
            private_value=private_value,
            view=self.view,
        )
        stop = stop or asyncio.Event()
        self._bidder = bidder
        self._max_auctions = max_auctions
        self._stop = stop
        loop = asyncio.get_running_loop()
        deadline = None if duration_s is None else loop.time() + duration_s
        backoff = 0.05
        ended: BidderRemovedError | ServerUnreachableError | None = None
        # Since when no session has been open (None while one is), the last failure.
        down_since: float | None = loop.time()
        warn_at = UNREACHABLE_WARN_S
        last_error = "no attempt yet"
        try:
            while not stop.is_set():
                try:
                    opened = await self._open_session(stop, deadline)
                    if opened is None:  # stopped, or out of time, while connecting
                        break
                    async with opened as ws:
                        self._ws = ws
                        began, before = loop.time(), backoff
                        backoff = 0.05
                        down_since, warn_at = None, UNREACHABLE_WARN_S
                        self._resume()
                        await self._serve(ws, bidder, stop, deadline)
                        if not stop.is_set() and not self._out_of_time(deadline):
                            # The server closed it cleanly (it stops, or an older server
                            # replaced it by a newer login without saying so): warned, and
                            # a quick close keeps the back-off.
                            code, why = ws.close_code, ws.close_reason
                            last_error = f"closed by the server ({code} {why!r})"
                            _log.warning(
                                "%s: the server closed the session (code %s %r); reconnecting",
                                self.bidder_id,
                                code,
                                why,
                            )
                            if loop.time() - began < _STEADY_S:
                                backoff = before
                except BidderLoginError:
                    raise
                except (InvalidStatus, InvalidURI) as exc:
                    refused = _refused_for_good(self.url, exc)
                    if refused is not None:
                        raise refused from exc
                    _log.info("%s: connection lost (%r)", self.bidder_id, exc)
                    last_error = repr(exc)
                except BidderRemovedError as exc:
                    _log.warning("%s: %s", self.bidder_id, exc)
                    ended = exc
                except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                    refused_tls = _tls_refused(self.url, exc) if isinstance(exc, OSError) else None
                    if refused_tls is not None:
                        raise refused_tls from exc
                    _log.info("%s: connection lost (%r)", self.bidder_id, exc)
                    last_error = repr(exc)
                    ended = self._fatal_close(exc)
                finally:
                    self._ws = None
                    self.connected.clear()
                    self._connection_lost()
                if ended is not None:
                    break
                if stop.is_set() or not self.reconnect or self._out_of_time(deadline):
                    break
                down_since = loop.time() if down_since is None else down_since
                down_s = loop.time() - down_since
                if self.give_up_after_s is not None and down_s >= self.give_up_after_s:
                    ended = ServerUnreachableError(self.url, down_s, last_error)
                    _log.warning("%s: %s", self.bidder_id, ended)
                    break
                if down_s >= warn_at:
                    _log.warning(
                        "%s: no session with %s for %.1f s (%s); still trying",
                        self.bidder_id,
                        self.url,
                        down_s,
                        last_error,
                    )
                    warn_at = down_s + UNREACHABLE_REPEAT_S
                pause = backoff if deadline is None else min(backoff, deadline - loop.time())
                with contextlib.suppress(TimeoutError):  # a stop ends the pause
                    await asyncio.wait_for(stop.wait(), max(0.0, pause))
                backoff = min(2.0, backoff * 2)
        except BidderLoginError as exc:  # at a reconnect, hours into a run: its counts
            exc.report = self.report()
            raise
        finally:
            for round_ in self._rounds.values():
                round_.cancel_timer()
            self._due.clear()
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(BaseException):
                    await task
        if ended is not None:
            ended.report = self.report()
            raise ended
        return self.report()

    async def _open_session(
        self, stop: asyncio.Event, deadline: float | None
    ) -> _Connection | None:
        """A logged-in connection; None once ``stop`` is set or ``deadline`` passes first:
        a server that took the TCP connection but never answered held ``duration_s=1``
        and ``stop`` for the whole ``open_timeout`` (10 s)."""
        loop = asyncio.get_running_loop()
        opening = loop.create_task(self._connect_and_login())
        stopping = loop.create_task(stop.wait())
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            await asyncio.wait({opening, stopping}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            stopping.cancel()
            if not opening.done():
                opening.cancel()
                await asyncio.wait({opening})  # its socket closed (it raises nothing here)
        return None if opening.cancelled() else opening.result()

    async def _connect_and_login(self) -> _Connection:
        ws = await connect(
            self.url,
            create_connection=_Connection,
            max_size=1 << 22,
            open_timeout=10,
            ping_interval=20,
            compression=None,  # small messages: deflate costs more than it saves
        )
        assert isinstance(ws, _Connection)
        try:
            await self._login(ws)
        except BaseException:
            ws.transport.abort()  # no close handshake with a server refusing or not there
            raise
        return ws

    def _new_run(self) -> None:
        """Start counting afresh: a second run of the same client ignored every auction
        once the first had seen ``max_auctions`` (and reported the first run's counts)."""
        self._acks.clear()
        self._accepted = self._commits = self._reveals = self._unsent = 0
        self._reveals_late = self._reveals_after_window = self._strategy_errors = 0
        self._seen = self._won = self._closed_auctions = 0
        self._filled = 0.0
        self._rejected.clear()
        self._pending.clear()
        self._rounds.clear()
        self._due.clear()
        self._announced.clear()

    @staticmethod
    def _fatal_close(exc: BaseException) -> BidderRemovedError | None:
        """The session's end for good when the socket closed with 1008 and a reason that
        logging in again cannot mend (its ``error`` push not read first)."""
        rcvd = exc.rcvd if isinstance(exc, ConnectionClosed) else None
        if rcvd is not None and rcvd.code == 1008 and rcvd.reason in _FATAL_REASONS:
            return BidderRemovedError(rcvd.reason, "the server closed the socket")
        return None

    def _connection_lost(self) -> None:
        """What the lost connection took along: a commit without its ack may or may not
        have reached the server, a reveal without its ack is sent again (a duplicate is
        refused as ``duplicate_reveal``, harmlessly)."""
        for round_ in self._rounds.values():
            if round_.commit == "sent":
                round_.commit = "unknown"
            if round_.reveal_sent and not round_.reveal_answered:
                round_.reveal_sent = False

    def _resume(self) -> None:
        """On a new connection: send again the commits the last one lost while their
        collection window is open (in nonce order, the same signed message: a commit the
        server did take is refused as already known and stands), then the reveals due."""
        now = time.time()
        rounds = sorted(
            (r for r in self._rounds.values() if r.bid is not None),
            key=lambda r: r.bid.nonce if r.bid is not None else 0,
        )
        for round_ in rounds:
            if round_.commit not in ("unknown", "unsent") or round_.commit_sent is None:
                continue
            auction_id = round_.announcement.auction_id
            if now < round_.announcement.commit_deadline.timestamp():
                ref, data = round_.commit_sent
                round_.commit_resent = round_.commit == "unknown"
                if self._send(self._ws, ref, "commit", auction_id, data):
                    round_.commit = "sent"
            elif round_.commit == "unsent":  # never left this client: nothing to reveal
                round_.commit = "rejected"
                self._abstain(auction_id)  # nor an auction_closed to wait for
        for round_ in rounds:
            if self._reveal_is_due(round_, now):
                self._reveal(round_)

    @staticmethod
    def _out_of_time(deadline: float | None) -> bool:
        return deadline is not None and asyncio.get_running_loop().time() >= deadline

    def report(self) -> BidderReport:
        """The counts so far."""
        return BidderReport(
            bidder_id=self.bidder_id,
            auctions_seen=self._seen,
            commits_sent=self._commits,
            reveals_sent=self._reveals,
            accepted=self._accepted,
            rejected=dict(self._rejected),
            unanswered=len(self._pending),
            unsent=self._unsent,
            auctions_won=self._won,
            filled_volume=self._filled,
            acks=tuple(Ack(*a) for a in self._acks),
            status=self.status,
            reveals_late=self._reveals_late,
            reveals_after_window=self._reveals_after_window,
            strategy_errors=self._strategy_errors,
        )

    async def _login(self, ws: _Connection) -> None:
        challenge = json.loads(await ws.recv())
        if challenge.get("type") != "challenge":
            raise BidderLoginError("protocol", f"expected a challenge, got {challenge!r}")
        signature = self._signer.sign(login_signing_bytes(self.bidder_id, challenge["challenge"]))
        await ws.send(json.dumps(login_message(self.bidder_id, signature)))
        try:
            welcome = json.loads(await ws.recv())
        except ConnectionClosed as exc:
            # A refusal closes with 1008 (its error push lost): for good. Any other close
            # (1012: the server restarting) is retried; it ended the run for good.
            rcvd = exc.rcvd
            if rcvd is None or rcvd.code != 1008 or rcvd.reason == "login timed out":
                raise
            reason = rcvd.reason or "closed"
            welcome = {"type": "error", "reason": reason, "detail": "closed during login"}
        if welcome.get("type") != "welcome":
            reason, detail = str(welcome.get("reason")), str(welcome.get("detail"))
            if reason == "bad_signature":
                # The server answers an unknown bidder id alike (it tells no one which ids
                # exist): a new user read this as a wrong key only.
                detail += (
                    f" (a wrong private key, or no bidder {self.bidder_id!r} registered on "
                    "this server: phantom-auction bidders list)"
                )
            raise BidderLoginError(reason, detail)
        self.status = welcome
        if welcome.get("blocked"):
            self._warn_blocked(welcome)
        self.connected.set()

    def _warn_blocked(self, status: dict[str, Any]) -> None:
        # A blocked bidder is announced no auction: its run went quiet, nothing logged.
        _log.warning(
            "%s: blocked until %s (%s; no-reveal rate %s, threshold %s): no auction is "
            "announced to it until then",
            self.bidder_id,
            status.get("blocked_until"),
            status.get("reason"),
            status.get("no_reveal_rate"),
            status.get("no_reveal_threshold"),
        )

    async def _serve(
        self,
        ws: _Connection,
        bidder: StrategyBidder,
        stop: asyncio.Event,
        deadline: float | None,
    ) -> None:
        # One loop reading frames; a watcher closes the connection when the run ends
        # (no task per message: with many bidders on one loop that cost dominated).
        watcher = asyncio.get_running_loop().create_task(self._close_when_done(ws, stop, deadline))
        failure: list[BaseException] = []

        def on_text(data: bytes) -> None:
            if failure or stop.is_set():
                return
            try:
                self._dispatch(bidder, orjson.loads(data))
            except Exception as exc:  # raised by _serve, as if read by the loop below
                failure.append(exc)
                ws.transport.abort()

        ws.on_text = on_text
        try:
            # Messages the direct path does not take (queued earlier, fragmented).
            async for raw in ws:
                self._dispatch(bidder, orjson.loads(raw))
                if stop.is_set():
                    break
        except ConnectionClosed:
            if not failure:
                raise
        finally:
            ws.on_text = None
            watcher.cancel()
        if failure:
            raise failure[0]

    async def _close_when_done(
        self, ws: _Connection, stop: asyncio.Event, deadline: float | None
    ) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set() and not self._out_of_time(deadline):
            timeout = None if deadline is None else deadline - loop.time()
            if self._max_auctions is not None:  # wake to give up on ends never pushed
                timeout = _SWEEP_S if timeout is None else min(timeout, _SWEEP_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout)
            self._expire_rounds()
        stop.set()
        await ws.close()

    def _expire_rounds(self) -> None:
        """Give up on rounds whose ``auction_closed`` has not come :data:`CLOSE_GRACE_S`
        after their reveal window: the server sends an end again at the next login, but
        not one it lost (a restart of the process that kept it), and with
        ``max_auctions`` the run waited for it forever."""
        if self._max_auctions is None:
            return
        late = time.time() - CLOSE_GRACE_S
        for auction_id, round_ in list(self._rounds.items()):
            if round_.announcement.reveal_deadline.timestamp() < late:
                _log.info("%s: no auction_closed for %s", self.bidder_id, auction_id)
                self._abstain(auction_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _dispatch(self, bidder: StrategyBidder, msg: dict[str, Any]) -> None:
        if self._due and self._due[0][0] <= time.time():
            self._send_due_reveals()
        kind = msg.get("type")
        if kind == "auction_opened":
            if self._max_auctions is not None and self._seen >= self._max_auctions:
                return
            # Once per auction: a login after a reconnect announces again the auctions
            # still taking commits, whose round (a commit to resend, its reveal) is kept.
            auction_id = str(msg.get("auction_id"))
            if auction_id in self._announced:
                return
            announcement = _announcement(msg)
            self._announced[auction_id] = None
            if len(self._announced) > 2 * _MAX_ROUNDS:
                self._announced.popitem(last=False)
            self._seen += 1
            if len(self._rounds) >= _MAX_ROUNDS:  # rounds whose end was never pushed
                self._rounds.pop(next(iter(self._rounds))).cancel_timer()
            round_ = self._rounds[announcement.auction_id] = _Round(announcement)
            self._propose(bidder, round_)
        elif kind == "reveal_open":
            revealing = self._rounds.get(str(msg.get("auction_id")))
            if revealing is not None:
                revealing.reveal_open = True
                self._reveal(revealing)
        elif kind == "ack":
            self._on_ack(msg)
        elif kind == "auction_closed":
            closed = self._rounds.pop(str(msg.get("auction_id")), None)
            if closed is not None:
                closed.cancel_timer()
                # Counted once, for a round of this run (not one already given up on,
                # nor an auction a restarted server ended for an earlier run).
                self._closed_auctions += 1
            if msg.get("filled"):
                self._won += 1
                self._filled += float(msg["filled"])
            if self._max_auctions is not None and self._closed_auctions >= self._max_auctions:
                self._stop.set()
        elif kind in ("status", "blocked", "welcome"):
            self.status = msg
            if kind == "blocked":
                self._warn_blocked(msg)
        elif kind == "error" and msg.get("reason") in _FATAL_REASONS:
            raise BidderRemovedError(str(msg["reason"]), str(msg.get("detail")))

    def _on_ack(self, msg: dict[str, Any]) -> None:
        ref = msg.get("ref")
        if ref is not None:
            self._pending.pop(ref, None)
        kind, auction_id = str(msg.get("kind")), msg.get("auction_id")
        status, reason = str(msg.get("status")), msg.get("reason")
        if status == "accepted":
            self._accepted += 1
        else:
            self._rejected[reason or "unknown"] += 1
        if self._acks.maxlen != 0:
            row = (ref, kind, auction_id, status, reason, msg.get("detail"), time.time())
            self._acks.append(row)
        round_ = self._rounds.get(str(auction_id))
        if round_ is None:
            return
        if kind == "commit":
            self._on_commit_ack(round_, status, reason)
        elif kind != "reveal":
            return
        elif reason == "outside_reveal_window" and not round_.reveal_retried:
            # Sent before the server's window opened (clocks differ): try again on the push,
            # once. A second refusal means the window has passed: retrying at every ack
            # would flood an overloaded server with reveals until the auction closed.
            round_.reveal_retried = True
            round_.reveal_sent = False
            round_.reveal = None  # a new ref
            if round_.reveal_open:
                self._reveal(round_)
        elif reason == "store_unavailable" and round_.reveal_retries < _STORE_RETRIES:
            # Not taken (withdrawn): send it again while the window is open.
            round_.reveal_retries += 1
            round_.reveal_sent = False
            round_.reveal = None
            if time.time() < round_.announcement.reveal_deadline.timestamp():
                self._reveal(round_)
        else:
            round_.reveal_answered = True

    def _on_commit_ack(self, round_: _Round, status: str, reason: str | None) -> None:
        if status == "accepted":
            round_.commit = "accepted"
        elif round_.commit_resent and reason in ("duplicate_commit", "replayed_nonce"):
            # Sent again after a reconnect: the first one may be the one that stands.
            round_.commit = "unknown"
        elif reason == "store_unavailable" and round_.commit_retries < _STORE_RETRIES:
            # Not taken, its nonce given back: seal it again (fresh salt and nonce) while
            # the collection window is open.
            round_.commit = "rejected"
            bidder = self._bidder
            open_ = time.time() < round_.announcement.commit_deadline.timestamp()
            if bidder is not None and round_.proposal is not None and open_:
                round_.commit_retries += 1
                self._commit(bidder, round_, round_.proposal)
            else:
                self._abstain(round_.announcement.auction_id)
            return
        else:
            round_.commit = "rejected"
            # No auction_closed comes for a bidder without a commit: with max_auctions
            # the run waited for it forever (a strategy timed past the window, say).
            self._abstain(round_.announcement.auction_id)
            return
        if self._reveal_is_due(round_, time.time()):  # its ack came after the reveal's time
            self._reveal(round_)

    @staticmethod
    def _reveal_is_due(round_: _Round, now: float) -> bool:
        """The reveal's window is open (pushed, or by this client's clock) and not over."""
        announcement = round_.announcement
        if round_.reveal_sent or now >= announcement.reveal_deadline.timestamp():
            return False
        return round_.reveal_open or now >= announcement.commit_deadline.timestamp() + (
            REVEAL_MARGIN_S
        )

    def _next_ref(self) -> int:
        self._ref += 1
        return self._ref

    # The commit and the reveal run in the frame's callback and on timers, not in a task
    # each: with 20 bidders on one loop the tasks and their sleeps were a tenth of its CPU.

    def _propose(self, bidder: StrategyBidder, round_: _Round) -> None:
        """Ask the strategy for this auction's bid; commit it now or at its time."""
        announcement = round_.announcement
        try:
            proposal = bidder.propose(announcement)
        except Exception:  # the strategy's fault: this auction only, as for a refused bid
            _log.exception("%s: no bid for %s", self.bidder_id, announcement.auction_id)
            self._strategy_errors += 1
            proposal = None
        delay = 0.0
        if proposal is not None:
            # Checked here: a dict or a bare number raised in _commit, out of the run (or
            # in a timer, leaving the round open forever: max_auctions never reached).
            try:
                _check_proposal(proposal, bidder.honour_timing)
                delay = bidder.send_delay(announcement, proposal)
                if delay > 0:
                    delay = self._within_timestamp(delay, float(proposal.timestamp) / 1000.0)
            except (InvalidBidParameters, ArithmeticError) as exc:
                _log.warning("%s: no bid for %s: %s", self.bidder_id, announcement.auction_id, exc)
                self._strategy_errors += 1
                proposal = None
        if proposal is None:
            self._abstain(announcement.auction_id)
        elif delay > 0:
            loop = asyncio.get_running_loop()
            round_.timer = loop.call_later(delay, self._commit, bidder, round_, proposal)
        else:
            self._commit(bidder, round_, proposal)

    def _within_timestamp(self, delay: float, timestamp_s: float) -> float:
        """``delay`` (s, by this machine's clock against the server's ``opened_at``), but
        never longer than the bid's timestamp after its announcement came: a clock behind
        the server's by more than the collection window made every timed commit late."""
        if delay <= timestamp_s:
            return delay
        if delay - timestamp_s > 0.05 and not self._skew_warned:
            self._skew_warned = True
            _log.warning(
                "%s: the server's clock is %.0f ms ahead of this machine's (an auction opened "
                "in its future): commits are timed from each announcement's arrival",
                self.bidder_id,
                (delay - timestamp_s) * 1000,
            )
        return max(0.0, timestamp_s)

    def _abstain(self, auction_id: str) -> None:
        """This auction is over for this bidder (no bid, or none the server took): no
        ``auction_closed`` will come for it."""
        round_ = self._rounds.pop(auction_id, None)
        if round_ is None:  # already over (counted once)
            return
        round_.cancel_timer()
        if self._max_auctions is not None:
            self._closed_auctions += 1  # nothing to wait for in this auction
            if self._closed_auctions >= self._max_auctions:
                self._stop.set()

    def _commit(self, bidder: StrategyBidder, round_: _Round, proposal: Any) -> None:
        """Seal, sign and send the commit; make the reveal and set its timer."""
        announcement = round_.announcement
        auction_id = announcement.auction_id
        round_.cancel_timer()
        try:
            bid = round_.bid = bidder.make(announcement, proposal)
        except Exception as exc:  # the strategy proposed something unsendable
            _log.warning("%s: no commit for %s: %s", self.bidder_id, auction_id, exc)
            self._strategy_errors += 1
            self._abstain(auction_id)
            return
        commitment = bid.commitment_hash.hex()
        ref = self._next_ref()
        signed = commit_signing_bytes(auction_id, self.bidder_id, commitment, bid.nonce)
        signature = self._signer.sign(signed)
        message = commit_message(ref, auction_id, bid.token_pair, commitment, bid.nonce, signature)
        data = orjson.dumps(message)
        round_.proposal = proposal
        round_.commit_sent = ref, data
        round_.commit_resent = False
        round_.reveal_sent = round_.reveal_answered = False
        round_.reveal = self._reveal_data(auction_id, bid)
        # Taken by an open connection, else sent on the next one (while collecting).
        sent = self._send(self._ws, ref, "commit", auction_id, data)
        round_.commit = "sent" if sent else "unsent"
        self._reveal_due(round_)

    def _reveal_data(self, auction_id: str, bid: ImprovementBid) -> tuple[int, bytes]:
        ref = self._next_ref()
        message = reveal_message(
            ref,
            auction_id,
            bid.token_pair,
            bid.improved_price,
            bid.volume,
            bid.priority_fee,
            bid.nonce,
            bid.salt,
        )
        return ref, orjson.dumps(message)

    def _reveal_due(self, round_: _Round) -> None:
        """Reveal once the collection window is over by this client's clock (unless the
        server's ``reveal_open`` push came first)."""
        # Event loops round timers (uvloop to the millisecond) and may wake a little
        # early: wait again until the wall clock is past the window's end.
        due = round_.announcement.commit_deadline.timestamp() + REVEAL_MARGIN_S
        delay = due - time.time()
        if delay > 0.0:
            if round_.timer is None:  # armed for the first time (a re-arm is in the heap)
                heapq.heappush(self._due, (due, next(self._due_order), round_))
            loop = asyncio.get_running_loop()
            round_.timer = loop.call_later(delay, self._reveal_due, round_)
        else:
            round_.timer = None
            self._reveal(round_)

    def _send_due_reveals(self) -> None:
        """Send the reveals whose time has come, before the message being read.

        A timer runs only once the loop's turn is over, and a turn that reads many
        messages (each announcement brings a commit to seal and sign) can outlast a
        20 ms reveal window: each message read sends the reveals due first."""
        due = self._due
        now = time.time()
        while due and due[0][0] <= now:
            _, _, round_ = heapq.heappop(due)
            if round_.timer is not None and not round_.reveal_sent:  # still waiting
                round_.cancel_timer()
                self._reveal(round_)

    def _reveal(self, round_: _Round) -> None:
        """Reveal this round's bid on the open connection, once (again after an
        ``outside_reveal_window`` or a ``store_unavailable``, or when the connection it
        went on was lost before its ack). Not for a commit refused or never sent; one
        still waiting for its ack is revealed (the ack is the server's durable write,
        which may come after the window has opened)."""
        if round_.reveal_sent or round_.commit in ("rejected", "unsent") or round_.bid is None:
            return
        round_.cancel_timer()
        announcement = round_.announcement
        ref, data = round_.reveal or self._reveal_data(announcement.auction_id, round_.bid)
        round_.reveal = ref, data
        if not self._send(self._ws, ref, "reveal", announcement.auction_id, data):
            return  # no connection: sent on the next one (``_resume``)
        round_.reveal_sent = True
        self._reveals += 1
        window = announcement.reveal_deadline - announcement.commit_deadline
        delay = datetime.now(UTC) - announcement.commit_deadline
        if delay >= window:
            self._reveals_after_window += 1
        if 2 * delay > window:
            self._reveals_late += 1

    def _send(
        self, ws: _Connection | None, ref: int, kind: str, auction_id: str, data: bytes
    ) -> bool:
        """Send ``data`` (a JSON message) and remember it until its ack: at once when the
        connection takes it, else behind the messages already waiting (in order: commits
        leave in nonce order). False, and nothing sent, when there is no open connection
        (counted as unsent); a connection lost with the message waiting loses it (counted)."""
        if ws is None or _closed(ws):
            self._unsent += 1
            return False
        if kind == "commit":
            self._commits += 1
        self._pending[ref] = (kind, auction_id)
        outbox = ws.outbox
        if outbox or not ws.send_now(data):
            outbox.append((ref, data))
            if len(outbox) == 1:
                self._spawn(self._drain(ws))
        return True

    async def _drain(self, ws: _Connection) -> None:
        """Send ``ws``'s waiting messages in order, with ``websockets``' flow control."""
        outbox = ws.outbox
        while outbox:
            try:
                await ws.send(outbox[0][1].decode())
            except ConnectionClosed:
                for ref, _ in outbox:
                    self._pending.pop(ref, None)
                    self._unsent += 1
                outbox.clear()
                return
            outbox.popleft()

    async def request_status(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """Ask the server for this bidder's status over the open connection: its answer
        (the fields of ``GET /v1/bidders/me``), or None without an open connection or an
        answer within ``timeout`` seconds."""
        ws = self._ws
        if ws is None or _closed(ws):
            return None
        before = self.status
        try:
            await ws.send(json.dumps(status_message(self._next_ref())))
        except ConnectionClosed:
            return None
        end = asyncio.get_running_loop().time() + timeout
        while self.status is before and asyncio.get_running_loop().time() < end:
            await asyncio.sleep(0.01)
        # The status held before is no answer (the login's welcome was returned as one).
        return None if self.status is before else self.status
