"""``phantom-auction learn``: two Q-learners in repeated auctions (Banchio & Skrzypacz 2022)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.table import Table

from ..._extras import require
from ...errors import PhantomAuctionError
from ..app import app, bad_value, err_console, interrupted, out_console
from ..output import OverwriteOpt, atomic, clean_floats, dumps, prepare_out_dir

#: ``--beta`` must stay below this: the learners' per-auction decay of exploration,
#: ``exp(-beta)``, is a float > 0 only up to about 745.
MAX_BETA = 745.0

#: The option behind each field the learners or the experiment may refuse.
FIELD_OPTIONS = {
    "alpha": "--alpha",
    "beta": "--beta",
    "gamma": "--gamma",
    "windows": "--windows",
    "steps": "--steps",
    "auctions": "--auctions",
    "bids_bps": "--steps",
}

#: Where this command writes when not given --out (replaced by each run).
DEFAULT_OUT: Final = Path("reports/learn")


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
    ] = DEFAULT_OUT,
    overwrite: OverwriteOpt = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the table (and each arm's path) as JSON.")
    ] = False,
) -> None:
    """Banchio & Skrzypacz (2022): first vs second price, with and without phantoms.

    Two Q-learners with a common value (100 bps) choose bids from a discrete grid,
    epsilon-greedy with exploration decaying as exp(-beta t). Prints bid / value at the
    end (mean ± sd over seeds) and plots it over time with bands over seeds.
    """
    if windows > auctions:
        bad_value("--windows", windows, f"must be at most --auctions={auctions}")
    for option, value in (("--alpha", alpha), ("--gamma", gamma), ("--beta", beta)):
        if not math.isfinite(value):
            bad_value(option, value, "not a finite number")
    if not alpha > 0.0:
        bad_value("--alpha", alpha, "must be > 0 (a learner that never learns)")
    if not beta < MAX_BETA:
        # The learners' per-auction decay exp(-beta) would underflow to 0.
        bad_value("--beta", beta, f"must be below {MAX_BETA:g}: exp(-beta) underflows to 0")
    earlier = prepare_out_dir("--out", out, overwrite=overwrite, default=DEFAULT_OUT)
    require("matplotlib", "reports")
    from ...report.learning import plot_learning
    from ...simulation.learning import LearningRun, banchio_skrzypacz
    from ..progress import MonteCarloProgress

    given: dict[str, float | int] = {
        "--auctions": auctions,
        "--seeds": seeds,
        "--windows": windows,
        "--steps": steps,
        "--alpha": alpha,
        "--gamma": gamma,
        "--beta": beta,
    }
    parameters = {option.removeprefix("--"): value for option, value in given.items()}
    console = err_console() if as_json else out_console()
    started = time.monotonic()
    progress = MonteCarloProgress(console, "Learning runs", delay_s=0.0)
    arms = [(m, p) for m in ("first_price", "second_price") for p in (False, True)]
    seed_list = tuple(range(1, seeds + 1))
    total = len(arms) * len(seed_list)
    # One (arm, seed) at a time, so that Ctrl-C keeps every finished one.
    finished: list[list[LearningRun]] = []
    stopped = False
    try:
        with progress.running():
            progress(0, total)
            for mechanism, phantoms in arms:
                finished.append([])
                for seed in seed_list:
                    (run,) = banchio_skrzypacz(
                        seeds=(seed,),
                        auctions=auctions,
                        windows=windows,
                        steps=steps,
                        alpha=alpha,
                        gamma=gamma,
                        beta=beta,
                        mechanisms=(mechanism,),
                        with_phantoms=(phantoms,),
                    )
                    finished[-1].append(run)
                    progress(sum(map(len, finished)), total)
    except PhantomAuctionError as exc:
        # banchio_skrzypacz's argument names are the options' here.
        blamed = FIELD_OPTIONS.get(str(getattr(exc, "field", "")))
        if blamed is None:
            raise
        bad_value(blamed, given[blamed], str(exc))
    except KeyboardInterrupt:
        stopped = True
    runs = [_merged(LearningRun, parts) for parts in finished if parts]
    table = Table(title=f"Bid / value over the last 10% of {auctions:,} auctions, {seeds} seeds")
    for column in ("arm", "bid / value", "sd over seeds", "greedy bid / value", "price / value"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    record = []
    for run in runs:
        mean, sd, _ = run.final()
        tail = max(1, round(0.1 * windows))
        greedy = float(run.greedy[:, -tail:].mean())
        price = float(run.improvement_bps[:, -tail:].mean()) / 100.0
        complete = len(run.seeds) == seeds
        label = run.label if complete else f"{run.label} ({len(run.seeds)} of {seeds} seeds)"
        spread = f"{sd:.3f}" if math.isfinite(sd) else "–"  # one seed: no spread
        table.add_row(label, f"{mean:.3f}", spread, f"{greedy:.3f}", f"{price:.3f}")
        record.append(
            {
                "arm": run.label,
                "seeds": list(run.seeds),
                "complete": complete,
                "bid_over_value": mean,
                "sd_over_seeds": sd,
                "greedy_bid_over_value": greedy,
                "price_over_value": price,
                "auctions": run.auctions.tolist(),
                "played_by_seed": run.played.tolist(),
            }
        )
    # The settings with the arms, in the file as on stdout: a result file names the run
    # that made it (the CLI audit: learning.json had no alpha, gamma, beta, steps...).
    document = clean_floats({"parameters": parameters, "arms": record})
    if as_json:
        typer.echo(dumps(document))
    elif runs:
        console.print(table)
    earlier.remove()  # the runs made (an option they refused has exited before)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "learning.json"
    if runs or not stopped:
        with atomic(data) as partial:
            partial.write_text(dumps(document) + "\n", encoding="utf-8")
    if stopped:
        done = sum(len(r.seeds) for r in runs)
        interrupted(
            f"Interrupted after {done} of {total} learning runs (arm x seed): "
            + (
                f'kept them in {data} (an arm short of seeds has "complete": false); '
                if runs
                else "nothing to keep; "
            )
            + "the figure was not drawn."
        )
    plot_learning(runs, out / "learning.png")
    console.print(f"Data: {data.resolve()}", soft_wrap=True)
    console.print(f"Figure: {(out / 'learning.png').resolve()}", soft_wrap=True)
    console.print(f"done in {time.monotonic() - started:.1f} s")


def _merged(cls: Any, parts: list[Any]) -> Any:
    """One arm's :class:`LearningRun` from its runs of one seed each (seeds stacked)."""
    import numpy as np

    first = parts[0]
    return cls(
        first.mechanism,
        first.phantoms,
        tuple(s for p in parts for s in p.seeds),
        first.auctions,
        np.vstack([p.played for p in parts]),
        np.vstack([p.greedy for p in parts]),
        np.vstack([p.improvement_bps for p in parts]),
    )
