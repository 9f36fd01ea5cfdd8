"""Simulator benchmarks: seconds and peak memory of the headline runs.

Cases (each in a fresh Python process, so memory figures do not leak between them):

- ``mc1m``: 1,000,000 auctions of ``SimulationConfig``'s defaults (5 real bidders and
  15 phantom slots, VCG; the rest from ``default.toml``) with 2 worker processes, rows
  kept, after a first use of the simulator in this process (1,000 auctions: imports made
  on first call and the equilibrium bidders' solved game; its seconds are printed as
  ``first_use_seconds``, not counted in the run's, as the floor's warm-up is not in its
  own). Goal: <= 4 s and <= 1.5 GB. Also measures, in the same run, the floor for that
  shape (numpy drawing 1M x N values and quantities, sorting each row, gathering and a
  cumulative sum, split over 2 processes of 500,000 rows; ``N`` is the run's config's
  real bidders plus phantom slots, printed as ``floor_width``) and prints the ratio
  (issue 16 goal: <= 1.5x), of wall seconds and of CPU seconds (all processes: less
  disturbed by other load on a shared machine). Beside it, the same floor done in the
  run's chunks (``resources.simulation_chunk_size`` rows at a time, the workers' malloc
  tuned as the simulator's are, so that each chunk reuses the last one's pages): the
  floor without the page faults of 500,000-row arrays, which the simulator does not pay
  either (``chunked_floor_*``; for information, the goal is against the first). And, on
  the run's own chunks once more with every draw timed (each call to the generators and
  to ``ndtri``), the CPU seconds of the draws alone and their ratio to the floor's CPU
  (``draws_*``): the part of the run no change to its own work removes while it draws
  the same numbers.
- ``mc1m-local``: the same 1,000,000 auctions in this one process (``workers=1``, the
  default of ``run_monte_carlo``), rows kept: seconds, CPU seconds and peak memory (each
  chunk writes its rows into the run's columns, so they are held once).
- ``mc10m``: 10,000,000 auctions streamed (summary only), 2 workers. Goal: memory flat
  and <= 1.5 GB (the peak after the first million auctions is printed beside the end's).
- ``one200``: one ``run_simulation`` with 200 real bidders (the mean of many calls:
  ``run_simulation`` works out auctions ahead, so that one call in many pays for the
  next ones and the median call is not an auction's cost), and the fast path's cost per
  auction at the same size, with the ratio (issue 16 goal: object path within 5x of the
  fast path). Goal: <= 2 ms.
- ``ratio``: the fast path against the object path (per-auction Python loop), both in
  this process on the same 20,000 auctions.

Peak memory is the largest sum of the resident set sizes (RSS) of the process and its
workers, sampled every 50 ms: an upper bound, since forked workers' copy-on-write pages
shared with the parent are counted twice (proportional set sizes would not be, but
reading them walks every page table and slowed the run itself by ~3x); the list of
workers is refreshed every 0.5 s, so a worker's first 0.5 s may be missed. ``ru_maxrss``
of the parent and of the largest worker are printed too.

The ratio cases (``mc1m``, ``one200``) run ``--rounds`` rounds (default 3), each side
measured once per round (``mc1m``'s floors twice), back to back, and compare the least
figure of each side: on a machine shared with other work a single pair swings by 2x
either way (the 500,000-row floor most of all: its arrays are fresh memory, which numpy
asks the kernel to back with 2 MiB pages, and the kernel's system time to find and
clear free ones, compacting memory that other work has fragmented, went from 0.06 s to
1.0 s per worker between tries; its CPU seconds were 0.62-0.66 s or 1.3-2.5 s in one
run at load ~4, the chunked floor's 0.55-0.60 s).

Usage: ``python benchmarks/bench_simulator.py [--quick] [--rounds N] [case ...]``.
``--quick`` runs every case 10x smaller (a smoke test of the script, not a benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

CASES = ("mc1m", "mc1m-local", "mc10m", "one200", "ratio")
GIB = 1024**3


class PeakMemory:
    """Samples the summed RSS of this process and its children in a thread."""

    def __init__(self, interval_s: float = 0.05) -> None:
        import psutil

        self._psutil = psutil
        self._interval = interval_s
        self._stop = threading.Event()
        self.peak_bytes = 0
        self.marks: dict[str, int] = {}
        self._procs: list[Any] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, refresh: bool = True) -> int:
        # Listing the children walks all of /proc (~4 ms of CPU on a busy machine): done
        # every 10th sample only, so that the sampler does not slow what it measures.
        if refresh or not self._procs:
            me = self._psutil.Process()
            self._procs = [me, *me.children(recursive=True)]
        total = 0
        for proc in self._procs:
            try:
                total += proc.memory_info().rss
            except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                continue
        return total

    def _run(self) -> None:
        count = 0
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._sample(refresh=count % 10 == 0))
            count += 1
            self._stop.wait(self._interval)

    def mark(self, name: str) -> None:
        """Remember the peak so far under ``name``."""
        self.marks[name] = self.peak_bytes

    @contextmanager
    def running(self) -> Iterator[PeakMemory]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self.peak_bytes, self._sample())


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its reaped children so far: a
    figure the other processes on a shared machine disturb less than wall time."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _maxrss_gib() -> dict[str, float]:
    # ru_maxrss is in KiB on Linux.
    return {
        "self_maxrss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "largest_child_maxrss_gib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        / 1024**2,
    }


def mc_config(n: int) -> Any:
    """The config of the ``mc1m`` and ``mc10m`` runs: ``n`` auctions of the defaults."""
    from phantom_auction.simulation import SimulationConfig

    return SimulationConfig(num_simulations=n, seed=1)


def floor_width(config: Any) -> int:
    """Columns of the floor's rows: every bid an auction of ``config`` can hold, one per
    real bidder and one per phantom slot."""
    return int(config.num_real_bidders + config.num_phantom_bidders)


def _monte_carlo(n: int, keep_rows: bool, workers: int = 2) -> dict[str, Any]:
    from phantom_auction.simulation import (
        MarketConditions,
        PhantomSimulator,
        SimulationConfig,
        run_monte_carlo,
    )

    # First use in this process (imports done on first call, e.g. scipy.integrate for the
    # equilibrium bidders, and their solved game, which is cached), on 1,000 auctions of
    # another seed here, not timed below: the floor's pool is warmed up the same way.
    started = time.perf_counter()
    warm = SimulationConfig(num_simulations=1_000, seed=2)
    run_monte_carlo(PhantomSimulator(warm, MarketConditions()), 100.0, 1000.0, workers=1)
    first_use = time.perf_counter() - started
    sim = PhantomSimulator(mc_config(n), MarketConditions())
    first_million = min(n, 1_000_000)
    memory = PeakMemory()

    def progress(done: int, total: int) -> None:
        if done >= first_million and "first_million" not in memory.marks:
            memory.mark("first_million")

    with memory.running():
        cpu = _cpu_seconds()
        started = time.perf_counter()
        results = run_monte_carlo(
            sim, 100.0, 1000.0, workers=workers, keep_rows=keep_rows, progress=progress
        )
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu
    summary = results.summary
    return {
        "auctions": len(results),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "auctions_per_second": len(results) / seconds,
        "first_use_seconds": first_use,
        "peak_rss_gib": memory.peak_bytes / GIB,
        "peak_rss_after_first_million_gib": memory.marks.get("first_million", 0) / GIB,
        "mean_improvement_bps": summary.metrics["improvement_bps"].mean,
        "phantom_win_rate": summary.metrics["phantom_won"].mean,
        **_maxrss_gib(),
    }


def _floor_part(rows: int, width: int, chunk: int | None = None) -> float:
    """One worker's share of the floor: draw ``rows`` x ``width`` values and quantities,
    sort each row, gather, cumulative sum; ``chunk`` rows at a time when given."""
    import numpy as np

    rng = np.random.default_rng(rows)
    total = 0.0
    step = rows if chunk is None else chunk
    for start in range(0, rows, step):
        size = min(step, rows - start)
        values = rng.random((size, width))
        quantities = rng.random((size, width))
        order = np.argsort(-values, axis=1)
        gathered = np.take_along_axis(quantities, order, axis=1)
        total += float(np.cumsum(gathered, axis=1)[:, -1].sum())
    return total


def _floor_worker(tuned: bool) -> None:
    if tuned:
        from phantom_auction.simulation.parallel import _reuse_freed_memory

        _reuse_freed_memory()


def floor_seconds(
    n: int, width: int, workers: int = 2, chunk: int | None = None
) -> tuple[float, float]:
    """Wall and CPU seconds of the floor for ``n`` auctions x ``width`` bids on
    ``workers`` processes (``chunk``: rows at a time, the workers' malloc tuned as the
    simulator's workers are; None: each worker's share at once, untuned). The pool is
    started and warmed beforehand and not timed (the simulator's run does include
    starting its pool: forked, a few ms); the CPU figure is the whole pool's, as the
    simulator's is (the warm-up's 1,000 rows are a few ms of it)."""
    from concurrent.futures import ProcessPoolExecutor

    cpu = _cpu_seconds()
    with ProcessPoolExecutor(
        workers, initializer=_floor_worker, initargs=(chunk is not None,)
    ) as pool:
        list(pool.map(_floor_part, [1000] * workers, [width] * workers))  # start, warm
        started = time.perf_counter()
        share = n // workers
        list(pool.map(_floor_part, [share] * workers, [width] * workers, [chunk] * workers))
        wall = time.perf_counter() - started
    return wall, _cpu_seconds() - cpu


def _timed(function: Any, spent: list[float]) -> Any:
    """``function``, adding each call's CPU seconds to ``spent[0]``."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - started

    return timed


