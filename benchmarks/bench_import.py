"""Start-up time: ``import phantom_auction`` and ``phantom-auction --help``.

Each figure is the median wall time of a fresh interpreter (``python -c ...``) over
``--repeats`` runs, beside the bare interpreter (``python -c pass``) measured in the
same run, so the ratio and the difference are what the package adds.

Goal (issue 15): both under 0.2 s.

    python benchmarks/bench_import.py [--repeats 11]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CASES = {
    "python_bare": "pass",
    "import_phantom_auction": "import phantom_auction",
    "cli_help": "import sys; sys.argv = ['phantom-auction', '--help']\n"
    "from phantom_auction.cli import main\n"
    "try:\n    main()\nexcept SystemExit:\n    pass",
}


def wall_time(code: str) -> float:
    """Seconds a fresh interpreter takes to run ``code`` (output discarded)."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "100"},
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    wall_time("import phantom_auction")  # warm the file cache and the .pyc files
    load = os.getloadavg()[0]
    medians = {
        name: statistics.median(wall_time(code) for _ in range(args.repeats))
        for name, code in CASES.items()
    }
    bare = medians["python_bare"]
    for name, seconds in medians.items():
        note = f"median of {args.repeats}; load {load:.2f}"
        if name != "python_bare":
            note += f"; {seconds / bare:.1f}x bare python, +{seconds - bare:.3f} s"
        print(f'BENCH name=startup.{name} value={seconds:.3f} unit=s note="{note}"')


if __name__ == "__main__":
    main()
