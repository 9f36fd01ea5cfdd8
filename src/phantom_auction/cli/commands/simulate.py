"""``phantom-auction simulate``: one Monte Carlo run, its summary, files and report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

import typer

from ..._extras import require
from ..app import app, bad_value, err_console, interrupted, out_console
from ..output import (
    OutputFormat,
    OverwriteOpt,
    RowStream,
    clean_floats,
    dumps,
    pandas_module,
    prepare_out_dir,
    write_outputs,
    write_run_files,
    write_run_report,
    write_summary,
)
from ..scenario import (
    BaselinePriceOpt,
    BaselineQuantityOpt,
    ClusterOpt,
    ConfigFileOpt,
    DurationOpt,
    LearningOpt,
    LiquidityOpt,
    MechanismOpt,
    PhantomsOpt,
    RealOpt,
    SchedulerOpt,
    SeedOpt,
    SimulationsOpt,
    SpreadOpt,
    StrategyOpt,
    TrendOpt,
    VolatilityOpt,
    WorkersOpt,
    analyze,
    build_simulator,
    cluster_client,
    note_overridden_environment,
    run_record,
    run_scenario,
    scenario_from_options,
    scenario_parameters,
)
from ..tables import strategy_table, summary_table

#: Where ``--report`` writes without ``--out`` (replaced by each run).
REPORT_DIR: Final = Path("reports/simulate")


@app.command()
def simulate(
    config_file: ConfigFileOpt = None,
    simulations: SimulationsOpt = None,
    real: RealOpt = None,
    phantoms: PhantomsOpt = None,
    mechanism: MechanismOpt = None,
    duration_ms: DurationOpt = None,
    strategy: StrategyOpt = None,
    learning: LearningOpt = None,
    volatility: VolatilityOpt = None,
    liquidity: LiquidityOpt = None,
    trend: TrendOpt = None,
    spread: SpreadOpt = None,
    seed: SeedOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cluster: ClusterOpt = None,
    baseline_price: BaselinePriceOpt = None,
    baseline_quantity: BaselineQuantityOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Directory for per-auction rows and the summary."),
    ] = None,
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format", help="Format of the files written to --out: parquet, csv or json."
        ),
    ] = OutputFormat.parquet,
    report: Annotated[
        bool,
        typer.Option(
            "--report", help="Write the HTML report (to OUT/report, else reports/simulate)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Run a Monte Carlo simulation of phantom auctions and summarise it."""
    if out is not None or report:
        pandas_module()
    if out is not None and fmt is OutputFormat.parquet:
        require("pyarrow", "reports")
    if report:
        require("matplotlib", "reports")
    if out is None and fmt is not OutputFormat.parquet:
        bad_value("--format", fmt.value, "applies to the files written to --out: give --out")
    if out is not None:
        earlier = prepare_out_dir("--out", out, overwrite=overwrite)
    elif report:
        earlier = prepare_out_dir("--report", REPORT_DIR, overwrite=True)
    scenario = scenario_from_options(
        config_file,
        simulations=simulations,
        real=real,
        phantoms=phantoms,
        mechanism=mechanism,
        duration_ms=duration_ms,
        strategy=strategy,
        learning=learning,
        volatility=volatility,
        liquidity=liquidity,
        trend=trend,
        spread=spread,
        seed=seed,
        workers=workers,
        baseline_price=baseline_price,
        baseline_quantity=baseline_quantity,
        scheduler=scheduler,
        cluster=cluster,
    )
    console = err_console() if as_json else out_console()
    simulator = build_simulator(scenario)
    note_overridden_environment()
    if out is not None or report:
        earlier.remove()  # every option checked: the new run replaces it
    drawn = "" if "seed" in scenario.origins else " (drawn; pass --seed to reproduce)"
    console.print(f"seed {scenario.simulation['seed']}{drawn}")
    from ...simulation.parallel import STREAMING_THRESHOLD
    from ...simulation.strategies.base import strategy_label
    from ..progress import MonteCarloProgress  # rich.progress: only when running

    total = int(simulator.config.num_simulations)
    # Too many rows to keep: they stream to the file chunk by chunk instead (local runs).
    stream = None
    local = scenario.scheduler is None and scenario.cluster is None
    if out is not None and local and total > STREAMING_THRESHOLD and fmt is not OutputFormat.json:
        labels = [strategy_label(s) for s in simulator.strategies]
        stream = RowStream(out / f"auctions.{fmt.value}", fmt, labels)
    progress = MonteCarloProgress(err_console(), "Monte Carlo", total=total)
    try:
        with cluster_client(scenario, simulator) as client, progress.running():
            results = run_scenario(simulator, scenario, progress, client, row_sink=stream)
    except KeyboardInterrupt:
        if stream is not None:
            stream.close(keep=False)
        interrupted(
            f"Interrupted after {progress.done:,} of {progress.total:,} auctions; "
            "a partial Monte Carlo run is not a sample of the scenario, nothing written."
        )
    except BaseException:
        if stream is not None:
            stream.close(keep=False)
        raise
    analysis = analyze(results)
    parameters = scenario_parameters(scenario)
    if as_json:
        typer.echo(dumps(clean_floats({"parameters": parameters, **analysis})))
    else:
        console.print(summary_table(analysis, f"{len(results):,} auctions", console.width))
        strategies = strategy_table(analysis)
        if strategies is not None:
            console.print(strategies)
    # Only written and plotted: the frame shares the results' arrays (no copy of every row).
    keep = results.rows_kept and (out is not None or report)
    frame = results.to_frame(copy=False) if keep else None
    if out is not None:
        if frame is not None:
            written = write_outputs(out, frame, analysis, fmt, parameters)
        else:
            written = [write_summary(out, analysis, fmt, parameters)]
            if stream is not None:
                stream.close(keep=True)
                written.insert(0, stream.path)
            else:
                console.print(
                    f"rows not written: {total:,} auctions are more than "
                    f"{STREAMING_THRESHOLD:,} kept in memory; they stream to --format "
                    "parquet or csv in a local run",
                    soft_wrap=True,
                )
        # The seed (drawn or given) and the scenario, so that the run can be redone.
        record = run_record(scenario, "simulate", ["--config", str(out / "scenario.toml")])
        written += write_run_files(out, record)
        for path in written:
            console.print(f"wrote {path}", soft_wrap=True)
    if report:
        if frame is None:
            console.print(
                f"report not written: it plots per-auction rows, which a run of over "
                f"{STREAMING_THRESHOLD:,} auctions does not keep",
                soft_wrap=True,
            )
        else:
            target = (out / "report") if out is not None else REPORT_DIR
            if out is None:  # the report's own scenario.toml, for its rerun line
                record = run_record(
                    scenario, "simulate", ["--config", str(target / "scenario.toml")]
                )
                write_run_files(target, record)
            page = write_run_report(
                target,
                frame,
                analysis,
                results,
                title="Phantom auction Monte Carlo report",
                parameters=parameters,
                rerun=record["rerun"],
            )
            console.print(f"report: {page}", soft_wrap=True)