class _TimedDraws:
    """A generator whose every method call is timed (:func:`_timed`)."""

    def __init__(self, rng: Any, spent: list[float]) -> None:
        self._rng, self._spent = rng, spent

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._rng, name)
        return _timed(attr, self._spent) if callable(attr) else attr


def _draws_part(task: Any) -> tuple[float, float]:
    """CPU seconds of one chunk of the run on the fast path, and of its draws alone:
    every call to its generators (uniforms, normals, binomials) and to ``ndtri`` (the
    inverse normal CDF that maps uniforms to the random walk's steps, the market's and
    the phantoms' normals) is timed where the chunk makes it."""
    from phantom_auction.engine import phantoms
    from phantom_auction.simulation import kernels, market
    from phantom_auction.simulation.environment import Streams
    from phantom_auction.simulation.strategies import random_walk

    spent = [0.0]
    inverse = market.ndtri
    # The phantoms' inverse CDF is engine.phantoms.truncated_normal_bps's.
    patched = (phantoms, market, random_walk)
    for module in patched:
        module.ndtri = _timed(inverse, spent)  # type: ignore[attr-defined]
    try:
        env = task.spec.environment()
        strategies = task.spec.fresh_strategies()
        streams = Streams.from_seed(task.seed_seq, len(strategies))
        streams.market = _TimedDraws(streams.market, spent)
        streams.phantom = _TimedDraws(streams.phantom, spent)
        streams.bidders = [_TimedDraws(rng, spent) for rng in streams.bidders]
        started = time.process_time()
        kernels.simulate_chunk_arrays(env, strategies, streams, task.n_auctions)
        return time.process_time() - started, spent[0]
    finally:
        for module in patched:
            module.ndtri = inverse  # type: ignore[attr-defined]


