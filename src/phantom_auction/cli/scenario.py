"""The simulation scenario of ``simulate``, ``sweep`` and ``demo``: a TOML file
(``[simulation]``, ``[market]``, ``[run]``) with the flags on top, and the options those
commands share. A value the simulator refuses is blamed on the option that set it.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from ..errors import InvalidBidParameters, PhantomAuctionError
from .app import bad_value


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
    #: The ``--config`` file read, named when one of its values is refused.
    config_file: Path | None = None

    def set(self, name: str, value: Any, origin: str) -> None:
        """Set a SimulationConfig or MarketConditions field, remembering who set it."""
        section, key = field_section(name)
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


def simulation_classes() -> tuple[type[Any], type[Any]]:
    from ..simulation import MarketConditions, SimulationConfig

    return SimulationConfig, MarketConditions


def field_defaults(cls: type[Any]) -> dict[str, Any]:
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


def field_section(name: str) -> tuple[str, str]:
    """``("simulation" | "market", field)`` for a field, optionally prefixed ``market.``."""
    sim_cls, market_cls = simulation_classes()
    prefix, _, bare = name.rpartition(".")
    sim, market = field_defaults(sim_cls), field_defaults(market_cls)
    if prefix in ("", "simulation") and bare in sim:
        return "simulation", bare
    if prefix in ("", "market") and bare in market:
        return "market", bare
    raise KeyError(
        f"unknown field {name!r}; SimulationConfig fields: {sorted(sim)}; "
        f"MarketConditions fields: {sorted(market)}"
    )


def parse_field_value(name: str, text: str) -> Any:
    """Parse ``text`` for field ``name`` following the type of the field's default."""
    sim_cls, market_cls = simulation_classes()
    section, key = field_section(name)
    default = field_defaults(sim_cls if section == "simulation" else market_cls)[key]
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
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{text!r} is not a finite number")
        return number
    if text.lower() in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


RUN_KEYS = {"baseline_price", "baseline_quantity", "workers"}


def run_value_problem(key: str, value: Any) -> str | None:
    """Why ``value`` is not a valid ``[run]`` ``key`` (None if it is)."""
    if key == "workers":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return "must be an integer >= 1"
        return None
    # baseline_price, baseline_quantity
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number > 0"
    if not math.isfinite(value):
        return "must be a finite number > 0"
    if not value > 0:
        return "must be > 0"
    return None


