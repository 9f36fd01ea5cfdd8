"""The ``phantom-auction`` command line.

Commands: ``demo``, ``simulate``, ``sweep``, ``clear``, ``config show``, ``bench``, and,
with the ``service`` extra, the service's own commands (``serve``, ``clients``,
``bidders``), mounted lazily so that the rest works without it.

Conventions every command follows:

- A bad flag or value exits with code 2 and one line on stderr naming the option and
  the value (``Error: Invalid value for '--supply': 'abc' is not a valid float.``).
- A missing optional extra exits with code 1 and the ``pip install`` line that fixes it.
- Ctrl-C exits with code 130 after keeping what was finished (a sweep keeps its
  completed grid points; ``bench`` prints the scripts that finished).
- Heavy imports (numpy, pandas, matplotlib, the simulator) happen inside commands, so
  ``--help`` and ``config show`` start fast.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import importlib.util
import json
import math
import os
import secrets
import shlex
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from enum import Enum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from ._extras import MissingExtra, require
from .errors import InvalidBidParameters, PhantomAuctionError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["app", "main"]

# ClickException, whether typer vendors click (>= 0.20) or uses the click package.
_CLICK_ERROR = cast(type[Exception], typer.BadParameter.__mro__[2])

#: Top-level commands the service extra registers through ``service.commands.register``.
SERVICE_COMMANDS = ("serve", "clients", "bidders")
_SERVICE_MODULE = "phantom_auction.service.commands"


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _out() -> Console:
    return Console(highlight=False)


#: Set when a command has said what it kept after Ctrl-C (so the root does not repeat it).
_INTERRUPT_REPORTED: list[str] = []


def interrupted(message: str) -> NoReturn:
    """Say what was kept after Ctrl-C and exit 130."""
    _err().print(message)
    _INTERRUPT_REPORTED.append(message)
    raise typer.Exit(130)


def bad_value(option: str, value: object, reason: str) -> NoReturn:
    """Raise the usage error the CLI prints as one line and exits 2 on."""
    raise typer.BadParameter(f"{value!r}: {reason}", param_hint=f"'{option}'")


class _CommandLine(TyperGroup):
    """The root group: one-line errors, install hints, clean Ctrl-C, lazy service commands."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        kwargs["standalone_mode"] = False
        argv = list(args[0] if args else kwargs.get("args") or sys.argv[1:])
        try:
            code = super().main(*args, **kwargs)
        except _CLICK_ERROR as exc:
            _name_the_value(exc, argv)
            format_message = getattr(exc, "format_message", None)
            message = format_message() if callable(format_message) else str(exc)
            if type(exc).__name__ == "NoArgsIsHelpError":
                typer.echo(message, err=True)
            else:
                typer.echo(f"Error: {message}", err=True)
            sys.exit(int(getattr(exc, "exit_code", 2)))
        except MissingExtra as exc:
            typer.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except PhantomAuctionError as exc:
            # Library validation names the field and the value; it is bad input.
            typer.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            code = 130
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            sys.exit(1)
        if code == 130 and not _INTERRUPT_REPORTED:
            # Typer turns a KeyboardInterrupt the command did not handle into exit 130.
            typer.echo("Interrupted.", err=True)
        _INTERRUPT_REPORTED.clear()
        sys.exit(code if isinstance(code, int) else 0)

    def list_commands(self, ctx: Any) -> list[str]:
        names = list(super().list_commands(ctx))
        if _service_available():
            names += [n for n in SERVICE_COMMANDS if n not in names]
        return names

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in SERVICE_COMMANDS and _service_available():
            return _service_command(cmd_name)
        return command


def _raw_value(argv: Sequence[str], opts: Sequence[str]) -> str | None:
    """The text last given on the command line for an option with names ``opts``."""
    found = None
    for i, token in enumerate(argv):
        for opt in opts:
            if token == opt and i + 1 < len(argv):
                found = argv[i + 1]
            elif opt.startswith("--") and token.startswith(opt + "="):
                found = token[len(opt) + 1 :]
            elif not opt.startswith("--") and token.startswith(opt) and len(token) > len(opt):
                found = token[len(opt) :]
    return found


def _name_the_value(exc: Exception, argv: Sequence[str]) -> None:
    """Put the offending value into a bad-parameter message that does not show it."""
    param = getattr(exc, "param", None)
    message = getattr(exc, "message", None)
    opts = list(getattr(param, "opts", []) or [])
    if param is None or not isinstance(message, str) or not opts or opts[0][:1] != "-":
        return
    raw = _raw_value(argv, opts)
    message = message.removeprefix("Value error, ")
    if raw is not None and repr(raw) not in message and raw not in message:
        message = f"{raw!r} ({message})"
    cast(Any, exc).message = message


def _service_available() -> bool:
    try:
        return importlib.util.find_spec(_SERVICE_MODULE) is not None
    except ImportError:
        return False


def _load_service_register() -> Callable[[typer.Typer], None]:
    module = importlib.import_module(_SERVICE_MODULE)
    return cast(Callable[[typer.Typer], None], module.register)


def _service_command(name: str) -> Any:
    """The service's ``name`` command, or one that prints the install hint without the extra."""
    try:
        register = _load_service_register()
    except (MissingExtra, ModuleNotFoundError) as exc:
        missing = exc if isinstance(exc, MissingExtra) else None
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith(_SERVICE_MODULE):
            return None
        return _install_hint_command(name, missing, getattr(exc, "name", None))
    holder = typer.Typer()

    # A callback keeps typer from collapsing a one-command app into that command.
    @holder.callback()
    def _service() -> None:
        """Service commands."""

    register(holder)
    group = typer.main.get_command(holder)
    return cast(Any, group).get_command(None, name)


