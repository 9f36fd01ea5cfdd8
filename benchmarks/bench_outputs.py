"""Writing a run's per-auction rows: ``auctions.json`` (exact doubles, a block of rows at
a time) beside pandas' own ``to_json`` (which rounds to 10 decimals) and Parquet, for
the same frame in the same run.

The frame is the rows of ``--auctions`` default auctions (kept rows of a Monte Carlo run,
seed 3). Each writer runs ``--repeats`` times; the figure is the best wall time (the one
other load disturbs least), with the ratio to pandas' ``to_json``.

    python benchmarks/bench_outputs.py [--auctions 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def best_seconds(write: Callable[[Path], Any], path: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        write(path)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--auctions", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from phantom_auction.cli.output import OutputFormat, write_frame
    from phantom_auction.simulation import (
        MarketConditions,
        PhantomSimulator,
        SimulationConfig,
        run_monte_carlo,
    )

    config = SimulationConfig(num_simulations=args.auctions, seed=3)
    results = run_monte_carlo(
        PhantomSimulator(config, MarketConditions()), 100.0, 1000.0, keep_rows=True
    )
    frame = results.to_frame()
    writers: dict[str, Callable[[Path], Any]] = {
        "auctions_json": lambda p: write_frame(frame, p, OutputFormat.json),
        "pandas_to_json": lambda p: frame.to_json(p, orient="records"),
        "parquet": lambda p: write_frame(frame, p, OutputFormat.parquet),
    }
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        seconds = {
            name: best_seconds(write, Path(folder) / name, args.repeats)
            for name, write in writers.items()
        }
    rows, columns = frame.shape
    for name, value in seconds.items():
        note = f"{rows:,} rows x {columns} columns, best of {args.repeats}; load {load:.2f}"
        if name != "pandas_to_json":
            note += f"; {value / seconds['pandas_to_json']:.2f}x pandas' to_json"
        print(f'BENCH name=outputs.{name} value={value:.3f} unit=s note="{note}"')


if __name__ == "__main__":
    main()
