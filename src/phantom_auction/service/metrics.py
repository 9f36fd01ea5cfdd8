"""Prometheus metrics of the live service (one registry per app, so tests can run several).

Under ``serve --workers N`` the supervisor gives its workers one directory in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode): every worker's
counters and histograms are summed, and its gauges too (``livesum``: live processes
only), so ``/metrics`` answers for the whole server whichever process takes the scrape.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["LOOP_LAG_INTERVAL_S", "MULTIPROCESS_ENV", "LoopLag", "ServiceMetrics"]

#: The environment variable naming prometheus-client's shared directory (``--workers``).
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Result latency is measured after the end of the reveal window: milliseconds matter.
_LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)

#: How often :class:`LoopLag` looks at the event loop (s): 100 timers a second cost
#: ~0.02 % of a core (~2.2 us each under uvloop), and every turn longer than this
#: delays at least one of them.
LOOP_LAG_INTERVAL_S = 0.01


@dataclass(slots=True)
class ServiceMetrics:
    """Counters, histograms and gauges exposed on ``/metrics``."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    auctions: Counter = field(init=False)
    rejections: Counter = field(init=False)
    messages: Counter = field(init=False)
    result_latency: Histogram = field(init=False)
    ack_latency: Histogram = field(init=False)
    store_flush: Histogram = field(init=False)
    store_batch_size: Histogram = field(init=False)
    loop_lag: Histogram = field(init=False)
    pruned_auctions: Counter = field(init=False)
    connected_bidders: Gauge = field(init=False)
    open_auctions: Gauge = field(init=False)
    _children: dict[tuple[int, tuple[str, ...]], Counter] = field(init=False, default_factory=dict)
    #: Plain totals for the summary ``serve`` logs when it stops.
    tally: Tally[str] = field(init=False, default_factory=Tally)
    started: float = field(init=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        r = self.registry
        self.auctions = Counter(
            "phantom_auction_auctions", "Auctions ended, by outcome", ["outcome"], registry=r
        )
        self.rejections = Counter(
            "phantom_auction_rejections",
            "Bidder messages rejected, by reason",
            ["reason"],
            registry=r,
        )
        self.messages = Counter(
            "phantom_auction_bidder_messages",
            "Bidder messages received, by kind and transport",
            ["kind", "transport"],
            registry=r,
        )
        self.result_latency = Histogram(
            "phantom_auction_result_latency_seconds",
            "Time from the end of the reveal window to the durable result (s)",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.ack_latency = Histogram(
            "phantom_auction_ack_latency_seconds",
            "Time from receiving a commit or reveal to its durable ack (s)",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.store_flush = Histogram(
            "phantom_auction_store_flush_seconds",
            "Duration of one group-commit transaction (s)",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.store_batch_size = Histogram(
            "phantom_auction_store_batch_records",
            "Records written per group-commit transaction",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
            registry=r,
        )
        self.loop_lag = Histogram(
            "phantom_auction_event_loop_lag_seconds",
            "How late a timer due every 10 ms ran: the wait a message arriving then had "
            "before the event loop could read it (s; ~1 ms is the timers' resolution)",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.pruned_auctions = Counter(
            "phantom_auction_pruned_auctions",
            "Ended auctions removed with their bid events by retention (service.retention_days)",
            registry=r,
        )
        # Summed over the live worker processes (ignored by a single process).
        mode: Any = "livesum"
        self.connected_bidders = Gauge(
            "phantom_auction_connected_bidders",
            "Bidders logged in over WebSocket",
            registry=r,
            multiprocess_mode=mode,
        )
        self.open_auctions = Gauge(
            "phantom_auction_open_auctions",
            "Auctions collecting or revealing",
            registry=r,
            multiprocess_mode=mode,
        )

    def _child(self, counter: Counter, *labels: str) -> Counter:
        # labels() hashes and locks on every call: keep the children (a hot path).
        key = (id(counter), labels)
        child = self._children.get(key)
        if child is None:
            child = counter.labels(*labels)
            self._children[key] = child
        return child

    def count_message(self, kind: str, transport: str) -> None:
        """One bidder message of ``kind`` received over ``transport``."""
        self._child(self.messages, kind, transport).inc()
        self.tally[kind] += 1

    def count_rejection(self, reason: str) -> None:
        """One bidder message rejected with ``reason``."""
        self._child(self.rejections, reason).inc()
        self.tally["rejected"] += 1

    def count_auction(self, outcome: str) -> None:
        """One auction ended with ``outcome``."""
        self._child(self.auctions, outcome).inc()
        self.tally["auctions"] += 1
        self.tally[f"outcome:{outcome}"] += 1

    def summary(self) -> str:
        """One line: uptime, auctions by outcome, messages received and rejected."""
        t = self.tally
        outcomes = ", ".join(
            f"{t[k]} {k.removeprefix('outcome:')}" for k in sorted(t) if k.startswith("outcome:")
        )
        return (
            f"{time.monotonic() - self.started:.0f} s, {t['auctions']} auctions"
            f"{f' ({outcomes})' if outcomes else ''}, {t['commit']} commits, "
            f"{t['reveal']} reveals, {t['rejected']} messages rejected"
        )

    def exposition(self) -> bytes:
        """The text exposition format of every metric (of every worker, under ``--workers``)."""
        folder = os.environ.get(MULTIPROCESS_ENV)
        if folder:
            from prometheus_client.multiprocess import MultiProcessCollector

            merged = CollectorRegistry()
            MultiProcessCollector(merged, path=folder)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)


class LoopLag:
    """Observes into ``histogram`` how late a timer due every ``interval_s`` runs.

    A bidder's message waits while the event loop finishes its current turn (a wave of
    bidder messages read together, an auction opened or finished), and a reveal waits
    so twice within its window (20 ms in 100 ms auctions): for the timer that opens the
    window, then for its own read. The timer sees the loop as a message arriving at a
    random moment would: the metric to watch when ``outside_reveal_window`` appears.
    """

    __slots__ = ("_handle", "histogram", "interval_s")

    def __init__(self, histogram: Histogram, interval_s: float = LOOP_LAG_INTERVAL_S) -> None:
        self.histogram = histogram
        self.interval_s = interval_s
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start on the running loop."""
        loop = asyncio.get_running_loop()
        self._schedule(loop, loop.time())

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        due = now + self.interval_s
        self._handle = loop.call_at(due, self._tick, loop, due)

    def _tick(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        now = loop.time()
        self.histogram.observe(max(0.0, now - due))
        self._schedule(loop, now)
