"""Results of simulated auctions: one auction's objects, and a run's columns.

Per-auction metrics, all measured against the modelled private values (SPEC,
"Simulator"); ``Q`` is the order size (token A), ``v_i`` real bidder i's value and
``x_i``, ``p_i`` its allocation and payment (bps over baseline x token A):

- ``improvement_bps`` = ``Σ p_i / Q``: the user's volume-weighted price over baseline
  (phantom-allocated and unsold volume goes to the CFMM at the baseline, 0 bps);
- ``available_surplus_bps`` = ``max(best real value, 0)``: the most a user could get;
- ``mev_capture_rate`` = improvement / available surplus, not clipped (above 1 when a
  filler pays more than the best value); NaN when no real bidder values the order above
  the baseline. ``analyze_results``' headline is the ratio of sums
  ``Σ improvement / Σ available surplus`` over every auction (none dropped), with this
  per-auction ratio's distribution beside it;
- ``competitive_bps`` = ``max(V(2), 0)``, the second-highest real value: what truthful
  competition for the whole order pays (Vickrey), the competitive price;
- ``price_discovery_efficiency`` (the seed's name, now in bps) = improvement −
  competitive price: 0 when the auction finds the competitive price, negative when the
  user gets less, positive when more (e.g. bidders overbid). It replaces
  ``1 − |price − P*| / P*``, which scored every outcome ≥ 0.99;
- ``bid_shading`` = ``Σ (v_i − b_i) / Σ v_i`` over real bidders with a standing bid and
  ``v_i > 0`` (NaN if none), from ``shaded_bps`` = ``Σ (v_i − b_i)`` and
  ``valued_bps`` = ``Σ v_i``; ``analyze_results``' headline is the same ratio of sums over
  all auctions (a value near 0 cannot blow it up, as a mean of ratios could);
- ``phantom_won``: the best-ranked bid that received volume is a phantom;
  ``winner_index``: that bid's real bidder, -1 for a phantom, -2 when nothing cleared;
- ``welfare`` (token B) = ``Σ v_i x_i`` converted at the baseline: the gains from trade
  over the CFMM, shared between the user and the fillers;
- ``welfare_improvement`` = welfare per unit / best available surplus per unit: the
  share of the best achievable gains over the CFMM that was realised (1 when the best
  real bidder fills the whole order; lower when phantoms or worse bidders win); NaN
  when nothing is available;
- ``best_bid_time_ms``: arrival time of the best real standing bid (NaN without real
  bids). Sealed bids are timed by the bidders, so this measures their timing, not price
  discovery: it replaces ``convergence_speed_ms`` (the seed's ``convergence_speed``,
  in :class:`SimulationMetrics` and as an ``analyze_results`` name, is this value);
- ``num_real_bids`` (bidders with a standing bid), ``num_phantom_bids``,
  ``real_fill_fraction`` = ``Σ x_i / Q``, ``best_real_value_bps``;
- ``refused_bids``: the real bids the rule book refused (late, or out of its bounds),
  re-bids included: a strategy's legitimate refusals, counted rather than vanished (a
  bid with a NaN, an infinite value or a negative quantity is a bug in its strategy
  and raises :class:`~phantom_auction.errors.InvalidBidParameters` instead);
- per strategy label L: ``bid_shading:L`` and ``profit_bps:L`` (the fillers' utility
  ``Σ (v_i x_i - p_i) / Q`` over bidders labelled L).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from .._extras import require
from ..errors import PhantomAuctionError
from .intervals import STATISTICS
from .kernels import ChunkColumns
from .streaming import StreamingSummary

T = TypeVar("T")

if TYPE_CHECKING:
    import pandas as pd

    from .parallel import ChunkTask

__all__ = [
    "FRAME_COLUMNS",
    "METRICS",
    "METRIC_COLUMNS",
    "SEED_METRIC_NAMES",
    "STATISTICS",
    "SWEEP_METRICS",
    "BuiltOnRead",
    "MetricInfo",
    "MonteCarloResults",
    "RowsNotKept",
    "SimulatedBid",
    "SimulatedBids",
    "SimulationMetrics",
    "SimulationResult",
    "frame_from_columns",
]

FloatArray = NDArray[np.float64]

#: Per-auction metrics that ``analyze_results`` summarises (``clearing_price`` apart).
METRIC_COLUMNS = (
    "improvement_bps",
    "mev_capture_rate",
    "price_discovery_efficiency",
    "bid_shading",
    "phantom_won",
    "welfare",
    "welfare_improvement",
    "best_bid_time_ms",
    "real_fill_fraction",
    "num_real_bids",
    "num_phantom_bids",
    "refused_bids",
)

#: The columns of counts (int32); ``phantom_won`` is bool, every other column float64.
INT_COLUMNS = ("winner_index", "num_real_bids", "num_phantom_bids", "refused_bids")

#: The seed's names of ``analyze_results`` entries -> the column each one summarises.
#: ``analyze_results`` serves both names (the same statistics); the per-auction
#: :class:`SimulationMetrics` uses the seed's names, the columns the others.
SEED_METRIC_NAMES: dict[str, str] = {
    "avg_price_improvement": "improvement_bps",
    "phantom_win_rate": "phantom_won",
    "convergence_speed": "best_bid_time_ms",
}


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """How a metric is named on an axis (``title``, ``unit``) and in a terminal (``short``)."""

    title: str
    unit: str
    short: str = ""


#: The metric catalogue: each per-auction metric's display name and unit, in table and
#: plot order (the report, the terminal tables and the sweep read it).
METRICS: dict[str, MetricInfo] = {
    "improvement_bps": MetricInfo("User price improvement", "bps over baseline", "bps"),
    "mev_capture_rate": MetricInfo(
        "MEV capture rate", "Σ improvement / Σ (best real value − baseline)", "share"
    ),
    "price_discovery_efficiency": MetricInfo(
        "Price discovery (vs competitive price)", "bps: improvement − 2nd-highest value", "bps"
    ),
    "bid_shading": MetricInfo("Bid shading", "Σ (value − bid) / Σ value", "share"),
    "phantom_won": MetricInfo("Phantom win rate", "share of auctions", "share"),
    "real_fill_fraction": MetricInfo("Real fill fraction", "share of order volume", "share"),
    "welfare": MetricInfo("Welfare (gains over CFMM)", "token B", "B"),
    "welfare_improvement": MetricInfo("Welfare realised", "share of best gains over CFMM", "share"),
    "best_bid_time_ms": MetricInfo("Best bid's arrival", "ms after open", "ms"),
    "clearing_price": MetricInfo("Clearing price", "token B per token A", "B/A"),
    "num_real_bids": MetricInfo("Real bids", "bids per auction", "bids"),
    "num_phantom_bids": MetricInfo("Phantom bids", "bids per auction", "bids"),
    "refused_bids": MetricInfo("Real bids refused", "bids per auction", "bids"),
}

#: Metrics a sweep summarises per grid point (mean, 95 % CI, std, p05, p95) and plots.
SWEEP_METRICS: tuple[str, ...] = (
    "improvement_bps",
    "mev_capture_rate",
    "real_fill_fraction",
    "phantom_won",
    "price_discovery_efficiency",
    "bid_shading",
    "welfare",
    "clearing_price",
)


#: Columns of ``MonteCarloResults.to_frame()`` before the per-strategy ones.
FRAME_COLUMNS = (
    "improvement_bps",
    "mev_capture_rate",
    "price_discovery_efficiency",
    "bid_shading",
    "phantom_won",
    "winner_strategy",
    "winner_index",
    "clearing_price",
    "baseline_price",
    "true_price",
    "welfare",
    "welfare_improvement",
    "best_bid_time_ms",
    "num_real_bids",
    "num_phantom_bids",
    "refused_bids",
    "real_fill_fraction",
    "best_real_value_bps",
    "competitive_bps",
    "available_surplus_bps",
    "shaded_bps",
    "valued_bps",
)


class RowsNotKept(PhantomAuctionError, LookupError):
    """A summary-only run (``keep_rows=False``) was asked for its per-auction rows."""


@dataclass(frozen=True, slots=True)
class SimulatedBid:
    """One bid of a simulated auction.

    ``price`` in token B per token A, ``improvement_bps`` over baseline, ``quantity``
    in token A, ``timestamp_ms`` since the auction opened (phantoms: 0, drawn when it
    opens), ``priority_fee`` in token units, ``private_value_bps`` the bidder's modelled
    value (``None`` for phantoms).
    """

    bidder_id: str
    strategy: str
    price: float
    improvement_bps: float
    quantity: float
    timestamp_ms: float
    priority_fee: float
    is_phantom: bool = False
    private_value_bps: float | None = None


class BuiltOnRead(Sequence[T]):
    """An immutable sequence, equal to the tuple of its items, whose items are made on
    first access (``build()`` makes them all; ``count`` is their number until then), as
    the engine's :class:`~phantom_auction.engine.result.Ranking` is: most results are
    never asked for them, and a 200-bidder auction's records cost more than its clearing.
    Pickled as the plain tuple."""

    __slots__ = ("_bids", "_build", "_count")

    def __init__(
        self,
        items: Iterable[T] = (),
        *,
        build: Callable[[], tuple[T, ...]] | None = None,
        count: int = 0,
    ) -> None:
        self._build = build
        self._bids: tuple[T, ...] | None = None if build else tuple(items)
        self._count = count

    def _built(self) -> tuple[T, ...]:
        items = self._bids
        if items is None:
            assert self._build is not None
            items = self._bids = self._build()
            self._build = None
        return items

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...

    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        return self._built()[index]

    def __len__(self) -> int:
        return self._count if self._bids is None else len(self._bids)

    def __iter__(self) -> Iterator[T]:
        return iter(self._built())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BuiltOnRead | tuple | list):
            return self._built() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._built())

    def __repr__(self) -> str:
        return repr(self._built())

    def __reduce__(self) -> tuple[Any, ...]:
        return (tuple, (self._built(),))


class SimulatedBids(BuiltOnRead[SimulatedBid]):
    """The bids of one simulated auction (:class:`BuiltOnRead`: records built on first
    access)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"SimulatedBids({list(self._built())!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (SimulatedBids, (self._built(),))


