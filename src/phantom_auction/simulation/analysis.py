"""Statistics of simulated auctions, calibration to history, and strategy backtests."""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidBidParameters
from .environment import WINNER_NONE, WINNER_PHANTOM
from .intervals import CI_BATCHES, SHARE_METRICS, batch_means_ci, finite_stats, proportion_ci
from .market import TREND_BPS, VOLATILITY_BPS, MarketConditions
from .parallel import run_monte_carlo
from .results import (
    METRIC_COLUMNS,
    SEED_METRIC_NAMES,
    MonteCarloResults,
    SimulationResult,
    columns_from_rows,
)
from .simulator import PhantomSimulator, check_simulator
from .strategies.base import LabelledStrategy, learns, strategy_label
from .streaming import (
    MIN_BATCHES,
    RATIO_HEADLINES,
    PairSummary,
    StreamingSummary,
    block_means_ci,
)

__all__ = ["analyze_results", "backtest_strategy", "calibrate_parameters"]

FloatArray = NDArray[np.float64]


def _win_tables(
    wins: Sequence[int], labels: Sequence[str], num_auctions: int
) -> tuple[dict[str, float], float]:
    """``strategy_performance`` and ``winner_diversity`` from wins per bidder (+ phantom, none)."""
    n = len(labels)
    shares: dict[str, float] = {}
    for i, label in enumerate(labels):
        shares[label] = shares.get(label, 0.0) + wins[i]
    shares["phantom"] = float(wins[n])
    shares["none"] = float(wins[n + 1])
    total = max(num_auctions, 1)
    performance = {k: v / total for k, v in shares.items()}
    real = np.asarray(wins[:n], dtype=np.float64)
    if real.sum() <= 0:
        diversity = math.nan
    elif n <= 1:
        diversity = 0.0
    else:
        p = real[real > 0] / real.sum()
        diversity = float(-(p * np.log(p)).sum() / math.log(n)) + 0.0  # not -0.0: one winner
    return performance, diversity


def _win_share_intervals(
    labels: Sequence[str],
    wins: Sequence[int],
    num_auctions: int,
    batches: int | None,
    winner_index: NDArray[Any] | None,
) -> dict[str, dict[str, float]]:
    """The 95 % interval of each share in ``strategy_performance``: Wilson's for
    independent auctions (a share of auctions is a proportion); for dependent ones
    (``batches``) batch means over the auctions in order of the rows' ``winner_index``,
    none (NaN) for a run that kept no rows."""
    members: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault(label, []).append(i)
    members["phantom"], members["none"] = [WINNER_PHANTOM], [WINNER_NONE]
    n = len(labels)
    counts = {label: sum(wins[i] for i in idx) for label, idx in members.items()}
    counts["phantom"], counts["none"] = wins[n], wins[n + 1]
    out: dict[str, dict[str, float]] = {}
    for label, idx in members.items():
        if not batches:
            low, high = proportion_ci(counts[label] / max(num_auctions, 1), num_auctions)
        elif winner_index is not None:
            won = np.isin(winner_index, idx).astype(np.float64)
            _sem, low, high = batch_means_ci(won, batches)
        else:
            low = high = math.nan
        out[label] = {"ci95_low": low, "ci95_high": high}
    return out


