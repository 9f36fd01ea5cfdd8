"""Aggregates of Monte Carlo columns that merge exactly, for runs too large to keep.

Per metric: count, NaN count, mean and sum of squared deviations (Welford; merged with
Chan, Golub & LeVeque 1979), min, max, and a quantile sketch; per run: auctions won per
bidder, phantom and nobody. Everything but the float moments is an integer count, and
the moments are merged in chunk order, so a summary does not depend on how many
processes computed it.

Quantiles come from :class:`QuantileSketch`, a DDSketch (Masson, Rim & Lee 2019): values
are counted in buckets ``(gamma^(i-1), gamma^i]`` with ``gamma = (1 + alpha) / (1 - alpha)``,
mirrored for negatives, plus one bucket for ``|x| < min_value``. **Error bound:** for
``k = floor(q * (n - 1))`` the reported q-quantile ``x̂`` satisfies
``|x̂ - x_(k)| <= alpha * |x_(k)|`` where ``x_(k)`` is the k-th smallest value (numpy's
``quantile(..., method="lower")``), with ``alpha = 0.001`` by default; values below
``min_value = 1e-12`` in magnitude are reported as 0 (absolute error < 1e-12). Bucket
counts merge by addition, exactly.

**Blocks.** A summary also keeps its auctions as contiguous blocks (the chunks, merged
pairwise past :data:`MAX_BLOCKS`): each block's auction count and each metric's count
and sum there. A run that kept no rows still gets batch means from them
(:func:`block_means_ci`): a learning run's auctions depend on each other, so its
interval cannot treat them as independent, and a ratio of sums needs the two sums
batch by batch.

**Pairs.** For each ratio headline (:data:`RATIO_HEADLINES`) a summary keeps the two
columns' co-moments over the auctions where both are finite (:class:`PairSummary`,
merged as the moments are): the delta method's interval of the ratio of sums for
independent auctions, the same as the kept rows give, in any number of chunks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .intervals import CI_BATCHES, SHARE_METRICS, mean_ci, proportion_ci, t_quantile_975

__all__ = [
    "RATIO_HEADLINES",
    "MetricSummary",
    "PairSummary",
    "QuantileSketch",
    "StreamingSummary",
    "block_means_ci",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

DEFAULT_ALPHA = 0.001
MIN_VALUE = 1e-12
#: Most blocks a summary keeps; past it, neighbouring blocks are merged pairwise.
MAX_BLOCKS = 512
#: Fewest batches :func:`block_means_ci` makes an interval of.
MIN_BATCHES = 5

#: Headlines that are ratios of sums over all auctions: metric -> (numerator, denominator)
#: columns. Their per-auction ratios' distribution stays beside them.
RATIO_HEADLINES: dict[str, tuple[str, str]] = {
    "mev_capture_rate": ("improvement_bps", "available_surplus_bps"),
    "bid_shading": ("shaded_bps", "valued_bps"),
}

#: One block: its auctions, and per metric the count and sum of its finite values.
Block = tuple[int, dict[str, tuple[int, float]]]


@dataclass(slots=True, eq=False)
class _Store:
    """Dense bucket counts from index ``offset`` on."""

    offset: int = 0
    counts: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Store):
            return NotImplemented
        return self.offset == other.offset and np.array_equal(self.counts, other.counts)

    __hash__ = None  # type: ignore[assignment]

    def add_indices(self, idx: IntArray) -> None:
        if idx.size == 0:
            return
        lo, hi = int(idx.min()), int(idx.max())
        self._extend(lo, hi)
        self.counts += np.bincount(idx - self.offset, minlength=self.counts.size)

    def _extend(self, lo: int, hi: int) -> None:
        if self.counts.size == 0:
            self.offset, self.counts = lo, np.zeros(hi - lo + 1, dtype=np.int64)
            return
        new_lo = min(lo, self.offset)
        new_hi = max(hi, self.offset + self.counts.size - 1)
        if new_lo == self.offset and new_hi == self.offset + self.counts.size - 1:
            return
        grown = np.zeros(new_hi - new_lo + 1, dtype=np.int64)
        start = self.offset - new_lo
        grown[start : start + self.counts.size] = self.counts
        self.offset, self.counts = new_lo, grown

    def merged(self, other: _Store) -> _Store:
        out = _Store(self.offset, self.counts.copy())
        if other.counts.size:
            out._extend(other.offset, other.offset + other.counts.size - 1)
            start = other.offset - out.offset
            out.counts[start : start + other.counts.size] += other.counts
        return out

    @property
    def total(self) -> int:
        return int(self.counts.sum())


@dataclass(slots=True)
class QuantileSketch:
    """Mergeable quantile sketch with relative accuracy ``alpha`` (see the module docstring)."""

    alpha: float = DEFAULT_ALPHA
    positive: _Store = field(default_factory=_Store)
    negative: _Store = field(default_factory=_Store)
    zero_count: int = 0

    @property
    def _log_gamma(self) -> float:
        return math.log1p(2.0 * self.alpha / (1.0 - self.alpha))

    @property
    def count(self) -> int:
        return self.positive.total + self.negative.total + self.zero_count

    def add(self, values: FloatArray) -> None:
        """Count finite ``values`` (NaN and inf are the caller's to filter)."""
        values = np.asarray(values, dtype=np.float64)
        mag = np.abs(values)
        small = mag < MIN_VALUE
        self.zero_count += int(small.sum())
        lg = self._log_gamma
        for store, sel in ((self.positive, values > 0.0), (self.negative, values < 0.0)):
            chosen = mag[sel & ~small]
            if chosen.size:
                store.add_indices(np.ceil(np.log(chosen) / lg).astype(np.int64))

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """A sketch of both inputs (bucket counts add; same ``alpha`` required)."""
        if other.alpha != self.alpha:
            raise ValueError(f"cannot merge sketches with alpha {self.alpha} and {other.alpha}")
        return QuantileSketch(
            self.alpha,
            self.positive.merged(other.positive),
            self.negative.merged(other.negative),
            self.zero_count + other.zero_count,
        )

    def _value(self, index: int) -> float:
        gamma = math.exp(self._log_gamma)
        return 2.0 * gamma**index / (gamma + 1.0)

    def quantile(self, q: float) -> float:
        """The q-quantile within relative error ``alpha`` of the order statistic ``x_(k)``."""
        n = self.count
        if n == 0:
            return math.nan
        rank = math.floor(min(max(q, 0.0), 1.0) * (n - 1))
        seen = 0
        neg = self.negative
        if neg.counts.size:
            # Most negative first: highest bucket index of |x| first.
            cum = np.cumsum(neg.counts[::-1])
            if rank < cum[-1]:
                j = int(np.searchsorted(cum, rank, side="right"))
                return -self._value(neg.offset + neg.counts.size - 1 - j)
            seen = int(cum[-1])
        if rank < seen + self.zero_count:
            return 0.0
        seen += self.zero_count
        cum = np.cumsum(self.positive.counts)
        j = int(np.searchsorted(cum, rank - seen, side="right"))
        return self._value(self.positive.offset + j)


@dataclass(slots=True)
class MetricSummary:
    """Moments, extremes and a sketch of one metric's finite values (``event``: of a
    bool column, whose mean is a rate, or of a share in :data:`~.intervals.SHARE_METRICS`:
    Wilson's interval)."""

    count: int = 0
    nan_count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    sketch: QuantileSketch = field(default_factory=QuantileSketch)
    event: bool = False

    @classmethod
    def of(
        cls, values: NDArray[Any], alpha: float = DEFAULT_ALPHA, *, share: bool = False
    ) -> MetricSummary:
        event = share or np.asarray(values).dtype == np.bool_
        x = np.asarray(values, dtype=np.float64)
        finite = x[np.isfinite(x)]
        out = cls(nan_count=int(x.size - finite.size), sketch=QuantileSketch(alpha), event=event)
        if finite.size:
            mean = float(finite.mean())
            out.count = int(finite.size)
            out.mean = mean
            out.m2 = float(np.square(finite - mean).sum())
            out.minimum = float(finite.min())
            out.maximum = float(finite.max())
            out.sketch.add(finite)
        return out

    def merge(self, other: MetricSummary) -> MetricSummary:
        """Chan et al.'s pairwise update; exact for counts, extremes and sketch."""
        n = self.count + other.count
        if other.count == 0:
            mean, m2 = self.mean, self.m2
        elif self.count == 0:
            mean, m2 = other.mean, other.m2
        else:
            delta = other.mean - self.mean
            mean = self.mean + delta * other.count / n
            m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        return MetricSummary(
            n,
            self.nan_count + other.nan_count,
            mean,
            m2,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
            self.sketch.merge(other.sketch),
            self.event or other.event,
        )

    @property
    def total(self) -> float:
        """Sum of the finite values."""
        return self.mean * self.count

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof = 1); NaN below two values."""
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else math.nan

    def stats(self) -> dict[str, float]:
        """``mean``, its 95 % interval (independent values; Wilson's for an event) and
        standard error, ``median, std, min, max, p05, p95, count`` (quantiles from the
        sketch, within its relative error, and within ``[min, max]``)."""
        empty = self.count == 0
        sem, low, high = mean_ci(self.mean, self.std, self.count)
        if self.event:
            low, high = proportion_ci(self.mean, self.count)

        def quantile(q: float) -> float:
            # The sketch's bucket value may lie past the extremes, which are exact.
            value = self.sketch.quantile(q)
            return value if empty else min(max(value, self.minimum), self.maximum)

        return {
            "mean": math.nan if empty else self.mean,
            "ci95_low": low,
            "ci95_high": high,
            "sem": sem,
            "median": quantile(0.5),
            "std": self.std,
            "min": math.nan if empty else self.minimum,
            "max": math.nan if empty else self.maximum,
            "p05": quantile(0.05),
            "p95": quantile(0.95),
            "count": float(self.count),
        }


@dataclass(slots=True)
class PairSummary:
    """Means and co-moments (sums of products of deviations) of two columns ``x``, ``y``
    over the auctions where both are finite: the ratio of their sums and its 95 %
    interval by the delta method (:meth:`ratio_stats`)."""

    count: int = 0
    mean_x: float = 0.0
    mean_y: float = 0.0
    cxx: float = 0.0
    cyy: float = 0.0
    cxy: float = 0.0

    @classmethod
    def of(cls, x: NDArray[Any], y: NDArray[Any]) -> PairSummary:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        if x.size == 0:
            return cls()
        mx, my = float(x.mean()), float(y.mean())
        dx, dy = x - mx, y - my
        return cls(int(x.size), mx, my, float(dx @ dx), float(dy @ dy), float(dx @ dy))

    def merge(self, other: PairSummary) -> PairSummary:
        """Chan et al.'s pairwise update of the co-moments."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        dx, dy = other.mean_x - self.mean_x, other.mean_y - self.mean_y
        w = self.count * other.count / n
        return PairSummary(
            n,
            self.mean_x + dx * other.count / n,
            self.mean_y + dy * other.count / n,
            self.cxx + other.cxx + dx * dx * w,
            self.cyy + other.cyy + dy * dy * w,
            self.cxy + other.cxy + dx * dy * w,
        )

    def ratio_stats(self) -> dict[str, float]:
        """``Σx / Σy`` (``mean``) and, for independent auctions, its ``sem`` and 95 %
        interval: the t interval of ``mean(x − R y) / mean(y)`` (the delta method), whose
        residuals' variance is ``(cxx − 2 R cxy + R² cyy) / (n − 1)``."""
        nan = math.nan
        if self.count == 0 or not self.mean_y > 0.0:
            return {"mean": nan, "ci95_low": nan, "ci95_high": nan, "sem": nan}
        ratio = self.mean_x / self.mean_y
        spread = max(self.cxx - 2.0 * ratio * self.cxy + ratio * ratio * self.cyy, 0.0)
        std = math.sqrt(spread / (self.count - 1)) if self.count > 1 else nan
        sem, low, high = mean_ci(0.0, std, self.count)
        scale = self.mean_y
        return {
            "mean": ratio,
            "ci95_low": ratio + low / scale,
            "ci95_high": ratio + high / scale,
            "sem": sem / scale,
        }


@dataclass(slots=True, eq=False)
class StreamingSummary:
    """Summary of a run's columns: per-metric aggregates and wins per bidder.

    ``wins`` counts auctions won by real bidder ``i`` at index ``i``, then by a phantom,
    then by nobody (length ``len(labels) + 2``).
    """

    labels: tuple[str, ...]
    num_auctions: int = 0
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    wins: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: The auctions in contiguous blocks, in the order merged (see the module docstring).
    blocks: list[Block] = field(default_factory=list)
    #: Per ratio headline, its two columns' co-moments (see the module docstring).
    pairs: dict[str, PairSummary] = field(default_factory=dict)

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, NDArray[Any]],
        labels: Sequence[str],
        alpha: float = DEFAULT_ALPHA,
    ) -> StreamingSummary:
        """Summarise one chunk's columns (``winner_index`` becomes win counts)."""
        winner = np.asarray(columns["winner_index"], dtype=np.int64)
        n = len(labels)
        # Codes: bidder i -> i, phantom (-1) -> n, nobody (-2) -> n + 1.
        codes = np.where(winner >= 0, winner, np.where(winner == -1, n, n + 1))
        metrics = {
            name: MetricSummary.of(values, alpha, share=name in SHARE_METRICS)
            for name, values in columns.items()
            if name != "winner_index"
        }
        sums = {name: (m.count, m.total) for name, m in metrics.items()}
        pairs = {
            name: PairSummary.of(columns[num], columns[den])
            for name, (num, den) in RATIO_HEADLINES.items()
            if num in columns and den in columns
        }
        return cls(
            tuple(labels),
            int(winner.size),
            metrics,
            np.bincount(codes, minlength=n + 2).astype(np.int64),
            [(int(winner.size), sums)],
            pairs,
        )

    def merge(self, other: StreamingSummary) -> StreamingSummary:
        """The summary of both runs' auctions (same bidders required)."""
        if self.labels != other.labels:
            raise ValueError(f"cannot merge summaries of bidders {self.labels} and {other.labels}")
        if self.num_auctions == 0:
            return other
        if other.num_auctions == 0:
            return self
        names = list(dict.fromkeys([*self.metrics, *other.metrics]))
        empty = MetricSummary()
        no_pair = PairSummary()
        return StreamingSummary(
            self.labels,
            self.num_auctions + other.num_auctions,
            {k: self.metrics.get(k, empty).merge(other.metrics.get(k, empty)) for k in names},
            self.wins + other.wins,
            _compact(self.blocks + other.blocks),
            {
                k: self.pairs.get(k, no_pair).merge(other.pairs.get(k, no_pair))
                for k in dict.fromkeys([*self.pairs, *other.pairs])
            },
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StreamingSummary):
            return NotImplemented
        return (
            self.labels == other.labels
            and self.num_auctions == other.num_auctions
            and self.metrics == other.metrics
            and np.array_equal(self.wins, other.wins)
        )

    __hash__ = None  # type: ignore[assignment]

    def stats(self, metric: str) -> dict[str, float]:
        """Statistics of ``metric``, a column or the seed's name of one, as
        ``analyze_results`` takes them (see :meth:`MetricSummary.stats`)."""
        from .results import SEED_METRIC_NAMES  # (results imports this module)

        found = self.metrics.get(SEED_METRIC_NAMES.get(metric, metric))
        if found is None:
            raise KeyError(f"{metric!r} is not a metric here; one of {sorted(self.metrics)}")
        return found.stats()

    def __repr__(self) -> str:
        improvement = self.metrics.get("improvement_bps")
        mean = "" if improvement is None else f", mean improvement {improvement.mean:.2f} bps"
        return (
            f"StreamingSummary({self.num_auctions:,} auctions, {len(self.metrics)} metrics{mean})"
        )

    def _repr_html_(self) -> str:
        """A notebook table: each metric's mean, 95 % interval, p05 and p95."""
        return summary_html(
            {name: m.stats() for name, m in self.metrics.items() if ":" not in name},
            f"{self.num_auctions:,} auctions",
        )


