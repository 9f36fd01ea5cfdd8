"""``phantom-auction bench``: run the benchmark scripts and tabulate their figures."""

from __future__ import annotations

import dataclasses
import math
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.markup import escape
from rich.table import Table

from ..app import app, bad_value, err_console, interrupted, out_console
from ..output import clean_floats, dumps
from ..tables import compact

#: Benchmarks ``bench`` runs when none is named: the ones that finish in seconds.
QUICK_BENCHMARKS = ("vcg", "engine", "simulator")
BENCH_PREFIX = "BENCH "


@dataclasses.dataclass(frozen=True, slots=True)
class BenchFigure:
    """One figure a benchmark printed: ``BENCH name=... value=... unit=... [note=...]``."""

    script: str
    name: str
    value: float
    unit: str
    note: str = ""


def parse_bench_lines(script: str, output: str) -> list[BenchFigure]:
    """Every ``BENCH`` line of ``output``; other lines are ignored.

    Format, one figure per line, shell-quoted ``key=value`` pairs after ``BENCH``::

        BENCH name=vcg.clear_1000_bids value=182.5 unit=us note="median of 200"

    ``name``, ``value`` (a number) and ``unit`` are required; ``note`` is optional.
    """
    figures = []
    for line in output.splitlines():
        if not line.startswith(BENCH_PREFIX):
            continue
        try:
            pairs = dict(part.split("=", 1) for part in shlex.split(line[len(BENCH_PREFIX) :]))
            figures.append(
                BenchFigure(
                    script=script,
                    name=pairs["name"],
                    value=float(pairs["value"]),
                    unit=pairs["unit"],
                    note=pairs.get("note", ""),
                )
            )
        except (ValueError, KeyError):
            figures.append(BenchFigure(script, f"unparsable: {line.strip()}", math.nan, ""))
    return figures


#: The installed package's directory; an editable install has the repository above it.
_PACKAGE_DIR = Path(__file__).resolve().parents[2]


def _default_bench_dir() -> Path | None:
    """``./benchmarks``, else the repository's (an editable install run from elsewhere),
    else None: a wheel install has no benchmark scripts."""
    here = Path.cwd() / "benchmarks"
    if here.is_dir():
        return here
    repository = _PACKAGE_DIR.parents[1]
    if (repository / "pyproject.toml").is_file() and (repository / "benchmarks").is_dir():
        return repository / "benchmarks"
    return None


@app.command()
def bench(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Benchmarks to run (vcg, engine, ...); default: the quick ones."),
    ] = None,
    run_all: Annotated[
        bool, typer.Option("--all", help="Run every benchmarks/bench_*.py.")
    ] = False,
    bench_dir: Annotated[
        Path | None, typer.Option("--dir", help="Directory holding bench_*.py scripts.")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, help="Seconds allowed per script.")
    ] = 900.0,
    list_only: Annotated[
        bool, typer.Option("--list", help="List the benchmarks and exit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Run benchmark scripts and print one table of the figures they report.

    Each script prints lines ``BENCH name=<figure> value=<number> unit=<unit> [note=...]``.
    """
    directory = bench_dir or _default_bench_dir()
    if directory is None:
        bad_value(
            "--dir",
            str(Path.cwd() / "benchmarks"),
            "no benchmarks here: the bench_*.py scripts ship with the source repository "
            "(not the installed package); run from its root or pass --dir",
        )
    if not directory.is_dir():
        bad_value("--dir", str(directory), "no such directory")
    available = {p.stem.removeprefix("bench_"): p for p in sorted(directory.glob("bench_*.py"))}
    if list_only:
        for name, path in available.items():
            typer.echo(f"{name}\t{path}{'  (quick)' if name in QUICK_BENCHMARKS else ''}")
        return
    if names and run_all:
        bad_value("--all", True, "give benchmark names or --all, not both")
    if run_all:
        chosen = list(available)
    elif names:
        chosen = list(names)
        for name in chosen:
            if name not in available:
                bad_value(
                    "NAMES", name, f"no bench_{name}.py in {directory}; have {list(available)}"
                )
    else:
        chosen = [n for n in QUICK_BENCHMARKS if n in available]
        if not chosen:
            bad_value("--dir", str(directory), f"none of the quick benchmarks {QUICK_BENCHMARKS}")
    console = err_console() if as_json else out_console()
    figures: list[BenchFigure] = []
    failures: list[str] = []
    stopped = False
    for name in chosen:
        script = available[name]
        try:
            with console.status(f"running {script.name}"):
                proc = subprocess.run(
                    [sys.executable, str(script)],
                    cwd=directory.parent,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
        except subprocess.TimeoutExpired:
            failures.append(f"{name}: timed out after {timeout:g} s")
            continue
        except KeyboardInterrupt:
            stopped = True
            break
        found = parse_bench_lines(name, proc.stdout)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            failures.append(f"{name}: exit {proc.returncode}: {last}")
        elif not found:
            failures.append(
                f"{name}: printed no BENCH lines (expected 'BENCH name=... value=... unit=...')"
            )
        figures.extend(found)
    if as_json:
        typer.echo(
            dumps(
                {
                    "figures": [clean_floats(dataclasses.asdict(f)) for f in figures],
                    "failures": failures,
                }
            )
        )
    else:
        table = Table(title="Benchmarks", title_justify="left")
        for column, justify in (
            ("benchmark", "left"),
            ("figure", "left"),
            ("value", "right"),
            ("unit", "left"),
            ("note", "left"),
        ):
            table.add_column(column, justify=cast(Any, justify))
        for f in figures:
            table.add_row(f.script, f.name, compact(f.value, 3), f.unit, f.note)
        console.print(table)
        for failure in failures:
            err_console().print(f"[red]failed[/red] {escape(failure)}")
    if stopped:
        interrupted(f"Interrupted: kept the figures of {len({f.script for f in figures})} scripts")
    if failures:
        raise typer.Exit(1)