def _install_hint_command(name: str, missing: MissingExtra | None, module: str | None) -> Any:
    hint = typer.Typer()
    settings = {"ignore_unknown_options": True, "allow_extra_args": True}

    @hint.command(name, context_settings=settings, add_help_option=False)
    def _hint(ctx: typer.Context) -> None:
        reason = str(missing) if missing else f"{module} is needed for `{name}`"
        if "pip install" not in reason:
            reason += ": pip install 'phantom-auction[service]'"
        typer.echo(f"Error: {reason}", err=True)
        raise typer.Exit(1)

    return typer.main.get_command(hint)


app = typer.Typer(
    cls=_CommandLine,
    name="phantom-auction",
    help="Phantom auctions: simulate, sweep, clear bids, show the configuration, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="The effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def main() -> None:
    """Console-script entry point (``phantom-auction``)."""
    app()


# -- shared helpers ------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """JSON-encodable form of numpy scalars/arrays, paths and dataclasses."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=_jsonable, allow_nan=False)


def _clean_floats(value: Any) -> Any:
    """Replace NaN/inf (no JSON form) by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_floats(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _clean_floats(value.item())
    return value


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return str(x)
    if x != 0.0 and (abs(x) >= 1e9 or abs(x) < 10 ** (-digits)):
        return f"{x:.{digits}g}"
    # Compact: trailing zeros dropped, so tables fit an 80-column terminal.
    return f"{x:,.{digits}f}".rstrip("0").rstrip(".")


class _RateColumn(ProgressColumn):
    """Auctions per second (rich's own speed estimate)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


class MonteCarloProgress:
    """``progress(done, total)`` callback that shows a bar once work has run over a second.

    Short runs stay quiet; long ones get a bar with count, rate (auctions/s), elapsed
    time and ETA.
    """

    def __init__(self, console: Console, description: str, *, delay_s: float = 1.0) -> None:
        self._console = console
        self._description = description
        self._delay_s = delay_s
        self._start = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None
        self.done = 0
        self.total = 0

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = int(done), int(total)
        if self._progress is None:
            if time.monotonic() - self._start < self._delay_s or done >= total:
                return
            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(bar_width=16),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self._console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=total)
        self._progress.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextmanager
    def running(self) -> Iterator[MonteCarloProgress]:
        self._start = time.monotonic()
        try:
            yield self
        finally:
            self.close()


# -- simulation scenario: TOML file + flags ------------------------------------------


@dataclasses.dataclass
class Scenario:
    """What one Monte Carlo run needs: simulator fields, market fields and run settings."""

    simulation: dict[str, Any] = dataclasses.field(default_factory=dict)
    market: dict[str, Any] = dataclasses.field(default_factory=dict)
    baseline_price: float = 100.0
    baseline_quantity: float = 1000.0
    workers: int | None = None
    #: A Dask cluster instead of local processes: ``tcp://HOST:PORT`` or ``local:N``.
    scheduler: str | None = None
    cluster: str | None = None
    #: Field name -> the option that set it (``--phantoms``, ``--config``, ``--grid``), so
    #: that a value the simulator refuses is blamed on what the user typed.
    origins: dict[str, str] = dataclasses.field(default_factory=dict)

    def set(self, name: str, value: Any, origin: str) -> None:
        """Set a SimulationConfig or MarketConditions field, remembering who set it."""
        section, key = _field_section(name)
        getattr(self, section)[key] = value
        self.origins[key] = origin

    def with_field(self, name: str, value: Any, origin: str = "--grid") -> Scenario:
        """A copy with one field changed (a grid point)."""
        copy = dataclasses.replace(
            self,
            simulation=dict(self.simulation),
            market=dict(self.market),
            origins=dict(self.origins),
        )
        copy.set(name, value, origin)
        return copy


def _simulation_classes() -> tuple[type[Any], type[Any]]:
    from .simulation import MarketConditions, SimulationConfig

    return SimulationConfig, MarketConditions


def _field_defaults(cls: type[Any]) -> dict[str, Any]:
    """Field name -> default of a dataclass or pydantic model (``...`` if required)."""
    if dataclasses.is_dataclass(cls):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
            else:
                out[f.name] = ...
        return out
    model_fields = getattr(cls, "model_fields", None)
    if isinstance(model_fields, Mapping):
        return {name: getattr(info, "default", ...) for name, info in model_fields.items()}
    raise TypeError(f"{cls!r} is neither a dataclass nor a pydantic model")


def _field_section(name: str) -> tuple[str, str]:
    """``("simulation" | "market", field)`` for a field, optionally prefixed ``market.``."""
    sim_cls, market_cls = _simulation_classes()
    prefix, _, bare = name.rpartition(".")
    sim, market = _field_defaults(sim_cls), _field_defaults(market_cls)
    if prefix in ("", "simulation") and bare in sim:
        return "simulation", bare
    if prefix in ("", "market") and bare in market:
        return "market", bare
    raise KeyError(
        f"unknown field {name!r}; SimulationConfig fields: {sorted(sim)}; "
        f"MarketConditions fields: {sorted(market)}"
    )


def _parse_field_value(name: str, text: str) -> Any:
    """Parse ``text`` for field ``name`` following the type of the field's default."""
    sim_cls, market_cls = _simulation_classes()
    section, key = _field_section(name)
    default = _field_defaults(sim_cls if section == "simulation" else market_cls)[key]
    text = text.strip()
    if isinstance(default, bool):
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{text!r} is not a boolean (true/false)")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if text.lower() in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


_RUN_KEYS = {"baseline_price", "baseline_quantity", "workers"}


def _load_scenario_file(path: Path) -> Scenario:
    """Read ``[simulation]``, ``[market]`` and ``[run]`` tables from a TOML file."""
    option = "--config"
    try:
        table = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        bad_value(option, str(path), f"cannot read: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        bad_value(option, str(path), f"invalid TOML: {exc}")
    scenario = Scenario()
    sim_cls, market_cls = _simulation_classes()
    known = {
        "simulation": set(_field_defaults(sim_cls)),
        "market": set(_field_defaults(market_cls)),
        "run": _RUN_KEYS,
    }
    for section, keys in table.items():
        if section not in known or not isinstance(keys, dict):
            bad_value(option, str(path), f"unknown table [{section}]; use {sorted(known)}")
        for key, value in keys.items():
            if key not in known[section]:
                bad_value(
                    option,
                    str(path),
                    f"unknown key {section}.{key}; known: {sorted(known[section])}",
                )
            if section == "run":
                setattr(scenario, key, value)
            else:
                scenario.set(f"{section}.{key}", value, option)
    return scenario


def _build_simulator(scenario: Scenario) -> Any:
    from .simulation import PhantomSimulator

    sim_cls, market_cls = _simulation_classes()
    try:
        config = sim_cls(**scenario.simulation)
        market = market_cls(**scenario.market)
        return PhantomSimulator(config, market)
    except InvalidBidParameters as exc:
        option = scenario.origins.get(exc.field.partition(".")[0], exc.field)
        bad_value(option, exc.value, f"{exc.field}: {exc.reason}")


def _run_monte_carlo(
    simulator: Any,
    scenario: Scenario,
    progress: Callable[[int, int], None] | None,
    client: Any = None,
) -> Any:
    """The ``MonteCarloResults`` of ``simulator`` (built from ``scenario``), on ``client``'s
    Dask cluster when one is given, else in local processes."""
    if client is not None:
        from .simulation.distributed import run_monte_carlo_on_cluster

        return run_monte_carlo_on_cluster(
            simulator,
            float(scenario.baseline_price),
            float(scenario.baseline_quantity),
            client,
            progress=progress,
        )
    from .simulation import run_monte_carlo

    return run_monte_carlo(
        simulator,
        float(scenario.baseline_price),
        float(scenario.baseline_quantity),
        workers=scenario.workers,
        progress=progress,
    )


@contextmanager
def _cluster_client(scenario: Scenario) -> Iterator[Any]:
    """A Dask client for ``--scheduler``/``--cluster``, or None to run locally."""
    if scenario.scheduler is None and scenario.cluster is None:
        yield None
        return
    from .simulation.distributed import open_client

    with ExitStack() as stack:
        try:
            client = stack.enter_context(open_client(scenario.scheduler, scenario.cluster))
        except InvalidBidParameters as exc:
            # Only connecting is checked here; errors of the run itself pass through.
            bad_value(f"--{exc.field.split('/')[0]}", exc.value, exc.reason)
        yield client


def _analyze(results: Any) -> dict[str, Any]:
    from .simulation import analyze_results

    return analyze_results(results)


def _sig(value: Any, digits: int = 5) -> str:
    """A statistic in at most ``digits`` significant digits (terminal tables)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return "–" if math.isnan(x) else str(x)
    return f"{x:,.{digits}g}" if abs(x) < 10**digits else f"{x:,.0f}"


def _summary_table(analysis: Mapping[str, Any], title: str, width: int) -> Table:
    """Per-metric statistics; narrow terminals get fewer columns (all are in --json)."""
    from .report import METRICS, summary_rows

    columns = ["mean", "median", "std", "p05", "p95"]
    if width >= 110:
        columns = ["mean", "median", "std", "min", "p05", "p95", "max"]
    elif width < 96:
        columns.remove("std")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("metric", no_wrap=True)
    table.add_column("unit", style="dim", no_wrap=True)
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    for metric, _, stats in summary_rows(analysis):
        info = METRICS.get(metric)
        # Prices sit near the baseline: a bps move needs 7 digits to show.
        digits = (7 if metric == "clearing_price" else 5) - (1 if width < 96 else 0)
        table.add_row(
            metric,
            info.short if info else "",
            *(_sig(stats.get(c, math.nan), digits) for c in columns),
        )
    return table


def _strategy_table(analysis: Mapping[str, Any]) -> Table | None:
    shares = analysis.get("strategy_performance")
    if not isinstance(shares, Mapping) or not shares:
        return None
    details = analysis.get("strategy_details")
    details = details if isinstance(details, Mapping) else {}
    table = Table(title="Winners by strategy", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("strategy")
    table.add_column("auctions won", justify="right")
    table.add_column("mean bid shading", justify="right")
    table.add_column("mean profit (bps)", justify="right")
    for name, share in sorted(shares.items(), key=lambda kv: -float(kv[1])):
        extra = details.get(name, {})
        label = {"none": "no winner (CFMM)", "phantom": "phantom (CFMM)"}.get(str(name), name)
        table.add_row(
            str(label),
            f"{float(share):.1%}",
            _sig(extra.get("bid_shading", math.nan)) if extra else "",
            _sig(extra.get("profit_bps", math.nan)) if extra else "",
        )
    return table


def _scenario_parameters(scenario: Scenario) -> dict[str, Any]:
    """Flat ``name -> value`` of the effective settings of a run (defaults filled in)."""
    simulator = _build_simulator(scenario)
    config, market = simulator.config, simulator.market
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        if f.init and f.repr:
            out[f"simulation.{f.name}"] = getattr(config, f.name)
    out["simulation.clearing_mechanism"] = config.clearing_mechanism
    for f in dataclasses.fields(market):
        out[f"market.{f.name}"] = getattr(market, f.name)
    out["real_strategies"] = ", ".join(
        str(getattr(s, "name", type(s).__name__)) for s in simulator.strategies
    )
    out["baseline_price"] = scenario.baseline_price
    out["baseline_quantity"] = scenario.baseline_quantity
    return out


def _convergence(results: Any, n: int = 20) -> tuple[Any, Any] | None:
    paths = getattr(results, "convergence_paths", None)
    if paths is None:
        return None
    return cast(tuple[Any, Any], paths(n=n))


def _write_run_report(
    out_dir: Path, frame: pd.DataFrame, analysis: Mapping[str, Any], results: Any, **kw: Any
) -> Path:
    from .report import write_report

    written = write_report(out_dir, frame, analysis, convergence=_convergence(results), **kw)
    return written.html


class OutputFormat(StrEnum):
    """File format of per-auction rows and the summary."""

    json = "json"
    csv = "csv"
    parquet = "parquet"


def _summary_long(analysis: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The summary as ``(metric, statistic, value)`` rows, for CSV and Parquet."""
    rows: list[dict[str, Any]] = []
    for metric, stats in analysis.items():
        if not isinstance(stats, Mapping):
            rows.append({"metric": metric, "statistic": "value", "value": stats})
            continue
        for statistic, value in stats.items():
            rows.append({"metric": metric, "statistic": str(statistic), "value": value})
    return rows


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, moved onto it only once fully written.

    An interrupted write leaves the previous file (or none), never half a file.
    """
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write_frame(frame: pd.DataFrame, path: Path, fmt: OutputFormat) -> None:
    with _atomic(path) as partial:
        if fmt is OutputFormat.parquet:
            require("pyarrow", "reports")
            frame.to_parquet(partial, index=False)
        elif fmt is OutputFormat.csv:
            frame.to_csv(partial, index=False)
        else:
            frame.to_json(partial, orient="records", indent=1)


def _write_outputs(
    out: Path, frame: pd.DataFrame, analysis: Mapping[str, Any], fmt: OutputFormat
) -> list[Path]:
    pd = _pandas()
    out.mkdir(parents=True, exist_ok=True)
    auctions = out / f"auctions.{fmt.value}"
    summary = out / f"summary.{fmt.value}"
    _write_frame(frame, auctions, fmt)
    if fmt is OutputFormat.json:
        with _atomic(summary) as partial:
            partial.write_text(_dumps(_clean_floats(dict(analysis))) + "\n", encoding="utf-8")
    else:
        long = pd.DataFrame(_summary_long(analysis))
        long["value"] = pd.to_numeric(long["value"], errors="coerce")
        _write_frame(long, summary, fmt)
    return [auctions, summary]


def _pandas() -> Any:
    require("pandas", "reports")
    import pandas

    return pandas


def _check_writable_dir(option: str, path: Path) -> None:
    if path.exists() and not path.is_dir():
        bad_value(option, str(path), "exists and is not a directory")


# -- simulate ------------------------------------------------------------------------

ConfigFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        # "\\[" keeps rich from reading the table names as markup.
        help="TOML file with \\[simulation] (SimulationConfig fields), \\[market] "
        "(MarketConditions fields) and \\[run] (baseline_price, baseline_quantity, workers).",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
SimulationsOpt = Annotated[
    int | None, typer.Option("--simulations", "-n", min=1, help="Monte Carlo auctions.")
]
RealOpt = Annotated[int | None, typer.Option("--real", min=0, help="Real bidders per auction.")]
PhantomsOpt = Annotated[
    int | None, typer.Option("--phantoms", min=0, help="Phantom bidder slots per auction.")
]
MechanismOpt = Annotated[
    str | None,
    typer.Option(
        "--mechanism", help="Clearing rule: vickrey, uniform, discriminatory or vcg (aliases ok)."
    ),
]
DurationOpt = Annotated[
    int | None, typer.Option("--duration-ms", min=1, help="Auction window (ms).")
]
StrategyOpt = Annotated[
    str | None, typer.Option("--strategy", help="Strategy of every real bidder (default: mixed).")
]
LearningOpt = Annotated[
    bool | None,
    typer.Option("--learning/--no-learning", help="Let adaptive bidders learn across auctions."),
]
VolatilityOpt = Annotated[
    float | None, typer.Option("--volatility", min=0.0, max=1.0, help="Market volatility (0–1).")
]
LiquidityOpt = Annotated[
    float | None, typer.Option("--liquidity", min=0.0, max=1.0, help="Liquidity score (0–1).")
]
TrendOpt = Annotated[
    float | None, typer.Option("--trend", min=-1.0, max=1.0, help="Market trend (−1 to 1).")
]
SpreadOpt = Annotated[float | None, typer.Option("--spread", min=0.0, help="Bid-ask spread (bps).")]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", min=0, help="Random seed (default: drawn and printed).")
]
WorkersOpt = Annotated[int | None, typer.Option("--workers", min=1, help="Local worker processes.")]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Run on a Dask cluster: the scheduler's tcp://HOST:PORT (distributed extra).",
    ),
]
ClusterOpt = Annotated[
    str | None,
    typer.Option("--cluster", help="Start a local Dask cluster of N worker processes: local:N."),
]
BaselinePriceOpt = Annotated[
    float | None,
    typer.Option("--baseline-price", help="CFMM price (B per A), > 0."),
]
BaselineQuantityOpt = Annotated[
    float | None,
    typer.Option("--baseline-quantity", help="Order size (token A), > 0."),
]


def _scenario_from_options(
    config_file: Path | None,
    *,
    simulations: int | None = None,
    real: int | None = None,
    phantoms: int | None = None,
    mechanism: str | None = None,
    duration_ms: int | None = None,
    strategy: str | None = None,
    learning: bool | None = None,
    volatility: float | None = None,
    liquidity: float | None = None,
    trend: float | None = None,
    spread: float | None = None,
    seed: int | None = None,
    workers: int | None = None,
    baseline_price: float | None = None,
    baseline_quantity: float | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
) -> Scenario:
    """The file's scenario with every given flag on top (flags win)."""
    scenario = _load_scenario_file(config_file) if config_file else Scenario()
    if mechanism is not None:
        from .mechanisms.clearing import canonical_mechanism

        try:
            mechanism = canonical_mechanism(mechanism)
        except PhantomAuctionError as exc:
            bad_value("--mechanism", mechanism, str(exc).split(": ", 1)[-1])
    flags: dict[str, tuple[str, Any]] = {
        "num_simulations": ("--simulations", simulations),
        "num_real_bidders": ("--real", real),
        "num_phantom_bidders": ("--phantoms", phantoms),
        "mechanism": ("--mechanism", mechanism),
        "auction_duration_ms": ("--duration-ms", duration_ms),
        "real_strategy": ("--strategy", strategy),
        "enable_learning": ("--learning", learning),
        "seed": ("--seed", seed),
        "volatility": ("--volatility", volatility),
        "liquidity": ("--liquidity", liquidity),
        "trend": ("--trend", trend),
        "spread": ("--spread", spread),
    }
    for key, (option, value) in flags.items():
        if value is not None:
            scenario.set(key, value, option)
    if baseline_price is not None:
        scenario.baseline_price = baseline_price
    if baseline_quantity is not None:
        scenario.baseline_quantity = baseline_quantity
    for option, number in (
        ("--baseline-price", scenario.baseline_price),
        ("--baseline-quantity", scenario.baseline_quantity),
    ):
        if not (isinstance(number, int | float) and math.isfinite(number) and number > 0):
            bad_value(option, number, "must be a finite number > 0")
    if workers is not None:
        scenario.workers = workers
    if scheduler is not None and cluster is not None:
        bad_value("--cluster", cluster, "give --scheduler or --cluster, not both")
    if (scheduler is not None or cluster is not None) and workers is not None:
        bad_value("--workers", workers, "a cluster run takes its workers from the cluster")
    if scheduler is not None or cluster is not None:
        from .simulation.distributed import parse_cluster, parse_scheduler

        try:
            scenario.scheduler = None if scheduler is None else parse_scheduler(scheduler)
            scenario.cluster = None if cluster is None else f"local:{parse_cluster(cluster)}"
        except InvalidBidParameters as exc:
            bad_value(f"--{exc.field}", exc.value, exc.reason)
    if scenario.simulation.get("seed") is None:
        # A drawn seed is printed, so any run can be reproduced exactly.
        scenario.simulation["seed"] = secrets.randbits(32)
    return scenario


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
        OutputFormat, typer.Option("--format", help="Format of the files written to --out.")
    ] = OutputFormat.csv,
    report: Annotated[
        bool,
        typer.Option(
            "--report", help="Write the HTML report (to OUT/report, else reports/simulate)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run a Monte Carlo simulation of phantom auctions and summarise it."""
    if out is not None:
        _check_writable_dir("--out", out)
    scenario = _scenario_from_options(
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
    if out is not None or report:
        _pandas()
    if report:
        require("matplotlib", "reports")
    console = _err() if as_json else _out()
    simulator = _build_simulator(scenario)
    drawn = "" if "seed" in scenario.origins else " (drawn; pass --seed to reproduce)"
    console.print(f"seed {scenario.simulation['seed']}{drawn}")
    progress = MonteCarloProgress(_err(), "Monte Carlo")
    try:
        with _cluster_client(scenario) as client, progress.running():
            results = _run_monte_carlo(simulator, scenario, progress, client)
    except KeyboardInterrupt:
        interrupted(
            f"Interrupted after {progress.done:,} of {progress.total:,} auctions; "
            "a partial Monte Carlo run is not a sample of the scenario, nothing written."
        )
    analysis = _analyze(results)
    if as_json:
        typer.echo(
            _dumps(_clean_floats({"parameters": _scenario_parameters(scenario), **analysis}))
        )
    else:
        console.print(_summary_table(analysis, f"{len(results):,} auctions", console.width))
        strategies = _strategy_table(analysis)
        if strategies is not None:
            console.print(strategies)
    frame = results.to_frame() if (out is not None or report) else None
    if out is not None and frame is not None:
        for path in _write_outputs(out, frame, analysis, fmt):
            console.print(f"wrote {path}", soft_wrap=True)
    if report and frame is not None:
        target = (out / "report") if out is not None else Path("reports/simulate")
        page = _write_run_report(
            target,
            frame,
            analysis,
            results,
            title="Phantom auction Monte Carlo report",
            parameters=_scenario_parameters(scenario),
        )
        console.print(f"report: {page}", soft_wrap=True)


# -- sweep ---------------------------------------------------------------------------


def _parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["num_phantom_bidders=0,5", "volatility=0.1,0.3"]`` -> ``{field: [values]}``."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            bad_value("--grid", spec, "expected FIELD=v1,v2,...")
        try:
            _field_section(name)
        except KeyError as exc:
            bad_value("--grid", spec, str(exc.args[0]))
        if name in grid:
            bad_value("--grid", spec, f"{name} is swept twice")
        parsed: list[Any] = []
        for text in values.split(","):
            try:
                value = _parse_field_value(name, text)
            except ValueError as exc:
                bad_value("--grid", spec, str(exc))
            if value in parsed:
                bad_value("--grid", spec, f"{text.strip()!r} is listed twice")
            parsed.append(value)
        grid[name] = parsed
    if not grid:
        bad_value("--grid", "", "give at least one --grid FIELD=v1,v2,...")
    return grid


def _sweep_on_cluster(
    client: Any,
    base: Scenario,
    scenarios: Sequence[Scenario],
    keep: Callable[[int, Any], None],
) -> None:
    """Every grid point's chunks queued on the cluster at once; ``keep`` each as it ends."""
    from .simulation.distributed import sweep_on_cluster

    progress = MonteCarloProgress(_err(), "sweep")
    with progress.running():
        completed = sweep_on_cluster(
            [_build_simulator(s) for s in scenarios],
            float(base.baseline_price),
            float(base.baseline_quantity),
            client,
            progress=progress,
        )
        try:
            for index, results in completed:
                keep(index, results)
        finally:
            # Cancels the chunks not yet run (Ctrl-C, or an error in keep).
            close = getattr(completed, "close", None)
            if callable(close):
                close()


#: Per-auction columns a sweep summarises per grid point (mean, std, p05, p95).
SWEEP_COLUMNS = (
    "improvement_bps",
    "mev_capture_rate",
    "real_fill_fraction",
    "phantom_won",
    "price_discovery_efficiency",
    "bid_shading",
    "welfare",
    "clearing_price",
)


def _grid_point_row(point: Mapping[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    import numpy as np

    row: dict[str, Any] = {k.rpartition(".")[2]: v for k, v in point.items()}
    row["num_auctions"] = len(frame)
    for column in SWEEP_COLUMNS:
        if column not in frame:
            continue
        values = np.asarray(frame[column], dtype=np.float64)
        values = values[np.isfinite(values)]
        empty = values.size == 0
        row[f"{column}_mean"] = float("nan") if empty else float(values.mean())
        row[f"{column}_std"] = float("nan") if empty else float(values.std())
        row[f"{column}_p05"] = float("nan") if empty else float(np.quantile(values, 0.05))
        row[f"{column}_p95"] = float("nan") if empty else float(np.quantile(values, 0.95))
    return row


def _grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = [{}]
    for name, values in grid.items():
        points = [{**p, name: v} for p in points for v in values]
    return points


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
    for name in names:
        table.add_column(name, no_wrap=True)
    for _, title in shown:
        table.add_column(title, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            *(str(row[n]) for n in names),
            *(_num(row.get(key, float("nan")), 3) for key, _ in shown),
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
    _check_writable_dir("--out", out)
    base = _scenario_from_options(
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
    pd = _pandas()
    require("pyarrow", "reports")
    if plots:
        require("matplotlib", "reports")
    points = _grid_points(grid)
    scenarios = []
    for point in points:
        scenario = base
        for name, value in point.items():
            scenario = scenario.with_field(name, value, "--grid")
        # Every grid point is checked before the first one runs.
        _build_simulator(scenario)
        scenarios.append(scenario)
    console = _out()
    fields = list(grid)
    console.print(
        f"{len(points)} grid points × {simulations:,} auctions, "
        f"seed {base.simulation['seed']} at every point"
    )
    out.mkdir(parents=True, exist_ok=True)
    parquet = out / "sweep.parquet"
    finished: dict[int, dict[str, Any]] = {}

    def keep(index: int, results: Any) -> None:
        finished[index] = _grid_point_row(points[index], results.to_frame())
        # Rewritten after every point, so an interrupted sweep keeps what it finished.
        done = [finished[i] for i in sorted(finished)]
        _write_frame(pd.DataFrame(done), parquet, OutputFormat.parquet)

    stopped = False
    try:
        with _cluster_client(base) as client:
            if client is None:
                for index, (point, scenario) in enumerate(zip(points, scenarios, strict=True)):
                    step = f"[{index + 1}/{len(points)}]"
                    console.print(f"{step} " + ", ".join(f"{k}={v}" for k, v in point.items()))
                    progress = MonteCarloProgress(_err(), step)
                    with progress.running():
                        results = _run_monte_carlo(_build_simulator(scenario), scenario, progress)
                    keep(index, results)
            else:
                _sweep_on_cluster(client, base, scenarios, keep)
    except KeyboardInterrupt:
        stopped = True
    rows = [finished[i] for i in sorted(finished)]
    if rows:
        console.print(_sweep_display(rows, fields))
        console.print(f"wrote {parquet}", soft_wrap=True)
        if plots:
            from .report import write_sweep_report

            names = [f.rpartition(".")[2] for f in fields]
            page = write_sweep_report(
                out,
                pd.DataFrame(rows),
                names,
                parameters={**_scenario_parameters(base), "grid": json.dumps(grid)},
            ).html
            console.print(f"report: {page}", soft_wrap=True)
    if stopped:
        interrupted(
            f"Interrupted: kept {len(rows)} of {len(points)} completed grid points"
            + (f" in {parquet}" if rows else "")
        )


# -- clear ---------------------------------------------------------------------------

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


@dataclasses.dataclass(frozen=True, slots=True)
class _FileBid:
    bidder_id: str
    valuation: float
    quantity: float
    is_phantom: bool


def _bid_from_record(record: Mapping[str, Any], where: str, file: str) -> _FileBid:
    missing = [k for k in ("bidder_id", "valuation", "quantity") if record.get(k) in (None, "")]
    if missing:
        bad_value("BIDS", file, f"{where}: missing {', '.join(missing)}")
    numbers: dict[str, float] = {}
    for key in ("valuation", "quantity"):
        raw = record[key]
        try:
            if isinstance(raw, bool):
                raise ValueError
            numbers[key] = float(raw)
        except (TypeError, ValueError):
            bad_value("BIDS", file, f"{where}: {key}={raw!r} is not a number")
        if not math.isfinite(numbers[key]) or numbers[key] < 0:
            bad_value("BIDS", file, f"{where}: {key}={raw!r} must be finite and >= 0")
    phantom_raw = record.get("is_phantom", False)
    if isinstance(phantom_raw, bool):
        phantom = phantom_raw
    elif str(phantom_raw).strip().lower() in _TRUE:
        phantom = True
    elif str(phantom_raw).strip().lower() in _FALSE:
        phantom = False
    else:
        bad_value("BIDS", file, f"{where}: is_phantom={phantom_raw!r} is not true/false")
    return _FileBid(str(record["bidder_id"]), numbers["valuation"], numbers["quantity"], phantom)


def read_bids(path: Path) -> list[_FileBid]:
    """Bids from a CSV (header ``bidder_id,valuation,quantity[,is_phantom]``) or JSON file.

    JSON is a list of objects with those keys, or ``{"bids": [...]}``. Bad rows exit 2
    naming the row and the value.
    """
    file = str(path)
    text = path.read_text("utf-8-sig")
    records: list[tuple[str, Mapping[str, Any]]] = []
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            bad_value("BIDS", file, f"invalid JSON: {exc}")
        if isinstance(data, dict):
            data = data.get("bids")
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            bad_value("BIDS", file, 'expected a list of bid objects or {"bids": [...]}')
        records = [(f"bid {i}", r) for i, r in enumerate(data)]
    else:
        reader = csv.DictReader(text.splitlines())
        header = [h.strip() for h in reader.fieldnames or []]
        needed = {"bidder_id", "valuation", "quantity"}
        if not needed <= set(header):
            bad_value(
                "BIDS",
                file,
                f"CSV header {header} lacks {sorted(needed - set(header))} "
                "(expected bidder_id,valuation,quantity[,is_phantom])",
            )
        for line, row in enumerate(reader, start=2):
            records.append((f"line {line}", {k.strip(): v for k, v in row.items() if k}))
    bids = [_bid_from_record(r, where, file) for where, r in records]
    if not bids:
        bad_value("BIDS", file, "contains no bids")
    seen: set[str] = set()
    for bid in bids:
        if bid.bidder_id in seen:
            bad_value("BIDS", file, f"bidder_id {bid.bidder_id!r} appears twice")
        seen.add(bid.bidder_id)
    return bids


@app.command()
def clear(
    bids_file: Annotated[
        Path,
        typer.Argument(
            metavar="BIDS",
            help="CSV or JSON of bids: bidder_id,valuation,quantity[,is_phantom].",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    supply: Annotated[
        float, typer.Option("--supply", min=0.0, help="Units for sale (token units).")
    ],
    reserve: Annotated[
        float, typer.Option("--reserve", min=0.0, help="Reserve price per unit.")
    ] = 0.0,
    mechanism: Annotated[
        str,
        typer.Option("--mechanism", help="vcg, vickrey, uniform or discriminatory (aliases ok)."),
    ] = "vcg",
    unit_demand: Annotated[
        bool, typer.Option("--unit-demand", help="Each bidder gets at most one unit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Clear a file of bids: allocations, payments, utilities, welfare and revenue."""
    from .mechanisms.clearing import canonical_mechanism

    try:
        name = canonical_mechanism(mechanism)
    except PhantomAuctionError as exc:
        bad_value("--mechanism", mechanism, str(exc).split(": ", 1)[-1])
    if not math.isfinite(supply):
        bad_value("--supply", supply, "must be finite")
    if not math.isfinite(reserve):
        bad_value("--reserve", reserve, "must be finite")
    bids = read_bids(bids_file)
    cleared = _clear_bids(bids, supply=supply, reserve=reserve, mechanism=name, unit=unit_demand)
    if as_json:
        typer.echo(_dumps(_clean_floats(cleared)))
        return
    console = _out()
    table = Table(
        title=f"{cleared['mechanism']} clearing: supply {_num(supply)}, reserve {_num(reserve)}"
        + (", unit demand" if unit_demand else ""),
        title_justify="left",
    )
    for column, justify in (
        ("bidder", "left"),
        ("phantom", "left"),
        ("value", "right"),
        ("bid qty", "right"),
        ("alloc", "right"),
        ("payment", "right"),
        ("unit price", "right"),
        ("utility", "right"),
    ):
        table.add_column(column, justify=cast(Any, justify))
    for row in cleared["allocations"]:
        table.add_row(
            row["bidder_id"],
            "yes" if row["is_phantom"] else "",
            _num(row["valuation"]),
            _num(row["bid_quantity"]),
            _num(row["quantity"]),
            _num(row["payment"]),
            _num(row["price_per_unit"]) if row["quantity"] > 0 else "",
            _num(row["utility"]),
        )
    console.print(table)
    totals = Table(show_header=False, box=None)
    totals.add_column(style="bold")
    totals.add_column(justify="right")
    for label, key in (
        ("social welfare (Σ v·x)", "social_welfare"),
        ("total revenue (Σ p)", "total_revenue"),
        ("efficiency", "efficiency"),
        ("units sold", "units_sold"),
        ("phantom participation", "phantom_participation_rate"),
    ):
        totals.add_row(label, _num(cleared[key]))
    console.print(totals)


def _clear_bids(
    bids: Sequence[_FileBid], *, supply: float, reserve: float, mechanism: str, unit: bool
) -> dict[str, Any]:
    """Clear with the VCG object API (``run_vcg_auction``) and join back the bid fields."""
    from .mechanisms.vcg import VCGAuction, VCGBid, run_vcg_auction

    auction = VCGAuction(supply=supply, reserve_price=reserve, enable_multi_unit=not unit)
    for bid in bids:
        auction.bids.append(
            VCGBid(bid.bidder_id, bid.valuation, bid.quantity, is_phantom=bid.is_phantom)
        )
    result = run_vcg_auction(auction, mechanism=mechanism)
    by_id = {a.bidder_id: a for a in result.allocations}
    rows = []
    for bid in bids:
        alloc = by_id.get(bid.bidder_id)
        quantity = float(alloc.quantity) if alloc else 0.0
        payment = float(alloc.payment) if alloc else 0.0
        utility = float(alloc.utility) if alloc else 0.0
        rows.append(
            {
                "bidder_id": bid.bidder_id,
                "is_phantom": bid.is_phantom,
                "valuation": bid.valuation,
                "bid_quantity": bid.quantity,
                "quantity": quantity,
                "payment": payment,
                "price_per_unit": payment / quantity if quantity > 0 else None,
                "utility": utility,
            }
        )
    return {
        "mechanism": result.mechanism,
        "supply": supply,
        "reserve": reserve,
        "unit_demand": unit,
        "allocations": rows,
        "units_sold": sum(r["quantity"] for r in rows),
        "social_welfare": float(result.social_welfare),
        "total_revenue": float(result.total_revenue),
        "efficiency": float(result.efficiency),
        "phantom_participation_rate": float(result.phantom_participation_rate),
    }


# -- config show ---------------------------------------------------------------------


@config_app.command("show")
def config_show(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="A TOML file layered over the defaults (before AUCTION_* variables)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show the effective configuration and where each value came from."""
    from .config import load_config

    if file is not None and not file.is_file():
        bad_value("--file", str(file), "no such file")
    try:
        config = load_config(file)
    except PhantomAuctionError as exc:
        # The key, the value and its source (file or AUCTION_* variable) are in the message.
        option = "--file" if file is not None and str(file) in str(exc) else "configuration"
        raise typer.BadParameter(str(exc), param_hint=f"'{option}'") from None
    flat = config.flat()
    if as_json:
        payload = {
            k: {"value": v, "source": config.sources.get(k, "default")} for k, v in flat.items()
        }
        typer.echo(_dumps(payload))
        return
    table = Table(title="Effective configuration", title_justify="left")
    table.add_column("key")
    table.add_column("value", justify="right")
    table.add_column("source")
    for key, value in flat.items():
        source = config.sources.get(key, "default")
        style = "" if source == "default" else "bold yellow"
        table.add_row(key, json.dumps(value), Text(source, style=style))
    _out().print(table)


# -- bench ---------------------------------------------------------------------------

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


def _default_bench_dir() -> Path:
    here = Path.cwd() / "benchmarks"
    if here.is_dir():
        return here
    # An editable install run from elsewhere: the repository's benchmarks/.
    return Path(__file__).resolve().parents[2] / "benchmarks"


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
    console = _err() if as_json else _out()
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
            _dumps(
                {
                    "figures": [_clean_floats(dataclasses.asdict(f)) for f in figures],
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
            table.add_row(f.script, f.name, _num(f.value, 3), f.unit, f.note)
        console.print(table)
        for failure in failures:
            _err().print(f"[red]failed[/red] {escape(failure)}")
    if stopped:
        interrupted(f"Interrupted: kept the figures of {len({f.script for f in figures})} scripts")
    if failures:
        raise typer.Exit(1)


# -- demo ----------------------------------------------------------------------------


#: The demo's default seed (fixed, so that two runs print the same numbers).
DEMO_SEED = 1


@app.command()
def demo(
    simulations: Annotated[
        int, typer.Option("--simulations", "-n", min=1, help="Monte Carlo auctions.")
    ] = 100_000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = DEMO_SEED,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Worker processes (default: all cores).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory of the HTML report.")] = Path(
        "reports/demo"
    ),
) -> None:
    """One live phantom auction, then a Monte Carlo of the default config with its report."""
    from .demo import live_auction_timeline

    _check_writable_dir("--out", out)
    _pandas()
    require("matplotlib", "reports")
    console = _out()
    started = time.monotonic()
    console.rule("1. One live phantom auction")
    live_auction_timeline(console, seed=seed)
    console.rule(f"2. {simulations:,} Monte Carlo auctions of the default configuration")
    scenario = Scenario(
        simulation={"num_simulations": simulations, "seed": seed},
        workers=workers or max(1, os.cpu_count() or 1),
    )
    progress = MonteCarloProgress(console, "Monte Carlo", delay_s=0.0)
    with progress.running():
        results = _run_monte_carlo(_build_simulator(scenario), scenario, progress)
    analysis = _analyze(results)
    console.print(_summary_table(analysis, f"{len(results):,} auctions", console.width))
    strategies = _strategy_table(analysis)
    if strategies is not None:
        console.print(strategies)
    console.rule("3. Report")
    page = _write_run_report(
        out,
        results.to_frame(),
        analysis,
        results,
        title="phantom-auction demo: default configuration",
        parameters=_scenario_parameters(scenario),
    )
    console.print(f"Report written to {page.resolve()}", soft_wrap=True)
    console.print(f"done in {time.monotonic() - started:.1f} s")