@dataclass(frozen=True, slots=True)
class SimulationMetrics:
    """Metrics of one auction (see the module docstring for each definition).

    The seed's names: ``avg_price_improvement`` is ``improvement_bps`` (bps),
    ``convergence_speed`` is ``best_bid_time_ms`` (ms: when the best real bid arrived),
    ``price_discovery_efficiency`` is in bps against the competitive price; ``welfare``
    in token B, ``execution_time_ms`` wall time of the call that made it (ms; the call
    that works out the next auctions ahead of the engine includes their share, so
    average it over calls). ``phantom_win_rate`` is
    1.0 or 0.0 for one auction; ``winner_diversity`` is the normalised entropy of the real
    bidders' allocation shares within the auction (0: one winner takes all).
    """

    avg_price_improvement: float
    mev_capture_rate: float
    price_discovery_efficiency: float
    bid_shading: float
    phantom_win_rate: float
    winner_diversity: float
    convergence_speed: float
    welfare: float
    welfare_improvement: float
    real_fill_fraction: float
    execution_time_ms: float


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Result of one simulated auction (the seed's fields, then ``row``).

    ``winning_bid``: the best real bid that received volume (``None`` if none did);
    ``clearing_price``: the user's volume-weighted price (token B per A);
    ``total_surplus``: welfare in token B; ``all_bids``: the bids that entered clearing
    (each real bidder's standing bid in arrival order, then the phantoms; a
    :class:`SimulatedBids`, built when first read);
    ``vcg_result``: the VCG mechanism's result when the auction used VCG;
    ``convergence_path``: best standing real improvement (bps, non-decreasing) at
    ``execution_trace["time_grid_ms"]`` (``execution_trace["learning"]``: learning
    bidders were told this auction's outcome); ``row``: this auction's Monte Carlo
    columns.
    """

    winning_bid: SimulatedBid | None
    clearing_price: float
    total_surplus: float
    metrics: SimulationMetrics
    all_bids: Sequence[SimulatedBid]
    vcg_result: Any
    convergence_path: FloatArray
    execution_trace: dict[str, Any]
    row: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        # The arrays and bid tuples stay out: a repr is read, not parsed.
        winner = "none" if self.winning_bid is None else self.winning_bid.bidder_id
        return (
            f"SimulationResult(improvement {self.metrics.avg_price_improvement:.2f} bps, "
            f"clearing_price {self.clearing_price:.6g}, winner {winner}, "
            f"{len(self.all_bids)} bids)"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{name}</td><td>{value:.4g}</td></tr>"
            for name, value in (
                (f.name, getattr(self.metrics, f.name)) for f in fields(self.metrics)
            )
        )
        return f"<table><caption>{self!r}</caption><tbody>{rows}</tbody></table>"


def columns_from_rows(rows: Sequence[Mapping[str, Any]]) -> ChunkColumns:
    """Stack per-auction rows into columns with the fast path's dtypes."""
    if not rows:
        return {}
    out: ChunkColumns = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if key == "phantom_won":
            out[key] = np.array(values, dtype=bool)
        elif key in INT_COLUMNS:
            out[key] = np.array(values, dtype=np.int32)
        else:
            out[key] = np.array(values, dtype=np.float64)
    return out


@dataclass(slots=True)
class _Replay:
    """An object-path replay of one chunk, kept to answer nearby indices."""

    chunk: int
    state: Any
    results: list[SimulationResult]


class MonteCarloResults(Sequence[SimulationResult]):
    """A Monte Carlo run: columns (one row per auction) or, for huge runs, a summary.

    As a sequence it yields :class:`SimulationResult` objects built on demand by
    replaying the auction's chunk through the object path (same seed, same numbers);
    indexing replays a chunk up to the index once and keeps it for the next lookups.
    """

    def __init__(
        self,
        tasks: Sequence[ChunkTask],
        columns: ChunkColumns | None,
        summary: StreamingSummary | None,
        *,
        elapsed_s: float | None = None,
    ) -> None:
        if not tasks:
            raise ValueError("a Monte Carlo run has at least one chunk")
        self.tasks = tuple(tasks)
        self._columns = columns
        self._summary = summary
        self.elapsed_s = elapsed_s
        self._starts = np.cumsum([0, *(t.n_auctions for t in self.tasks)])
        self._replay: _Replay | None = None

    # -- construction -----------------------------------------------------------------

    @classmethod
    def from_chunks(
        cls,
        tasks: Sequence[ChunkTask],
        chunks: Sequence[ChunkColumns | StreamingSummary],
        *,
        elapsed_s: float | None = None,
    ) -> MonteCarloResults:
        """Merge per-chunk outputs, given in chunk order (columns, or summaries)."""
        if len(tasks) != len(chunks):
            raise ValueError(f"{len(tasks)} tasks but {len(chunks)} chunk results")
        if chunks and all(isinstance(c, StreamingSummary) for c in chunks):
            summary = chunks[0]
            assert isinstance(summary, StreamingSummary)
            for part in chunks[1:]:
                assert isinstance(part, StreamingSummary)
                summary = summary.merge(part)
            return cls(tasks, None, summary, elapsed_s=elapsed_s)
        parts = [c for c in chunks if isinstance(c, dict)]
        if len(parts) != len(chunks):
            raise ValueError("chunk results mix columns and summaries")
        if len(parts) == 1:  # nothing to join: no copy
            return cls(tasks, dict(parts[0]), None, elapsed_s=elapsed_s)
        columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return cls(tasks, columns, None, elapsed_s=elapsed_s)

    # -- properties -------------------------------------------------------------------

    @property
    def labels(self) -> tuple[str, ...]:
        """Strategy label of each real bidder (index = ``winner_index``)."""
        return self.tasks[0].spec.labels

    @property
    def seed_entropy(self) -> int:
        """Entropy of the run's root seed (rerun with ``seed=`` this to reproduce)."""
        return int(self.tasks[0].seed_seq.entropy)  # type: ignore[arg-type]

    @property
    def rows_kept(self) -> bool:
        return self._columns is not None

    @property
    def columns(self) -> ChunkColumns:
        """Per-auction columns (raises :class:`RowsNotKept` for a summary-only run)."""
        if self._columns is None:
            raise RowsNotKept(
                "rows were not kept (keep_rows=False or > 10 M auctions): use .summary, "
                "analyze_results or indexing (which replays the auction)"
            )
        return self._columns

    @property
    def summary(self) -> StreamingSummary:
        """The run's :class:`StreamingSummary` (computed from the rows if they were kept)."""
        if self._summary is None:
            self._summary = StreamingSummary.from_columns(self.columns, self.labels)
        return self._summary

    def __len__(self) -> int:
        return int(self._starts[-1])

    # -- per-auction objects ------------------------------------------------------------

    def _locate(self, index: int) -> tuple[int, int]:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"auction index {index} out of range for {n} auctions")
        chunk = int(np.searchsorted(self._starts, index, side="right")) - 1
        return chunk, index - int(self._starts[chunk])

    @overload
    def __getitem__(self, index: int) -> SimulationResult: ...

    @overload
    def __getitem__(self, index: slice) -> list[SimulationResult]: ...

    def __getitem__(self, index: int | slice) -> SimulationResult | list[SimulationResult]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        from .parallel import ReplayState

        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(
                f"auction index {index!r}: an integer or a slice (the columns are in "
                ".columns, the table in .to_frame())"
            )
        chunk, offset = self._locate(int(index))
        replay = self._replay
        if replay is None or replay.chunk != chunk:
            replay = _Replay(chunk, ReplayState(self.tasks[chunk]), [])
            self._replay = replay
        while len(replay.results) <= offset:
            replay.results.append(replay.state.next_result())
        return replay.results[offset]

    def __iter__(self) -> Iterator[SimulationResult]:
        from .parallel import ReplayState

        for task in self.tasks:
            state = ReplayState(task)
            for _ in range(task.n_auctions):
                yield state.next_result()

    # -- tables -----------------------------------------------------------------------

    def to_frame(self, *, copy: bool = True) -> pd.DataFrame:
        """One row per auction (pandas; the ``reports`` extra).

        Columns: see :data:`FRAME_COLUMNS` and the module docstring; ``winner_strategy``
        is the winning real bidder's strategy label, ``"phantom"`` or ``"none"``.
        ``copy=False`` shares these results' arrays instead of copying them (half a
        second and ~220 MB per million auctions): for a frame only read, e.g. written to
        a file; editing it in place would edit the results.
        """
        return frame_from_columns(self.columns, self.labels, copy=copy)

    def convergence_paths(self, n: int = 20) -> tuple[FloatArray, FloatArray]:
        """``(time_ms, paths)``: best standing real improvement (bps) over the collection
        window for the first ``n`` auctions (replays the first chunk; shape ``(n, T)``)."""
        from .parallel import chunk_paths

        n = max(0, min(int(n), self.tasks[0].n_auctions))
        sample = chunk_paths(self.tasks[0], n)
        return sample.time_ms, sample.paths

    def __repr__(self) -> str:
        mode = "rows" if self.rows_kept else "summary"
        return f"MonteCarloResults({len(self):,} auctions, {len(self.tasks)} chunks, {mode})"

    def _repr_html_(self) -> str:
        """A notebook table of the headline statistics (``analyze_results`` has them all)."""
        from .streaming import summary_html

        return summary_html(
            {k: m.stats() for k, m in self.summary.metrics.items() if k in METRICS},
            repr(self),
        )


def frame_from_columns(
    cols: ChunkColumns, labels: Sequence[str], *, copy: bool = True
) -> pd.DataFrame:
    """The rows of ``MonteCarloResults.to_frame()`` for columns (a run's, or one chunk's);
    ``copy=False``: the frame shares the arrays of ``cols``."""
    pd_mod = require("pandas", "reports")
    names = [*labels, "phantom", "none"]
    n = len(labels)
    winner = cols["winner_index"].astype(np.int64)
    codes = np.where(winner >= 0, winner, np.where(winner == -1, n, n + 1))
    categories = list(dict.fromkeys(names))
    code_of = {name: categories.index(name) for name in names}
    mapped = np.array([code_of[name] for name in names], dtype=np.int64)[codes]
    data: dict[str, Any] = {}
    for name in FRAME_COLUMNS:
        if name == "winner_strategy":
            data[name] = pd_mod.Categorical.from_codes(mapped, categories=categories)
        else:
            data[name] = cols[name]
    for name, values in cols.items():
        if name not in data:
            data[name] = values
    frame: pd.DataFrame = pd_mod.DataFrame(data, copy=copy)
    return frame