def _join(first: Block, second: Block) -> Block:
    """Two neighbouring blocks as one."""
    sums = dict(first[1])
    for name, (count, total) in second[1].items():
        had_count, had_total = sums.get(name, (0, 0.0))
        sums[name] = (had_count + count, had_total + total)
    return first[0] + second[0], sums


def _compact(blocks: list[Block]) -> list[Block]:
    """``blocks`` with neighbours merged pairwise until at most :data:`MAX_BLOCKS`."""
    while len(blocks) > MAX_BLOCKS:
        pairs = [_join(blocks[i], blocks[i + 1]) for i in range(0, len(blocks) - 1, 2)]
        blocks = pairs + ([blocks[-1]] if len(blocks) % 2 else [])
    return blocks


def block_means_ci(
    blocks: Sequence[Block],
    metric: str,
    denominator: str | None = None,
    batches: int = CI_BATCHES,
) -> tuple[float, float, float, int]:
    """``(sem, low, high, batches)`` of a metric's mean (or, with ``denominator``, of the
    ratio of the two metrics' sums) by batch means over ``blocks``: up to ``batches``
    contiguous batches of about equal auctions, each batch's mean (ratio) one
    observation, Student's t at ``batches - 1`` degrees of freedom, around the whole
    run's mean (ratio). NaN, and 0 batches, with fewer blocks than ``batches`` or
    :data:`MIN_BATCHES`, whichever is fewer."""
    nan = math.nan
    least = min(MIN_BATCHES, batches)
    if len(blocks) < least:
        return nan, nan, nan, 0
    k = min(batches, len(blocks))
    total = sum(n for n, _ in blocks)
    # Batch j takes the blocks whose first auction falls in its share of the run.
    num = np.zeros(k)
    den = np.zeros(k)
    seen = 0
    for n, sums in blocks:
        j = min(k - 1, seen * k // total) if total else 0
        seen += n
        count, value = sums.get(metric, (0, 0.0))
        num[j] += value
        if denominator is None:
            den[j] += count
        else:
            den[j] += sums.get(denominator, (0, 0.0))[1]
    used = den != 0
    if int(used.sum()) < least:
        return nan, nan, nan, 0
    means = num[used] / den[used]
    centre = float(num.sum() / den.sum())
    batches = int(used.sum())
    sem = float(means.std(ddof=1)) / math.sqrt(batches)
    half = t_quantile_975(batches - 1) * sem
    return sem, centre - half, centre + half, batches


def summary_html(stats_of: Mapping[str, Mapping[str, float]], caption: str) -> str:
    """A short HTML table of per-metric statistics (for ``_repr_html_``)."""
    import html

    def cell(x: float) -> str:
        return f"{x:.4g}" if math.isfinite(x) else ""

    head = "".join(f"<th>{c}</th>" for c in ("metric", "mean", "95% CI", "p05", "p95"))
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{cell(s['mean'])}</td>"
        f"<td>{cell(s['ci95_low'])} – {cell(s['ci95_high'])}</td>"
        f"<td>{cell(s['p05'])}</td><td>{cell(s['p95'])}</td></tr>"
        for name, s in stats_of.items()
    )
    return (
        f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
