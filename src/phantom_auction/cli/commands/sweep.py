"""``phantom-auction sweep``: one Monte Carlo per grid point, a table, Parquet and plots."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich import box
from rich.table import Table

from ..._extras import require
from ..app import app, bad_value, err_console, interrupted, out_console
from ..output import (
    OutputFormat,
    OverwriteOpt,
    clean_floats,
    dumps,
    pandas_module,
    prepare_out_dir,
    write_frame,
    write_run_files,
)
from ..scenario import (
    ClusterOpt,
    ConfigFileOpt,
    LiquidityOpt,
    MechanismOpt,
    PhantomsOpt,
    RealOpt,
    SchedulerOpt,
    TrendOpt,
    VolatilityOpt,
    WorkersOpt,
    build_simulator,
    cluster_client,
    field_section,
    note_overridden_environment,
    parse_field_value,
    run_record,
    scenario_from_options,
    scenario_parameters,
)
from ..tables import compact

#: Auctions per grid point when neither ``--simulations`` nor the file's
#: ``[simulation] num_simulations`` says.
DEFAULT_SIMULATIONS = 2_000

#: Fields a ``--grid`` value cannot give (an object, a tuple or a matrix, not a number
#: or a name): set them in the ``--config`` file instead.
NOT_SWEEPABLE = {
    ("simulation", "auction_config"): "an AuctionConfig (use AUCTION_* variables)",
    ("simulation", "phantom_model"): "a PhantomModel (set num_phantom_bidders)",
    ("simulation", "value_distribution"): "a (family, a, b) triple (set it in --config)",
    ("market", "correlation_matrix"): "a matrix (set it in --config, or sweep correlation)",
}

#: Where this command writes when not given --out (replaced by each run).
DEFAULT_OUT: Final = Path("reports/sweep")


def _parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["num_phantom_bidders=0,5", "volatility=0.1,0.3"]`` -> ``{field: [values]}``."""
    grid: dict[str, list[Any]] = {}
    resolved: dict[tuple[str, str], str] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            bad_value("--grid", spec, "expected FIELD=v1,v2,...")
        try:
            where = field_section(name)
        except KeyError as exc:
            bad_value("--grid", spec, str(exc.args[0]))
        if where in NOT_SWEEPABLE:
            bad_value("--grid", spec, f"{name} cannot be swept: it is {NOT_SWEEPABLE[where]}")
        if where in resolved:
            first = resolved[where]
            same = (
                f"{name} is swept twice"
                if first == name
                else (f"{first} and {name} are the same field, {'.'.join(where)}: swept twice")
            )
            bad_value("--grid", spec, same)
        resolved[where] = name
        parsed: list[Any] = []
        for text in values.split(","):
            try:
                value = parse_field_value(name, text)
            except ValueError as exc:
                bad_value("--grid", spec, str(exc))
            if value in parsed:
                bad_value("--grid", spec, f"{text.strip()!r} is listed twice")
            parsed.append(value)
        grid[name] = parsed
    if not grid:
        bad_value("--grid", "", "give at least one --grid FIELD=v1,v2,...")
    return grid