def load_scenario_file(path: Path) -> Scenario:
    """Read ``[simulation]``, ``[market]`` and ``[run]`` tables from a TOML file."""
    option = "--config"
    try:
        table = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        bad_value(option, str(path), f"cannot read: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        bad_value(option, str(path), f"invalid TOML: {exc}")
    scenario = Scenario(config_file=path)
    sim_cls, market_cls = simulation_classes()
    known = {
        "simulation": set(field_defaults(sim_cls)),
        "market": set(field_defaults(market_cls)),
        "run": RUN_KEYS,
    }
    engine = ("phantom_auction", "auction_mechanics", "resources", "service", "security")
    for section, keys in table.items():
        if not isinstance(keys, dict):
            bad_value(
                option,
                str(path),
                f"key {section!r} is outside a table: put it under one of "
                f"{', '.join(f'[{k}]' for k in known)}",
            )
        if section in engine:
            bad_value(
                option,
                str(path),
                f"[{section}] is the engine's configuration (serve -c, config show --file); a "
                f"simulation takes it from AUCTION_{section.upper()}_<KEY> variables",
            )
        if section not in known:
            bad_value(option, str(path), f"unknown table [{section}]; use {sorted(known)}")
        for key, value in keys.items():
            if key not in known[section]:
                bad_value(
                    option,
                    str(path),
                    f"unknown key {section}.{key}; known: {sorted(known[section])}",
                )
            if section == "run":
                # Checked here, naming the file and the key, before anything is printed.
                problem = run_value_problem(key, value)
                if problem is not None:
                    bad_value(option, str(path), f"run.{key}={value!r}: {problem}")
                setattr(scenario, key, value)
            else:
                scenario.set(f"{section}.{key}", value, option)
    return scenario


#: Engine settings a simulation decides with its own fields: an ``AUCTION_*`` variable
#: setting one does not make the run clear by it (the CLI audit: it was recorded in
#: run.json and the rerun line as if it did).
SIMULATION_DECIDES: Final = {
    "AUCTION_PHANTOM_AUCTION_MECHANISM": "the simulation's --mechanism decides (vcg unless given)",
    "AUCTION_PHANTOM_AUCTION_ENABLE_VCG": "the simulation's --mechanism decides (vcg unless given)",
    "AUCTION_PHANTOM_AUCTION_MAX_PHANTOM_BIDDERS": "the simulation's --phantoms decides (15 "
    "unless given)",
    "AUCTION_PHANTOM_AUCTION_DURATION_MS": "the simulation's --duration-ms decides (100 unless "
    "given); this only scales the reveal window (reveal_delay_ms x duration / this)",
}


def note_overridden_environment() -> None:
    """One stderr note per set ``AUCTION_*`` variable a simulation overrides."""
    import os

    from .app import err_console

    for name, why in SIMULATION_DECIDES.items():
        if name in os.environ:
            err_console().print(
                f"note: {name}={os.environ[name]} is not what simulations clear by: {why}",
                style="yellow",
            )


def build_simulator(scenario: Scenario) -> Any:
    from ..simulation import PhantomSimulator

    sim_cls, market_cls = simulation_classes()
    try:
        config = sim_cls(**scenario.simulation)
        market = market_cls(**scenario.market)
        simulator = PhantomSimulator(config, market)
        # The run's rules, resolved now: a bound that needs the strategies (the real
        # bids per auction) names its option here, before anything runs.
        simulator.environment(float(scenario.baseline_price), float(scenario.baseline_quantity))
        return simulator
    except InvalidBidParameters as exc:
        option = scenario.origins.get(exc.field.partition(".")[0], exc.field)
        where = f" (in {scenario.config_file})" if option == "--config" else ""
        bad_value(option, exc.value, f"{exc.field}: {exc.reason}{where}")


def run_scenario(
    simulator: Any,
    scenario: Scenario,
    progress: Callable[[int, int], None] | None,
    client: Any = None,
    row_sink: Callable[[Any], None] | None = None,
) -> Any:
    """The ``MonteCarloResults`` of ``simulator`` (built from ``scenario``), on ``client``'s
    Dask cluster when one is given, else in local processes.

    A learning run gets no client from :func:`cluster_client` (it runs here).
    """
    from ..simulation import run_monte_carlo

    return run_monte_carlo(
        simulator,
        float(scenario.baseline_price),
        float(scenario.baseline_quantity),
        # A cluster takes its workers from the cluster (a [run] workers is for local runs).
        workers=scenario.workers if client is None else None,
        progress=progress,
        client=client,
        row_sink=row_sink,
    )


@contextmanager
def cluster_client(scenario: Scenario, simulator: Any = None) -> Iterator[Any]:
    """A Dask client for ``--scheduler``/``--cluster``, or None to run locally.

    None also for a ``simulator`` that carries learners (``--learning`` with a learning
    strategy), without starting or joining the cluster: its chunks carry the learners
    from one to the next, so it runs in this process, as
    :func:`~phantom_auction.simulation.run_monte_carlo` would run it. It says so on
    stderr (one line).
    """
    if scenario.scheduler is None and scenario.cluster is None:
        yield None
        return
    from ..simulation.parallel import LEARNING_RUNS_LOCALLY, carries_learners

    if simulator is not None and carries_learners(simulator):
        from .app import err_console

        err_console().print(f"note: {LEARNING_RUNS_LOCALLY}", style="yellow")
        yield None
        return
    from ..simulation.distributed import open_client

    with ExitStack() as stack:
        try:
            client = stack.enter_context(open_client(scenario.scheduler, scenario.cluster))
        except InvalidBidParameters as exc:
            # Only connecting is checked here; errors of the run itself pass through.
            bad_value(f"--{exc.field.split('/')[0]}", exc.value, exc.reason)
        yield client


def analyze(results: Any) -> dict[str, Any]:
    from ..simulation import analyze_results

    return analyze_results(results)


def scenario_parameters(scenario: Scenario) -> dict[str, Any]:
    """Flat ``name -> value`` of the effective settings of a run (defaults filled in)."""
    simulator = build_simulator(scenario)
    config, market = simulator.config, simulator.market
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        if f.init and f.repr:
            out[f"simulation.{f.name}"] = getattr(config, f.name)
    # One mechanism name: the one that clears. ``mechanism`` (None = the default) and
    # ``enable_vcg`` (read only when ``mechanism`` is None) only chose it.
    out.pop("simulation.mechanism", None)
    out.pop("simulation.enable_vcg", None)
    out["simulation.clearing_mechanism"] = config.clearing_mechanism
    # What the engine's configuration (default.toml, --config's engine keys, AUCTION_*
    # variables) decides for the phantoms: a report must say which ones made its numbers.
    out["simulation.phantom_policy"] = config.phantom_policy
    if config.num_phantom_bidders:
        model = config.resolved_phantom_model
        for name in ("bid_probability", "mean_bps", "sd_bps", "min_bps", "max_bps"):
            out[f"phantom_model.{name}"] = getattr(model, name)
    for f in dataclasses.fields(market):
        out[f"market.{f.name}"] = getattr(market, f.name)
    # None means "the default, derived elsewhere": show what is set, not empty rows.
    out = {k: v for k, v in out.items() if v is not None}
    out["real_strategies"] = ", ".join(
        str(getattr(s, "name", type(s).__name__)) for s in simulator.strategies
    )
    out["baseline_price"] = scenario.baseline_price
    out["baseline_quantity"] = scenario.baseline_quantity
    return out


def scenario_tables(scenario: Scenario) -> dict[str, dict[str, Any]]:
    """The scenario as the ``[simulation]``, ``[market]`` and ``[run]`` tables of a
    ``--config`` file (what was given, the seed included, drawn or not)."""
    run: dict[str, Any] = {
        "baseline_price": scenario.baseline_price,
        "baseline_quantity": scenario.baseline_quantity,
    }
    if scenario.workers is not None:
        run["workers"] = scenario.workers
    return {"simulation": dict(scenario.simulation), "market": dict(scenario.market), "run": run}


def run_record(scenario: Scenario, command: str, rerun: list[str]) -> dict[str, Any]:
    """What ``run.json`` records of a run: the command, the version, the seed (and
    whether it was drawn), the scenario as ``--config`` tables, the effective parameters,
    the ``AUCTION_*`` variables the simulator reads (its engine settings) and the command
    line that reruns it (``rerun``, from ``scenario.toml``)."""
    import os
    import shlex

    from .._version import __version__

    read = ("AUCTION_PHANTOM_AUCTION_", "AUCTION_AUCTION_MECHANICS_", "AUCTION_RESOURCES_")
    environment = {k: v for k, v in sorted(os.environ.items()) if k.startswith(read)}
    # The variables go on the command line too: without them it reruns another scenario.
    assignments = [f"{k}={v}" for k, v in environment.items()]
    return {
        "command": command,
        "version": __version__,
        "seed": scenario.simulation.get("seed"),
        "seed_drawn": "seed" not in scenario.origins,
        "config": scenario_tables(scenario),
        "parameters": scenario_parameters(scenario),
        "environment": environment,
        "rerun": shlex.join([*assignments, "phantom-auction", command, *rerun]),
    }


# -- options shared by simulate, sweep and demo ----------------------------------

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
    int | None,
    typer.Option(
        "--simulations",
        "-n",
        min=1,
        help="Monte Carlo auctions (default: 1,000; sweep: 2,000 a point).",
    ),
]
RealOpt = Annotated[
    int | None, typer.Option("--real", min=0, help="Real bidders per auction (default: 5).")
]
PhantomsOpt = Annotated[
    int | None,
    typer.Option("--phantoms", min=0, help="Phantom bidder slots per auction (default: 15)."),
]
MechanismOpt = Annotated[
    str | None,
    typer.Option(
        "--mechanism",
        help="Clearing rule: vickrey, uniform, discriminatory or vcg (aliases ok; default: vcg).",
    ),
]
DurationOpt = Annotated[
    int | None, typer.Option("--duration-ms", min=1, help="Auction window (ms; default: 100).")
]
StrategyOpt = Annotated[
    str | None, typer.Option("--strategy", help="Strategy of every real bidder (default: mixed).")
]
LearningOpt = Annotated[
    bool | None,
    typer.Option("--learning/--no-learning", help="Let adaptive bidders learn across auctions."),
]
VolatilityOpt = Annotated[
    float | None,
    typer.Option("--volatility", min=0.0, max=1.0, help="Market volatility (0–1; default: 0.3)."),
]
LiquidityOpt = Annotated[
    float | None,
    typer.Option("--liquidity", min=0.0, max=1.0, help="Liquidity score (0–1; default: 0.7)."),
]
TrendOpt = Annotated[
    float | None,
    typer.Option("--trend", min=-1.0, max=1.0, help="Market trend (−1 to 1; default: 0)."),
]
SpreadOpt = Annotated[
    float | None, typer.Option("--spread", min=0.0, help="Bid-ask spread (bps; default: 10).")
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", min=0, help="Random seed (default: drawn and printed).")
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers", min=1, help="Local worker processes (default: resources.workers, 1)."
    ),
]
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
    typer.Option("--baseline-price", help="CFMM price (B per A), > 0 (default: 100)."),
]
BaselineQuantityOpt = Annotated[
    float | None,
    typer.Option("--baseline-quantity", help="Order size (token A), > 0 (default: 1,000)."),
]


