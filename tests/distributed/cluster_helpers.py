"""Builders and exact comparisons for the Dask tests (imported by the test modules)."""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from phantom_auction.simulation import (
    Bid,
    BidderStrategy,
    MarketConditions,
    PhantomSimulator,
    SimulationConfig,
)

BASELINE_PRICE = 100.0  # token B per token A
BASELINE_QUANTITY = 1000.0  # token A


def simulator(num_simulations: int, *, seed: int = 2024, **config: Any) -> PhantomSimulator:
    """The default market (5 real bidders of the five strategies, 15 phantoms, VCG)."""
    return PhantomSimulator(
        SimulationConfig(num_simulations=num_simulations, seed=seed, **config),
        MarketConditions(),
    )


def same_value(a: Any, b: Any) -> bool:
    """Exact equality, recursively; NaN equals NaN (an undefined statistic on both sides)."""
    if isinstance(a, Mapping):
        return (
            isinstance(b, Mapping) and list(a) == list(b) and all(same_value(a[k], b[k]) for k in a)
        )
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and bool(a == b)


def assert_same_analysis(a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
    """``analyze_results`` outputs equal to the last bit (NaN where both are undefined)."""
    assert list(a) == list(b)
    mismatched = [k for k in a if not same_value(a[k], b[k])]
    assert not mismatched, f"statistics differ: {mismatched}"


def assert_same_columns(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> None:
    """Bit for bit: same names, dtypes and bytes (so also -0.0 and NaN payloads)."""
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].tobytes() == b[name].tobytes(), name


class FixedImprovementStrategy(BidderStrategy):
    """A user's strategy in the seed's scalar form: a fixed improvement of ``bps``.

    It lives in a module the workers can import (Dask pickles it by reference).
    """

    name = "fixed"

    def __init__(self, bps: float) -> None:
        self.bps = bps

    def generate_bid(self, price, qty, market, rng):  # type: ignore[no-untyped-def,override]
        return Bid(
            price=price * (1 + self.bps / 10_000),
            quantity=qty,
            timestamp=rng.random() * 50.0,
            priority_fee=0.0,
        )


class FailingStrategy(BidderStrategy):
    """Raises when asked to bid: only a worker running a chunk ever asks."""

    name = "failing"

    def generate_bid(self, price, qty, market, rng):  # type: ignore[no-untyped-def,override]
        raise RuntimeError("strategy failed on the worker")


# -- dask processes on loopback --------------------------------------------------------

#: The ``dask`` command beside this interpreter.
DASK = Path(sys.executable).with_name("dask")


@dataclass
class DaskProcesses:
    """A ``dask scheduler`` on 127.0.0.1 and its ``dask worker`` processes."""

    address: str
    scheduler: subprocess.Popen[bytes]
    processes: list[subprocess.Popen[bytes]]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (Dask closes cleanly), then SIGKILL the whole session if it lingers."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    # The worker process a nanny spawned is in the nanny's session.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=20)


def wait_for_line(log: Path, pattern: str, process: subprocess.Popen[bytes]) -> re.Match[str]:
    """The first match of ``pattern`` in ``log`` (60 s at most, or until ``process`` ends)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match:
            return match
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} in {log}:\n{log.read_text(errors='replace')}")


@contextlib.contextmanager
def dask_processes(
    folder: Path, env: Mapping[str, str] | None = None, workers: int = 2
) -> Iterator[DaskProcesses]:
    """A scheduler and ``workers`` single-threaded workers (``worker-0``, ...), each its
    own process session with its log in ``folder`` and ``env`` added to its environment
    (DASK_* settings); all stopped at the end, their children too."""
    from distributed import Client

    environment = {**os.environ, **(env or {})}
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = folder / f"{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(DASK), *args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,  # its own process group, to stop its children too
            )
        processes.append(process)
        return process, log

    try:
        scheduler, log = start(
            "scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"
        )
        address = wait_for_line(log, r"Scheduler at:\s+(tcp://127\.0\.0\.1:\d+)", scheduler)[1]
        for i in range(workers):
            start(
                f"worker{i}",
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--name",
                f"worker-{i}",
            )
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=60)
        yield DaskProcesses(address, scheduler, processes)
    finally:
        for process in reversed(processes):
            stop_process(process)
