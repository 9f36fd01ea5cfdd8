"""Start-up time: ``import phantom_auction`` and ``phantom-auction --help``.

Each case runs in a fresh interpreter ``--repeats`` times; the figure is the best wall
time (the least disturbed by other load), with the median and the best CPU time
(user + system, which a busy machine inflates less) in the note, beside the bare
interpreter (``python -c pass``) measured in the same run, so the ratio and the
difference are what the package adds. ``cli_help_script`` runs the installed
``phantom-auction`` console script itself, when it sits next to this interpreter.

Goal (issue 15): both under 0.2 s.

    python benchmarks/bench_import.py [--repeats 11]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "python_bare": [sys.executable, "-c", "pass"],
    "import_phantom_auction": [sys.executable, "-c", "import phantom_auction"],
    "cli_help": [
        sys.executable,
        "-c",
        "import sys; sys.argv = ['phantom-auction', '--help']\n"
        "from phantom_auction.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass",
    ],
}
_SCRIPT = Path(sys.executable).with_name("phantom-auction")
if _SCRIPT.exists():
    CASES["cli_help_script"] = [str(_SCRIPT), "--help"]


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run of ``argv`` (output discarded)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        argv, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "100"}
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    for argv in CASES.values():  # warm the file cache and the .pyc files
        timed(argv)
    load = os.getloadavg()[0]
    runs = {name: [timed(argv) for _ in range(args.repeats)] for name, argv in CASES.items()}
    bare = min(wall for wall, _ in runs["python_bare"])
    for name, times in runs.items():
        best = min(wall for wall, _ in times)
        median = statistics.median(wall for wall, _ in times)
        cpu = min(c for _, c in times)
        note = f"best of {args.repeats}; median {median:.3f} s; cpu {cpu:.3f} s; load {load:.2f}"
        if name != "python_bare":
            note += f"; {best / bare:.1f}x bare python, +{best - bare:.3f} s"
        print(f'BENCH name=startup.{name} value={best:.3f} unit=s note="{note}"')


if __name__ == "__main__":
    main()