def _sweep_display(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> Table:
    plural = "s" if len(rows) != 1 else ""
    table = Table(
        title=f"Sweep: {len(rows)} grid point{plural} (means)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    names = [f.rpartition(".")[2] for f in fields]
    shown = [
        ("improvement_bps_mean", "improvement bps"),
        ("mev_capture_rate_mean", "MEV capture"),
        ("real_fill_fraction_mean", "real fill"),
        ("phantom_won_mean", "phantom win"),
    ]
    # Narrow terminals wrap headers and values (fold), never cut them to "…".
    for name in names:
        table.add_column(name, overflow="fold")
    for _, title in shown:
        table.add_column(title, justify="right", overflow="fold")
    for row in rows:
        table.add_row(
            *(str(row[n]) for n in names),
            *(compact(row.get(key, float("nan")), 3) for key, _ in shown),
        )
    return table


@app.command()
def sweep(
    grid_specs: Annotated[
        list[str],
        typer.Option(
            "--grid",
            help="FIELD=v1,v2,... of SimulationConfig or MarketConditions; repeat to cross.",
        ),
    ],
    config_file: ConfigFileOpt = None,
    simulations: Annotated[
        int | None,
        typer.Option(
            "--simulations",
            "-n",
            min=1,
            help="Monte Carlo auctions per point (default: the --config file's "
            "num_simulations, else 2,000).",
        ),
    ] = None,
    real: RealOpt = None,
    phantoms: PhantomsOpt = None,
    mechanism: MechanismOpt = None,
    volatility: VolatilityOpt = None,
    liquidity: LiquidityOpt = None,
    trend: TrendOpt = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", min=0, help="Seed shared by every grid point (common numbers)."),
    ] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cluster: ClusterOpt = None,
    out: Annotated[
        Path, typer.Option("--out", help="Directory for sweep.parquet, plots and index.html.")
    ] = DEFAULT_OUT,
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Plot each metric against the grid.")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the table (every column) as JSON.")
    ] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Run one Monte Carlo per grid point and plot each metric against the swept fields.

    Example: --grid num_phantom_bidders=0,5,10,20 --grid volatility=0.1,0.3,0.8
    """
    grid = _parse_grid(grid_specs)
    base = scenario_from_options(
        config_file,
        simulations=simulations,
        real=real,
        phantoms=phantoms,
        mechanism=mechanism,
        volatility=volatility,
        liquidity=liquidity,
        trend=trend,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        cluster=cluster,
    )
    # Flags win over the file, and the file over the sweep's own default.
    base.simulation.setdefault("num_simulations", DEFAULT_SIMULATIONS)
    pd = pandas_module()
    require("pyarrow", "reports")
    if plots:
        require("matplotlib", "reports")
    earlier = prepare_out_dir("--out", out, overwrite=overwrite, default=DEFAULT_OUT)
    from ...simulation.sweeps import grid_points
    from ...simulation.sweeps import sweep as run_sweep
    from ..progress import MonteCarloProgress  # rich.progress: only when running

    for name in grid:
        _, key = field_section(name)
        flag = base.origins.get(key)
        if flag not in (None, "--config", "--grid"):  # a file's value is a base to vary
            # The grid would win, and run.json record the flag's value as the base
            # (the CLI audit).
            bad_value(
                flag,
                base.simulation.get(key, base.market.get(key)),
                f"--grid varies {key}: give one or the other",
            )
    points = grid_points(grid)
    for point in points:
        scenario = base
        for name, value in point.items():
            scenario = scenario.with_field(name, value, "--grid")
        # Every grid point is checked before the first one runs.
        build_simulator(scenario)
    base_simulator = build_simulator(base)
    note_overridden_environment()
    earlier.remove()  # every grid point checked: the new run replaces it
    console = err_console() if as_json else out_console()
    fields = list(grid)

    # What runs: the swept auction counts (seeds), else the base's (flag, file, default).
    def swept(key: str) -> list[Any] | None:
        found = [v for n, v in grid.items() if field_section(n) == ("simulation", key)]
        return found[0] if found else None

    counts = swept("num_simulations")
    seeds = swept("seed")
    console.print(
        f"{len(points)} grid points × "
        + (
            "/".join(f"{int(n):,}" for n in counts)
            if counts
            else f"{base_simulator.config.num_simulations:,}"
        )
        + " auctions, "
        + (
            "seeds " + "/".join(str(v) for v in seeds)
            if seeds
            else f"seed {base.simulation['seed']} at every point"
        )
    )
    out.mkdir(parents=True, exist_ok=True)
    parquet = out / "sweep.parquet"
    rerun = ["--config", str(out / "scenario.toml")]
    for name, values in grid.items():
        rerun += ["--grid", f"{name}={','.join(str(v) for v in values)}"]
    if not plots:
        rerun.append("--no-plots")
    record = {**run_record(base, "sweep", rerun), "grid": grid}
    # Written first: an interrupted sweep's rows say which sweep they belong to.
    write_run_files(out, record)
    finished: dict[int, dict[str, Any]] = {}
    bars: list[MonteCarloProgress] = []

    def keep(index: int, row: dict[str, Any]) -> None:
        finished[index] = row
        # Rewritten after every point, so an interrupted sweep keeps what it finished.
        done = [finished[i] for i in sorted(finished)]
        write_frame(pd.DataFrame(done), parquet, OutputFormat.parquet)

    def start(index: int) -> None:
        for bar in bars:
            bar.close()
        step = f"[{index + 1}/{len(points)}]"
        console.print(f"{step} " + ", ".join(f"{k}={v}" for k, v in points[index].items()))
        bars[:] = [MonteCarloProgress(err_console(), step)]

    def progress(done: int, total: int) -> None:
        bars[-1](done, total)

    stopped = False
    try:
        with cluster_client(base) as client:
            if client is not None:
                bars.append(MonteCarloProgress(err_console(), "sweep"))
            run_sweep(
                base_simulator.config,
                base_simulator.market,
                grid,
                baseline_price=float(base.baseline_price),
                baseline_quantity=float(base.baseline_quantity),
                workers=base.workers,
                client=client,
                progress=progress,
                on_point=keep,
                on_start=start if client is None else None,
            )
    except KeyboardInterrupt:
        stopped = True
    finally:
        for bar in bars:
            bar.close()
    rows = [finished[i] for i in sorted(finished)]
    kept = f"kept {len(rows)} of {len(points)} completed grid points"
    if as_json:
        parameters = {**scenario_parameters(base), "grid": grid}
        typer.echo(dumps(clean_floats({"parameters": parameters, "points": rows})))
    if rows:
        if not as_json:
            console.print(_sweep_display(rows, fields))
        console.print(f"wrote {parquet}", soft_wrap=True)
        if plots:
            from ...report import write_sweep_report

            names = [f.rpartition(".")[2] for f in fields]
            table = pd.DataFrame(rows)
            before = _snapshot(out, _expected_plots(table, names))
            try:
                page = write_sweep_report(
                    out,
                    table,
                    names,
                    parameters={**scenario_parameters(base), "grid": json.dumps(grid)},
                    rerun=record["rerun"],
                ).html
            except KeyboardInterrupt:
                drawn, missing = _plots_after_interrupt(out, before)
                state = (
                    f"keeps {len(rows)} of {len(points)} completed grid points"
                    if stopped
                    else f"is complete ({len(rows)} grid points)"
                )
                interrupted(
                    f"Interrupted while plotting: {parquet} {state}; drew {len(drawn)} of "
                    f"{len(drawn) + len(missing)} plots, not drawn: {', '.join(missing)}; "
                    f"the report {out / 'index.html'} was not written"
                )
            console.print(f"report: {page}", soft_wrap=True)
    if stopped:
        interrupted(f"Interrupted: {kept}" + (f" in {parquet}" if rows else ""))


#: The last bytes of every complete PNG file (its IEND chunk).
_PNG_END = b"IEND\xaeB`\x82"


def _expected_plots(table: Any, names: Sequence[str]) -> list[str]:
    """The PNG files ``report.write_sweep_report`` draws for ``table`` (its naming)."""
    from ...simulation.results import SWEEP_METRICS

    metrics = [m for m in SWEEP_METRICS if f"{m}_mean" in table.columns]
    if len(names) == 2 and all(table[f].nunique() > 1 for f in names):
        return [f"sweep_{m}.png" for m in metrics]
    if len(names) == 1:
        return [f"sweep_{m}.png" for m in metrics]
    return [f"sweep_{m}_vs_{f}.png" for m in metrics for f in names]


def _snapshot(out: Path, plots: Sequence[str]) -> dict[str, tuple[int, int] | None]:
    """Each plot's (mtime in ns, size) before the report is drawn (None: no file)."""
    snapshot: dict[str, tuple[int, int] | None] = {}
    for name in plots:
        path = out / name
        stat = path.stat() if path.is_file() else None
        snapshot[name] = None if stat is None else (stat.st_mtime_ns, stat.st_size)
    return snapshot


def _plots_after_interrupt(
    out: Path, before: Mapping[str, tuple[int, int] | None]
) -> tuple[list[str], list[str]]:
    """(drawn, not drawn) plots of a report interrupted while drawing: drawn if written
    again since ``before`` and whole; a PNG cut short by the interrupt is removed."""
    drawn, missing = [], []
    for name, old in before.items():
        path = out / name
        stat = path.stat() if path.is_file() else None
        fresh = stat is not None and (stat.st_mtime_ns, stat.st_size) != old
        if fresh and path.read_bytes()[-len(_PNG_END) :] == _PNG_END:
            drawn.append(name)
            continue
        if fresh:
            path.unlink(missing_ok=True)
        missing.append(name)
    return drawn, missing
