"""``phantom-auction sweep``: one Monte Carlo per grid point, a table, Parquet and plots."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..._extras import require
from ..app import app, bad_value, err_console, interrupted, out_console
from ..output import OutputFormat, check_writable_dir, pandas_module, write_frame
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
    parse_field_value,
    scenario_from_options,
    scenario_parameters,
)
from ..tables import compact


def _parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["num_phantom_bidders=0,5", "volatility=0.1,0.3"]`` -> ``{field: [values]}``."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            bad_value("--grid", spec, "expected FIELD=v1,v2,...")
        try:
            field_section(name)
        except KeyError as exc:
            bad_value("--grid", spec, str(exc.args[0]))
        if name in grid:
            bad_value("--grid", spec, f"{name} is swept twice")
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
        int, typer.Option("--simulations", "-n", min=1, help="Monte Carlo auctions per point.")
    ] = 2_000,
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
    ] = Path("reports/sweep"),
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Plot each metric against the grid.")
    ] = True,
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
    pd = pandas_module()
    require("pyarrow", "reports")
    if plots:
        require("matplotlib", "reports")
    check_writable_dir("--out", out)
    from ...simulation.sweeps import grid_points
    from ...simulation.sweeps import sweep as run_sweep
    from ..progress import MonteCarloProgress  # rich.progress: only when running

    points = grid_points(grid)
    for point in points:
        scenario = base
        for name, value in point.items():
            scenario = scenario.with_field(name, value, "--grid")
        # Every grid point is checked before the first one runs.
        build_simulator(scenario)
    base_simulator = build_simulator(base)
    console = out_console()
    fields = list(grid)
    console.print(
        f"{len(points)} grid points × {simulations:,} auctions, "
        f"seed {base.simulation['seed']} at every point"
    )
    out.mkdir(parents=True, exist_ok=True)
    parquet = out / "sweep.parquet"
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
    if rows:
        console.print(_sweep_display(rows, fields))
        console.print(f"wrote {parquet}", soft_wrap=True)
        if plots:
            from ...report import write_sweep_report

            names = [f.rpartition(".")[2] for f in fields]
            page = write_sweep_report(
                out,
                pd.DataFrame(rows),
                names,
                parameters={**scenario_parameters(base), "grid": json.dumps(grid)},
            ).html
            console.print(f"report: {page}", soft_wrap=True)
    if stopped:
        interrupted(
            f"Interrupted: kept {len(rows)} of {len(points)} completed grid points"
            + (f" in {parquet}" if rows else "")
        )
