"""``phantom-auction learn``: two Q-learners in repeated auctions (Banchio & Skrzypacz 2022)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..._extras import require
from ..app import app, bad_value, out_console
from ..output import check_writable_dir


@app.command()
def learn(
    auctions: Annotated[
        int, typer.Option("--auctions", "-n", min=100, help="Auctions per seed and arm.")
    ] = 60_000,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds per arm (1, 2, ...).")] = 5,
    windows: Annotated[int, typer.Option("--windows", min=1, help="Points on the time axis.")] = 30,
    steps: Annotated[
        int, typer.Option("--steps", min=2, help="Bids on the grid: value * k / steps.")
    ] = 20,
    alpha: Annotated[
        float, typer.Option("--alpha", min=0.0, max=1.0, help="Learning rate.")
    ] = 0.05,
    gamma: Annotated[float, typer.Option("--gamma", min=0.0, max=0.999, help="Discount.")] = 0.95,
    beta: Annotated[
        float, typer.Option("--beta", min=0.0, help="Exploration decay: eps_t = exp(-beta t).")
    ] = 1e-4,
    out: Annotated[
        Path, typer.Option("--out", help="Directory for learning.png and learning.json.")
    ] = Path("reports/learn"),
) -> None:
    """Banchio & Skrzypacz (2022): first vs second price, with and without phantoms.

    Two Q-learners with a common value (100 bps) choose bids from a discrete grid,
    epsilon-greedy with exploration decaying as exp(-beta t). Prints bid / value at the
    end (mean ± sd over seeds) and plots it over time with bands over seeds.
    """
    if windows > auctions:
        bad_value("--windows", windows, f"must be at most --auctions={auctions}")
    check_writable_dir("--out", out)
    require("matplotlib", "reports")
    from ...simulation.learning import banchio_skrzypacz, learning_figure
    from ..progress import MonteCarloProgress

    console = out_console()
    started = time.monotonic()
    progress = MonteCarloProgress(console, "Learning runs", delay_s=0.0)
    with progress.running():
        runs = banchio_skrzypacz(
            seeds=tuple(range(1, seeds + 1)),
            auctions=auctions,
            windows=windows,
            steps=steps,
            alpha=alpha,
            gamma=gamma,
            beta=beta,
            progress=progress,
        )
    table = Table(title=f"Bid / value over the last 10% of {auctions:,} auctions, {seeds} seeds")
    for column in ("arm", "bid / value", "sd over seeds", "greedy bid / value", "price / value"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    record = []
    for run in runs:
        mean, sd, _ = run.final()
        tail = max(1, round(0.1 * windows))
        greedy = float(run.greedy[:, -tail:].mean())
        price = float(run.improvement_bps[:, -tail:].mean()) / 100.0
        table.add_row(run.label, f"{mean:.3f}", f"{sd:.3f}", f"{greedy:.3f}", f"{price:.3f}")
        record.append(
            {
                "arm": run.label,
                "bid_over_value": mean,
                "sd_over_seeds": sd,
                "greedy_bid_over_value": greedy,
                "price_over_value": price,
                "auctions": run.auctions.tolist(),
                "played_by_seed": run.played.tolist(),
            }
        )
    console.print(table)
    out.mkdir(parents=True, exist_ok=True)
    learning_figure(runs, out / "learning.png")
    (out / "learning.json").write_text(json.dumps(record, indent=2))
    console.print(f"Figure: {(out / 'learning.png').resolve()}", soft_wrap=True)
    console.print(f"done in {time.monotonic() - started:.1f} s")