def scenario_from_options(
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
    scenario = load_scenario_file(config_file) if config_file else Scenario()
    if mechanism is not None:
        from ..mechanism_names import canonical_mechanism

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
        if isinstance(value, float) and not math.isfinite(value):
            bad_value(option, value, "not a finite number")
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
        if not (isinstance(number, int | float) and math.isfinite(number)):
            bad_value(option, number, "not a finite number")
        if not number > 0:
            bad_value(option, number, "must be > 0")
    if workers is not None:
        scenario.workers = workers
    if scheduler is not None and cluster is not None:
        bad_value("--cluster", cluster, "give --scheduler or --cluster, not both")
    if (scheduler is not None or cluster is not None) and workers is not None:
        bad_value("--workers", workers, "a cluster run takes its workers from the cluster")
    if scheduler is not None or cluster is not None:
        from ..simulation.distributed import parse_cluster, parse_scheduler

        try:
            scenario.scheduler = None if scheduler is None else parse_scheduler(scheduler)
            scenario.cluster = None if cluster is None else f"local:{parse_cluster(cluster)}"
        except InvalidBidParameters as exc:
            bad_value(f"--{exc.field}", exc.value, exc.reason)
    if scenario.simulation.get("seed") is None:
        # A drawn seed is printed, so any run can be reproduced exactly.
        import secrets

        scenario.simulation["seed"] = secrets.randbits(32)
    return scenario