def draws_cpu_seconds(n: int, workers: int = 2) -> tuple[float, float]:
    """The run's chunks of ``n`` default auctions on ``workers`` processes, each timed
    whole and in its draws alone (:func:`_draws_part`): (CPU seconds, of which draws).
    Measures how much of the run no change to the simulator's own work can remove while
    it draws the same numbers."""
    from concurrent.futures import ProcessPoolExecutor

    from phantom_auction.simulation import MarketConditions, PhantomSimulator
    from phantom_auction.simulation.parallel import plan_chunks

    tasks = plan_chunks(PhantomSimulator(mc_config(n), MarketConditions()), 100.0, 1000.0)
    with ProcessPoolExecutor(workers, initializer=_floor_worker, initargs=(True,)) as pool:
        parts = list(pool.map(_draws_part, tasks))
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


#: Rounds of the ratio cases: each round measures the floor (or the fast path) and the
#: run under test back to back; the best of each side is compared (``--rounds``).
ROUNDS = 3

#: Tries of each ``mc1m`` floor per round (the floors are cheap beside the run).
FLOOR_TRIES = 2


def case_mc1m(scale: float) -> dict[str, Any]:
    """The run and its floors, ``ROUNDS`` times in turn (each floor ``FLOOR_TRIES`` times
    a round); the best (least) seconds of each side are compared, wall and CPU alike
    (both sides see the same machine, and the least is the figure another load disturbs
    least). Every try's figures are kept."""
    n = int(1_000_000 * scale)
    config = mc_config(n)
    width = floor_width(config)
    chunk = config.resolved_chunk_size
    runs, floors, chunked = [], [], []
    for _ in range(ROUNDS):
        # Each floor twice a round (they take a fraction of the run's time): the least
        # of more tries is a lower floor, which can only raise the ratio.
        for _ in range(FLOOR_TRIES):
            floors.append(floor_seconds(n, width))
            chunked.append(floor_seconds(n, width, chunk=chunk))
        runs.append(_monte_carlo(n, keep_rows=True))
    figures = min(runs, key=lambda r: r["seconds"])
    figures["rounds"] = ROUNDS
    figures["floor_tries_per_round"] = FLOOR_TRIES
    figures["seconds"] = min(r["seconds"] for r in runs)
    figures["cpu_seconds"] = min(r["cpu_seconds"] for r in runs)
    figures["floor_width"] = width
    figures["floor_seconds"] = min(f[0] for f in floors)
    figures["floor_cpu_seconds"] = min(f[1] for f in floors)
    figures["ratio_to_floor"] = figures["seconds"] / figures["floor_seconds"]
    figures["cpu_ratio_to_floor"] = figures["cpu_seconds"] / figures["floor_cpu_seconds"]
    figures["chunk_rows"] = chunk
    figures["chunked_floor_seconds"] = min(f[0] for f in chunked)
    figures["chunked_floor_cpu_seconds"] = min(f[1] for f in chunked)
    figures["ratio_to_chunked_floor"] = figures["seconds"] / figures["chunked_floor_seconds"]
    figures["cpu_ratio_to_chunked_floor"] = (
        figures["cpu_seconds"] / figures["chunked_floor_cpu_seconds"]
    )
    # The draws' share, measured on the run's own chunks (timing each draw: not the
    # run above, whose figures stay untouched by the timers).
    whole, draws = draws_cpu_seconds(n)
    figures["draws_run_cpu_seconds"] = whole
    figures["draws_cpu_seconds"] = draws
    figures["draws_over_floor_cpu"] = draws / figures["floor_cpu_seconds"]
    figures["each_seconds"] = [round(r["seconds"], 3) for r in runs]
    figures["each_floor_seconds"] = [round(f[0], 3) for f in floors]
    figures["each_chunked_floor_seconds"] = [round(f[0], 3) for f in chunked]
    figures["each_cpu_seconds"] = [round(r["cpu_seconds"], 3) for r in runs]
    figures["each_floor_cpu_seconds"] = [round(f[1], 3) for f in floors]
    figures["each_chunked_floor_cpu_seconds"] = [round(f[1], 3) for f in chunked]
    figures["load_average_1m"] = os.getloadavg()[0]
    return figures


