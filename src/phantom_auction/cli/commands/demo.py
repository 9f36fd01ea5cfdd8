"""``phantom-auction demo``: one live auction, then a Monte Carlo of the defaults and its report."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Final

import typer

from ..._extras import require
from ..app import app, out_console
from ..output import (
    OverwriteOpt,
    pandas_module,
    prepare_out_dir,
    write_run_files,
    write_run_report,
)
from ..scenario import (
    Scenario,
    analyze,
    build_simulator,
    run_record,
    run_scenario,
    scenario_parameters,
)
from ..tables import strategy_table, summary_table

#: The demo's default seed (fixed, so that two runs print the same numbers).
DEMO_SEED = 1

#: Where this command writes when not given --out (replaced by each run).
DEFAULT_OUT: Final = Path("reports/demo")


@app.command()
def demo(
    simulations: Annotated[
        int, typer.Option("--simulations", "-n", min=1, help="Monte Carlo auctions.")
    ] = 100_000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = DEMO_SEED,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Worker processes (default: all cores).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory of the HTML report.")] = DEFAULT_OUT,
    overwrite: OverwriteOpt = False,
) -> None:
    """One live phantom auction, then a Monte Carlo of the default config with its report."""
    from ...demo import live_auction_timeline

    pandas_module()
    require("matplotlib", "reports")
    earlier = prepare_out_dir("--out", out, overwrite=overwrite, default=DEFAULT_OUT)
    console = out_console()
    started = time.monotonic()
    console.rule("1. One live phantom auction")
    live = live_auction_timeline(console, seed=seed)
    # The Monte Carlo clears by the live auction's rule: one mechanism in one demo.
    mechanism = live.result.mechanism
    console.rule(
        f"2. {simulations:,} Monte Carlo auctions of the default configuration ({mechanism})"
    )
    scenario = Scenario(
        simulation={"num_simulations": simulations, "seed": seed, "mechanism": mechanism},
        workers=workers or max(1, os.cpu_count() or 1),
    )
    from ..progress import MonteCarloProgress  # rich.progress: only when running

    progress = MonteCarloProgress(console, "Monte Carlo", delay_s=0.0)
    simulator = build_simulator(scenario)
    earlier.remove()
    with progress.running():
        results = run_scenario(simulator, scenario, progress)
    analysis = analyze(results)
    console.print(summary_table(analysis, f"{len(results):,} auctions", console.width))
    strategies = strategy_table(analysis)
    if strategies is not None:
        console.print(strategies)
    console.rule("3. Report")
    # Its Monte Carlo is a simulate run: scenario.toml beside the report reruns it.
    record = run_record(scenario, "simulate", ["--config", str(out / "scenario.toml")])
    write_run_files(out, record)
    page = write_run_report(
        out,
        results.to_frame(),
        analysis,
        results,
        title="phantom-auction demo: default configuration",
        parameters=scenario_parameters(scenario),
        rerun=record["rerun"],
    )
    console.print(f"Report written to {page.resolve()}", soft_wrap=True)
    console.print(f"done in {time.monotonic() - started:.1f} s")