def _strategy_details(
    metric_stats: Mapping[str, Mapping[str, float]],
    labels: Sequence[str],
    performance: Mapping[str, float],
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for label in dict.fromkeys(labels):
        out[label] = {
            "win_share": performance.get(label, 0.0),
            "bid_shading": metric_stats.get(f"bid_shading:{label}", {}).get("mean", math.nan),
            "profit_bps": metric_stats.get(f"profit_bps:{label}", {}).get("mean", math.nan),
        }
    return out


def _ratio_of_sums(
    numerator: FloatArray, denominator: FloatArray, batches: int | None
) -> dict[str, float]:
    """``Σ x / Σ y`` and its 95 % interval by the delta method: the standard error of
    ``mean(x − R y) / mean(y)``, from the pair's co-moments for independent auctions (as
    a run without rows gets it: :class:`~.streaming.PairSummary`), by batch means over
    the residuals when ``batches`` is given."""
    if not batches:
        return PairSummary.of(numerator, denominator).ratio_stats()
    keep = np.isfinite(numerator) & np.isfinite(denominator)
    x, y = numerator[keep], denominator[keep]
    total = float(y.sum())
    if x.size == 0 or total <= 0.0:
        return {"mean": math.nan, "ci95_low": math.nan, "ci95_high": math.nan, "sem": math.nan}
    ratio = float(x.sum()) / total
    spread = finite_stats(x - ratio * y, batches=batches)
    scale = total / x.size
    half = (spread["ci95_high"] - spread["mean"]) / scale
    return {
        "mean": ratio,
        "ci95_low": ratio - half,
        "ci95_high": ratio + half,
        "sem": spread["sem"] / scale,
    }


def _with_headlines(
    stats_of: dict[str, dict[str, float]], headlines: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    """Replace each ratio metric's mean and interval by its ratio of sums; the per-auction
    mean stays as ``per_auction_mean``, the other statistics are the per-auction ones."""
    for name, headline in headlines.items():
        if name in stats_of:
            stats_of[name] = {
                **stats_of[name],
                "per_auction_mean": stats_of[name]["mean"],
                **headline,
            }
    return stats_of


def _analysis(
    stats_of: Mapping[str, Mapping[str, float]],
    labels: Sequence[str],
    wins: Sequence[int],
    num_auctions: int,
    ci_method: str,
    batches: int | None,
    winner_index: NDArray[Any] | None = None,
) -> dict[str, Any]:
    performance, diversity = _win_tables(wins, labels, num_auctions)
    out: dict[str, Any] = {
        name: dict(stats_of[name]) for name in METRIC_COLUMNS if name in stats_of
    }
    out["clearing_price"] = dict(stats_of["clearing_price"])
    for seed_name, column in SEED_METRIC_NAMES.items():
        if column in out:
            out[seed_name] = out[column]
    out["strategy_performance"] = performance
    out["strategy_performance_ci95"] = _win_share_intervals(
        labels, wins, num_auctions, batches, winner_index
    )
    out["winner_diversity"] = diversity
    out["strategy_details"] = _strategy_details(stats_of, labels, performance)
    out["num_auctions"] = num_auctions
    out["ci_method"] = ci_method
    return out


def _dependent(results: MonteCarloResults) -> bool:
    """Whether a run's auctions depend on each other (bidders that learn across them)."""
    spec = results.tasks[0].spec
    return bool(spec.config.enable_learning) and any(learns(s) for s in spec.strategies)


def _ci_method(batches: int | None, num_auctions: int) -> str:
    if batches and num_auctions < 2 * batches:
        return (
            f"not available: the auctions depend on each other, and {num_auctions} auctions "
            f"make fewer than 2 a batch in {batches} batches"
        )
    if batches:
        return f"batch means ({batches} batches, Student t)"
    return "independent auctions (Student t)"


def analyze_results(
    results: MonteCarloResults | Sequence[SimulationResult], *, batches: int | None = None
) -> dict[str, Any]:
    """Statistics of a run, keyed by metric (the column names of ``to_frame``, and the
    seed's names of :data:`~.results.SEED_METRIC_NAMES`: ``avg_price_improvement`` is
    ``improvement_bps``, ``phantom_win_rate`` is ``phantom_won``, ``convergence_speed``
    is ``best_bid_time_ms``; the same statistics under both names).

    ``mev_capture_rate`` and ``bid_shading`` are headlined as ratios of sums over all
    auctions (:data:`RATIO_HEADLINES`: ``Σ improvement / Σ available surplus`` and
    ``Σ (value − bid) / Σ value``): their ``mean`` and interval are that ratio's (delta
    method), ``per_auction_mean`` is the mean of the per-auction ratios, and the other
    statistics describe the per-auction distribution.

    Each metric maps to ``mean``, the 95 % confidence interval of the mean
    ``ci95_low``/``ci95_high`` and its standard error ``sem``, ``median, std (ddof=1),
    min, max, p05, p95, count`` over its finite values (NaN marks an undefined value,
    e.g. the MEV capture of an auction without surplus); ``phantom_won``'s mean is the
    phantom win rate.

    The interval is Student's t over independent auctions; when the auctions are not
    independent (bidders that learn across auctions) it is computed by batch means over
    the auctions in order (``batches``, default :data:`~.intervals.CI_BATCHES`; pass
    ``batches`` >= 2 to force it, 0 to force independence). A run that kept no rows
    takes its batches from whole chunks. ``ci_method`` says which was used. Also:
    ``clearing_price`` (same statistics, token B per A), ``strategy_performance``
    (share of auctions won per strategy label, plus ``phantom`` and ``none``; sums to
    1), ``strategy_performance_ci95`` (each share's 95 % interval, ``ci95_low`` and
    ``ci95_high``: Wilson's, or batch means for dependent auctions), ``winner_diversity``
    (normalised Shannon entropy of wins over real bidders: 0 when one bidder wins
    everything, 1 when all win equally; NaN when no real bidder won),
    ``strategy_details`` (win share, mean shading and mean profit per label) and
    ``num_auctions``.

    Quantiles are exact when rows were kept; for a summary-only run they come from the
    sketch (relative error 0.1 %, see :mod:`.streaming`).
    """
    if batches is not None and (
        isinstance(batches, bool) or not isinstance(batches, int) or batches == 1 or batches < 0
    ):
        raise InvalidBidParameters(
            "batches", batches, "must be None, 0 (independent auctions) or an integer >= 2"
        )
    if isinstance(results, MonteCarloResults):
        labels = results.labels
        if batches is None and _dependent(results):
            batches = CI_BATCHES
        if results.rows_kept:
            return _columns_analysis(results.columns, labels, results.summary.wins, batches)
        # No rows: batch means over the summary's blocks of chunks where they are needed.
        return _summary_analysis(results.summary, batches=batches)
    if isinstance(results, str | bytes | Mapping) or hasattr(results, "columns"):
        # A saved auctions table (a DataFrame) iterates over its column names.
        raise TypeError(
            f"analyze_results: results={type(results).__name__} is neither a run's "
            "MonteCarloResults nor a list of SimulationResult (a saved run's statistics "
            "are in its summary file, written beside its auctions)"
        )
    rows = list(results)
    if not rows:
        raise InvalidBidParameters("results", rows, "must hold at least one auction")
    if batches is None and any(r.execution_trace.get("learning") for r in rows):
        batches = CI_BATCHES  # as for a run's results (the API audit: it said independent)
    columns = columns_from_rows([r.row for r in rows])
    n = 1 + max(
        [
            int(b.bidder_id.removeprefix("real_"))
            for r in rows
            for b in r.all_bids
            if not b.is_phantom
        ],
        default=-1,
    )
    labels_by_index = ["?"] * n
    for r in rows:
        for b in r.all_bids:
            if not b.is_phantom:
                labels_by_index[int(b.bidder_id.removeprefix("real_"))] = b.strategy
    wins = StreamingSummary.from_columns(columns, labels_by_index).wins
    return _columns_analysis(columns, labels_by_index, wins, batches)


def _columns_analysis(
    columns: Mapping[str, Any], labels: Sequence[str], wins: NDArray[Any], batches: int | None
) -> dict[str, Any]:
    """The analysis of kept rows (a run's columns, or those of a list of auctions)."""
    winner_index = np.asarray(columns["winner_index"])
    n = len(winner_index)
    stats_of = _column_stats(columns, batches)
    return _analysis(
        stats_of, labels, wins.tolist(), n, _ci_method(batches, n), batches, winner_index
    )


#: Rows from which the columns' statistics are worked out on several threads at once
#: (numpy's partitions and reductions release the GIL; each column is independent, so
#: the numbers are the same). Below it a thread costs more than it saves.
THREADED_STATS_ROWS = 100_000


def _threads() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _column_stats(columns: Mapping[str, Any], batches: int | None) -> dict[str, dict[str, float]]:
    names = [k for k in columns if k != "winner_index"]
    threads = min(len(names), _threads())

    def stats(name: str) -> dict[str, float]:
        return finite_stats(columns[name], batches=batches, share=name in SHARE_METRICS)

    if names and len(columns[names[0]]) >= THREADED_STATS_ROWS and threads > 1:
        # The quantiles of 40 columns of 1,000,000 rows: 0.92 s on one thread, 0.44 s on two.
        with ThreadPoolExecutor(threads) as pool:
            found = list(pool.map(stats, names))
    else:
        found = [stats(k) for k in names]
    stats_of = dict(zip(names, found, strict=True))
    headlines = {
        name: _ratio_of_sums(
            np.asarray(columns[num], dtype=np.float64),
            np.asarray(columns[den], dtype=np.float64),
            batches,
        )
        for name, (num, den) in RATIO_HEADLINES.items()
        if num in columns and den in columns
    }
    return _with_headlines(stats_of, headlines)


def _summary_analysis(summary: StreamingSummary, *, batches: int | None) -> dict[str, Any]:
    """The analysis of a run that kept no rows. Its intervals treat the auctions as
    independent, unless they are ``dependent`` (learners): then every mean's interval is
    by batch means over the summary's blocks of chunks (the API audit: a learning run
    without rows reported the independent interval, ~7x too narrow). A ratio of sums'
    interval is the delta method's from the summary's co-moments for independent
    auctions (as the kept rows give it), by those batch means for dependent ones.
    ``batches``: as :func:`analyze_results` takes it (None or 0: independent)."""
    dependent = bool(batches)
    count = batches or CI_BATCHES
    stats_of = {k: m.stats() for k, m in summary.metrics.items()}
    nan = math.nan
    used = 0
    if dependent:
        for name, stats in stats_of.items():
            sem, low, high, used = block_means_ci(summary.blocks, name, batches=count)
            stats.update(sem=sem, ci95_low=low, ci95_high=high)
    headlines: dict[str, dict[str, float]] = {}
    for name, (num, den) in RATIO_HEADLINES.items():
        if not dependent and name in summary.pairs:
            headlines[name] = summary.pairs[name].ratio_stats()
        elif num in summary.metrics and den in summary.metrics:
            total = summary.metrics[den].total
            ratio = summary.metrics[num].total / total if total > 0 else nan
            sem, low, high, _ = block_means_ci(summary.blocks, num, den, batches=count)
            headlines[name] = {"mean": ratio, "ci95_low": low, "ci95_high": high, "sem": sem}
    stats_of = _with_headlines(stats_of, headlines)
    if not dependent:
        method = _ci_method(None, summary.num_auctions)
    elif used:
        method = f"batch means ({used} batches of whole chunks, Student t)"
    else:
        method = (
            f"not available: the auctions depend on each other (learning) and the run kept "
            f"no rows, in fewer than {min(MIN_BATCHES, count)} chunks (keep_rows=True gives "
            "batch means)"
        )
    wins = summary.wins.tolist()
    return _analysis(stats_of, summary.labels, wins, summary.num_auctions, method, batches)


# -- calibration --------------------------------------------------------------------


def _column(data: Any, name: str) -> FloatArray | None:
    try:
        present = name in data
    except TypeError:
        present = False
    if not present:
        return None
    values = np.asarray(data[name], dtype=np.float64).reshape(-1)
    return values[np.isfinite(values)]


#: The fitted phantom sd's range, in widths of the phantom bounds (max_bps - min_bps): a
#: likelihood that keeps rising as the sd grows (data spread evenly over the bounds)
#: stops at the widest, which is then all but uniform on them.
FIT_SD_WIDTHS: Final = (1e-3, 10.0)


def _fit_truncated_normal(x: FloatArray, low: float, high: float) -> tuple[float, float]:
    """Maximum-likelihood (mean, sd) in bps of a normal truncated to [low, high], with
    the mean within the bounds and the sd within :data:`FIT_SD_WIDTHS` of their width.

    Unconstrained, the likelihood of few or evenly spread values has no maximum: it
    rose with a mean hundreds of bps outside the bounds and an sd of 1e-152 or 1e17 (the
    API audit); a mean outside the bounds is also what ``optimize_phantoms`` refuses."""
    from scipy import optimize, stats

    width = high - low
    sd_low, sd_high = (math.log(width * k) for k in FIT_SD_WIDTHS)

    def nll(theta: FloatArray) -> float:
        mu, sd = float(theta[0]), math.exp(float(theta[1]))
        dist = stats.truncnorm((low - mu) / sd, (high - mu) / sd, loc=mu, scale=sd)
        value = -float(np.sum(dist.logpdf(x)))
        return value if math.isfinite(value) else 1e300

    start_sd = min(max(math.log(max(float(x.std()), 1e-12)), sd_low), sd_high)
    start = np.array([min(max(float(x.mean()), low), high), start_sd])
    fit = optimize.minimize(nll, start, method="L-BFGS-B", bounds=[(low, high), (sd_low, sd_high)])
    return float(fit.x[0]), float(math.exp(fit.x[1]))


def calibrate_parameters(simulator: PhantomSimulator, historical_data: Any) -> PhantomSimulator:
    """A simulator calibrated to history (a mapping of columns or a pandas DataFrame).

    Columns used when present (others are ignored):

    - ``improvement_bps``: observed real bids' improvements over baseline (bps). The
      phantom model's mean and sd are fitted by maximum likelihood as a normal
      truncated to the phantom bounds, so that phantoms look like real bids (SPEC): the
      mean within the bounds, the sd within :data:`FIT_SD_WIDTHS` of their width (at
      least 2 distinct values within the bounds are needed; values outside are left
      out).
    - ``price``: a series of baseline prices, one per auction. With ``r`` the log
      returns in bps, ``volatility = std(r) / VOLATILITY_BPS`` and
      ``trend = mean(r) / TREND_BPS``, each clipped to its range: the inverse of the
      market model's scales (see :mod:`.market`).
    - ``spread_bps`` and ``volume``: medians become ``spread`` and ``volume``.

    Returns a new simulator (same config otherwise, copies of the strategies) whose
    ``calibration`` attribute records the fitted values and sample sizes.
    """
    check_simulator(simulator, "calibrate_parameters")
    config, market = simulator.config, simulator.market
    record: dict[str, Any] = {}
    market_changes: dict[str, Any] = {}
    phantom_model = config.resolved_phantom_model
    improvements = _column(historical_data, "improvement_bps")
    if improvements is not None:
        low, high = phantom_model.min_bps, phantom_model.max_bps
        inside = improvements[(improvements >= low) & (improvements <= high)]
        if np.unique(inside).size < 2:
            raise InvalidBidParameters(
                "historical_data['improvement_bps']",
                f"{inside.size} of {improvements.size} values within the bounds, "
                f"{np.unique(inside).size} distinct",
                f"needs at least 2 distinct values within the phantom bounds [{low:g}, "
                f"{high:g}] bps to fit a mean and an sd",
            )
        mean, sd = _fit_truncated_normal(inside, low, high)
        phantom_model = replace(phantom_model, mean_bps=mean, sd_bps=sd)
        record["phantom_mean_bps"] = mean
        record["phantom_sd_bps"] = sd
        record["improvement_samples"] = int(inside.size)
    prices = _column(historical_data, "price")
    if prices is not None:
        if prices.size < 3 or np.any(prices <= 0):
            raise InvalidBidParameters(
                "historical_data['price']", prices.size, "needs at least 3 positive prices"
            )
        returns = np.diff(np.log(prices)) * 10_000.0
        market_changes["volatility"] = float(np.clip(returns.std(ddof=1) / VOLATILITY_BPS, 0, 1))
        market_changes["trend"] = float(np.clip(returns.mean() / TREND_BPS, -1, 1))
        record["price_samples"] = int(prices.size)
    for column, name in (("spread_bps", "spread"), ("volume", "volume")):
        values = _column(historical_data, column)
        if values is not None and values.size:
            market_changes[name] = float(np.median(values))
    record.update(market_changes)
    if not record:
        raise InvalidBidParameters(
            "historical_data",
            type(historical_data).__name__,
            "has none of the columns improvement_bps, price, spread_bps, volume",
        )
    new_config = replace(config, phantom_model=phantom_model)
    new_market = replace(market, **market_changes)
    calibrated = PhantomSimulator(new_config, new_market, copy.deepcopy(simulator.strategies))
    calibrated.calibration = record
    return calibrated


# -- backtests ----------------------------------------------------------------------

_MARKET_FIELDS = {f.name for f in fields(MarketConditions)}


def _scenario_markets(base: MarketConditions, scenarios: Any) -> list[tuple[str, MarketConditions]]:
    items: list[tuple[str, Any]]
    if isinstance(scenarios, Mapping):
        items = [(str(k), v) for k, v in scenarios.items()]
    elif isinstance(scenarios, MarketConditions):
        items = [("scenario_0", scenarios)]
    else:
        items = []
        for i, entry in enumerate(scenarios):
            if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
                items.append(entry)
            else:
                items.append((f"scenario_{i}", entry))
    out = []
    for name, scenario in items:
        if isinstance(scenario, MarketConditions):
            out.append((name, scenario))
        elif isinstance(scenario, Mapping):
            unknown = set(scenario) - _MARKET_FIELDS
            if unknown:
                raise InvalidBidParameters(
                    f"scenarios[{name!r}]",
                    sorted(unknown),
                    f"unknown fields; known: {sorted(_MARKET_FIELDS)}",
                )
            out.append((name, replace(base, **scenario)))
        else:
            raise InvalidBidParameters(
                f"scenarios[{name!r}]",
                scenario,
                "must be MarketConditions or a mapping of its fields",
            )
    if not out:
        raise InvalidBidParameters("scenarios", scenarios, "must hold at least one scenario")
    return out


def backtest_strategy(
    simulator: PhantomSimulator,
    strategy: Any,
    scenarios: Any,
    *,
    baseline_price: float = 100.0,
    baseline_quantity: float = 1000.0,
    num_simulations: int | None = None,
    workers: int | None = None,
) -> dict[str, dict[str, float]]:
    """How ``strategy`` fares as one more real bidder in each market scenario, at
    ``baseline_price`` (token B per token A) and ``baseline_quantity`` (token A).

    ``scenarios``: a mapping ``name -> MarketConditions`` (or a mapping of field
    overrides of the simulator's market), or a sequence of those (named
    ``scenario_<i>``). Each scenario runs a Monte Carlo of ``num_simulations`` auctions
    (default ``config.num_simulations``) with the simulator's bidders plus a fresh copy
    of ``strategy``. Per scenario: ``win_share`` (auctions it won), ``profit_bps`` (its
    mean utility, bps of the order), ``bid_shading`` (its mean shading),
    ``improvement_bps`` (the user's mean improvement), ``phantom_win_rate`` and
    ``num_auctions``.
    """
    check_simulator(simulator, "backtest_strategy")
    label = strategy_label(strategy)
    others = {strategy_label(s) for s in simulator.strategies}
    if label in others:
        label = f"{label} (backtest)"
    out: dict[str, dict[str, float]] = {}
    config = simulator.config
    if num_simulations is not None:
        config = replace(config, num_simulations=num_simulations)
    for name, market in _scenario_markets(simulator.market, scenarios):
        tested = LabelledStrategy(copy.deepcopy(strategy), label)
        sim = PhantomSimulator(config, market, [*copy.deepcopy(simulator.strategies), tested])
        summary = run_monte_carlo(
            sim, baseline_price, baseline_quantity, workers=workers, keep_rows=False
        ).summary
        analysis = _summary_analysis(summary, batches=None)  # only its win shares are read
        out[name] = {
            "win_share": analysis["strategy_performance"].get(label, 0.0),
            "profit_bps": summary.metrics[f"profit_bps:{label}"].stats()["mean"],
            "bid_shading": summary.metrics[f"bid_shading:{label}"].stats()["mean"],
            "improvement_bps": summary.metrics["improvement_bps"].mean,
            "phantom_win_rate": summary.metrics["phantom_won"].mean,
            "num_auctions": float(summary.num_auctions),
        }
    return out