def case_mc1m_local(scale: float) -> dict[str, Any]:
    figures = _monte_carlo(int(1_000_000 * scale), keep_rows=True, workers=1)
    figures["load_average_1m"] = os.getloadavg()[0]
    return figures


def case_mc10m(scale: float) -> dict[str, Any]:
    return _monte_carlo(int(10_000_000 * scale), keep_rows=False)


def case_one200(scale: float) -> dict[str, Any]:
    """``ROUNDS`` rounds of: many ``run_simulation`` calls (their mean: ``run_simulation``
    works out up to ``AHEAD`` auctions ahead in one call of every ``AHEAD``, so the
    median call does not pay for that and only the mean is the cost of an auction; the
    rounds hold whole lots), then the fast path's seconds per auction on 5,000 auctions
    of the same simulator; the least of each side is compared (as in ``mc1m``), every
    round's figures kept."""
    from phantom_auction.simulation import (
        PhantomSimulator,
        SimulationConfig,
        run_monte_carlo,
        run_simulation,
        simulator,
    )

    # (Read so, the bench also runs against code from before auctions were worked out
    # ahead: lots of one.)
    ahead = getattr(simulator, "AHEAD", 1)
    sim = PhantomSimulator(SimulationConfig(seed=1, num_real_bidders=200))
    for _ in range(max(20, 2 * ahead - 1)):  # warm-up: the lots grow 1, 2, 4 .. AHEAD
        run_simulation(sim, 100.0, 1000.0)
    auctions = max(200, int(5_000 * scale))
    warm = SimulationConfig(seed=1, num_real_bidders=200, num_simulations=100)
    run_monte_carlo(PhantomSimulator(warm), 100.0, 1000.0, workers=1)
    many = SimulationConfig(seed=1, num_real_bidders=200, num_simulations=auctions)
    calls = 64 * max(1, int(20 * scale))  # whole lots (AHEAD divides 64)
    times: list[float] = []
    means, medians, cpus, fasts = [], [], [], []
    for _ in range(ROUNDS):
        these = []
        cpu = time.process_time()
        for _ in range(calls):
            started = time.perf_counter()
            run_simulation(sim, 100.0, 1000.0)
            these.append(time.perf_counter() - started)
        cpus.append((time.process_time() - cpu) / calls * 1e3)
        times += these
        means.append(statistics.fmean(these) * 1e3)
        medians.append(statistics.median(these) * 1e3)
        started = time.perf_counter()
        run_monte_carlo(PhantomSimulator(many), 100.0, 1000.0, workers=1)
        fasts.append((time.perf_counter() - started) / auctions * 1e3)
    mean_ms, fast_ms = min(means), min(fasts)
    return {
        "calls": len(times),
        "rounds": ROUNDS,
        "mean_ms": mean_ms,
        "cpu_ms_per_call": min(cpus),
        "median_ms": min(medians),
        "p10_ms": statistics.quantiles(times, n=10)[0] * 1e3,
        "min_ms": min(times) * 1e3,
        "max_ms": max(times) * 1e3,
        "fast_path_ms_per_auction": fast_ms,
        "object_over_fast": mean_ms / fast_ms,
        "each_mean_ms": [round(m, 3) for m in means],
        "each_median_ms": [round(m, 3) for m in medians],
        "each_fast_ms": [round(f, 4) for f in fasts],
        "load_average_1m": os.getloadavg()[0],
    }


def case_ratio(scale: float) -> dict[str, Any]:
    from phantom_auction.simulation import PhantomSimulator, SimulationConfig, run_monte_carlo

    n = int(20_000 * scale)
    sim = PhantomSimulator(SimulationConfig(num_simulations=n, seed=1))
    run_monte_carlo(
        PhantomSimulator(SimulationConfig(num_simulations=100, seed=1)), 100.0, 1000.0
    )  # warm-up
    started = time.perf_counter()
    fast = run_monte_carlo(sim, 100.0, 1000.0, workers=1)
    fast_s = time.perf_counter() - started
    started = time.perf_counter()
    slow = run_monte_carlo(sim, 100.0, 1000.0, workers=1, engine="object")
    object_s = time.perf_counter() - started
    same = bool(abs(fast.columns["improvement_bps"] - slow.columns["improvement_bps"]).max() < 1e-7)
    return {
        "auctions": n,
        "fast_seconds": fast_s,
        "object_seconds": object_s,
        "object_over_fast": object_s / fast_s,
        "same_numbers": same,
        "fast_us_per_auction": fast_s / n * 1e6,
        "object_us_per_auction": object_s / n * 1e6,
    }


RUNNERS: dict[str, Callable[[float], dict[str, Any]]] = {
    "mc1m": case_mc1m,
    "mc1m-local": case_mc1m_local,
    "mc10m": case_mc10m,
    "one200": case_one200,
    "ratio": case_ratio,
}


def _print_case(name: str, figures: dict[str, Any]) -> None:
    print(f"\n[{name}]")
    for key, value in figures.items():
        if isinstance(value, list):
            text = ", ".join(f"{v:g}" for v in value)
        elif isinstance(value, float):
            text = f"{value:,.3f}"
        elif isinstance(value, int) and not isinstance(value, bool):
            text = f"{value:,}"
        else:
            text = str(value)
        print(f"  {key:36s} {text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", metavar="case", help=f"any of {CASES}")
    parser.add_argument("--quick", action="store_true", help="10x smaller runs (smoke test)")
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help="rounds of the ratio cases (best of each)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    globals()["ROUNDS"] = args.rounds
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}; choose from {CASES}")
    scale = 0.1 if args.quick else 1.0
    if args.child:
        print(json.dumps(RUNNERS[args.child](scale)))
        return 0
    results: dict[str, dict[str, Any]] = {}
    for name in args.cases or CASES:
        cmd = [sys.executable, __file__, "--child", name, "--rounds", str(args.rounds)]
        cmd += ["--quick"] if args.quick else []
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"[{name}] failed:\n{done.stderr}", file=sys.stderr)
            return done.returncode
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        _print_case(name, results[name])
    print("\nSummary (goals: 1M <= 4 s and <= 1.5 GB; 10M flat <= 1.5 GB; 200 bidders <= 2 ms)")
    if "mc1m" in results:
        r = results["mc1m"]
        print(
            f"  {r['auctions']:,} auctions, 2 workers: {r['seconds']:.2f} s, "
            f"peak {r['peak_rss_gib']:.2f} GiB"
        )
        print(
            f"  floor (draw, row sort, gather, cumsum of {r['floor_width']} columns; 2 "
            f"processes): {r['floor_seconds']:.2f} s (best of {r['rounds']} rounds, the floors "
            f"{r['floor_tries_per_round']}x a round)"
            f" -> {r['ratio_to_floor']:.2f}x (goal <= 1.5x); CPU {r['cpu_seconds']:.2f} s vs "
            f"{r['floor_cpu_seconds']:.2f} s -> {r['cpu_ratio_to_floor']:.2f}x; "
            f"load {r['load_average_1m']:.2f}"
        )
        print(
            f"  the same floor in chunks of {r['chunk_rows']:,} rows: "
            f"{r['chunked_floor_seconds']:.2f} s -> {r['ratio_to_chunked_floor']:.2f}x; CPU "
            f"{r['chunked_floor_cpu_seconds']:.2f} s -> {r['cpu_ratio_to_chunked_floor']:.2f}x"
        )
        goal_cpu = 1.5 * r["floor_cpu_seconds"]
        print(
            f"  of which the draws alone (every generator call and ndtri, timed inside the "
            f"run's chunks, which took {r['draws_run_cpu_seconds']:.2f} s CPU so): "
            f"{r['draws_cpu_seconds']:.2f} s CPU = {r['draws_over_floor_cpu']:.2f}x the "
            f"floor's CPU; 1.5x the floor ({goal_cpu:.2f} s) would leave "
            f"{goal_cpu - r['draws_cpu_seconds']:.2f} s for the rest, which takes "
            f"{r['draws_run_cpu_seconds'] - r['draws_cpu_seconds']:.2f} s"
        )
        print(f"BENCH name=simulator.mc_{r['auctions']}_s value={r['seconds']:.3f} unit=s")
        print(
            f"BENCH name=simulator.mc_{r['auctions']}_draws_over_floor "
            f"value={r['draws_over_floor_cpu']:.2f} unit=x"
        )
        print(
            f"BENCH name=simulator.mc_{r['auctions']}_over_floor "
            f"value={r['ratio_to_floor']:.2f} unit=x"
        )
        print(
            f"BENCH name=simulator.mc_{r['auctions']}_peak value={r['peak_rss_gib']:.3f} unit=GiB"
        )
    if "mc1m-local" in results:
        r = results["mc1m-local"]
        print(
            f"  {r['auctions']:,} auctions in one process: {r['seconds']:.2f} s, CPU "
            f"{r['cpu_seconds']:.2f} s, peak {r['peak_rss_gib']:.2f} GiB; "
            f"load {r['load_average_1m']:.2f}"
        )
        print(f"BENCH name=simulator.mc_local_{r['auctions']}_s value={r['seconds']:.3f} unit=s")
        print(
            f"BENCH name=simulator.mc_local_{r['auctions']}_peak "
            f"value={r['peak_rss_gib']:.3f} unit=GiB"
        )
    if "mc10m" in results:
        r = results["mc10m"]
        print(
            f"  {r['auctions']:,} auctions streamed, 2 workers: {r['seconds']:.2f} s, peak "
            f"{r['peak_rss_gib']:.2f} GiB (after the first million: "
            f"{r['peak_rss_after_first_million_gib']:.2f} GiB)"
        )
        print(f"BENCH name=simulator.streamed_{r['auctions']}_s value={r['seconds']:.3f} unit=s")
        print(
            f"BENCH name=simulator.streamed_{r['auctions']}_peak "
            f"value={r['peak_rss_gib']:.3f} unit=GiB"
        )
    if "one200" in results:
        r = results["one200"]
        print(
            f"  run_simulation, 200 bidders: mean {r['mean_ms']:.3f} ms a call (median "
            f"{r['median_ms']:.2f} ms, max {r['max_ms']:.1f} ms; best of {r['rounds']} rounds "
            f"each); fast path at 200 bidders "
            f"{r['fast_path_ms_per_auction']:.3f} ms per auction -> {r['object_over_fast']:.1f}x "
            f"(goal <= 5x); load {r['load_average_1m']:.2f}"
        )
        print(f"BENCH name=simulator.run_simulation_200 value={r['mean_ms']:.3f} unit=ms")
        print(
            f"BENCH name=simulator.run_simulation_200_over_fast "
            f"value={r['object_over_fast']:.2f} unit=x"
        )
    if "ratio" in results:
        r = results["ratio"]
        print(
            f"  fast path {r['object_over_fast']:.0f}x faster than the object path on "
            f"{r['auctions']:,} auctions ({r['fast_us_per_auction']:.1f} vs "
            f"{r['object_us_per_auction']:.0f} us/auction; same numbers: {r['same_numbers']})"
        )
        print(f"BENCH name=simulator.fast_over_object value={r['object_over_fast']:.1f} unit=x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
