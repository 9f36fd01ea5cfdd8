"""Market model: each auction's latent true price and the real bidders' private values.

Everything is measured in bps over the CFMM's baseline quote unless said otherwise
(``price = baseline * (1 + bps / 10_000)``).

**Market mode** (no value distribution given). A seller's CFMM quote sits below the
fair mid price by the pool's LP fee (``amm_fee_bps``) and by the price impact of its
order, and lags the market by the trend; a filler that buys the order hedges it on
another venue at the fair bid, half the spread below the mid. The fair value ``P*`` is
uncertain in proportion to volatility. For auction ``a`` and real bidder (filler) ``i``::

    impact    = 10_000 * baseline_quantity / (volume * liquidity)      (capped)
    m_a       = amm_fee_bps + impact - spread / 2 + TREND_BPS * trend
                + VOLATILITY_BPS * volatility * Z_a
    v_ai      = m_a + noise_sd * X_ai,   noise_sd = max(1, spread) * (0.5 + volatility)
    X_a       ~ N(0, R)   (R = MarketConditions.values_correlation, a Gaussian copula)

``m_a`` is the true price premium (``P* = baseline * (1 + m_a / 10_000)``) and ``v_ai``
the filler's private value of the order per unit: its estimate of ``P*`` plus its own
edge (inventory, flow it can net against), which is why values differ and correlate.
The fee is why the improvement exists at all: an AMM quote is worse than the fair price
by at least its fee (Milionis et al. 2022, "Automated market making and loss-versus-
rebalancing"), and that gap is the MEV a phantom auction hands back to the user.

**Independent private values** (``value_distribution`` F given): ``v_ai = F^-1(Phi(X_ai))``
with ``X_ai`` independent standard normals (so ``v_ai`` are i.i.d. draws from F) unless
``MarketConditions(correlation=rho)`` (or ``correlation_matrix=R``) asks for a Gaussian
copula; volatility and trend
do not move them. ``P*``'s premium is F's mean, the price a competitive market would
pay on average.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

from ..errors import InvalidBidParameters

__all__ = [
    "MAX_IMPACT_BPS",
    "MAX_SPREAD_BPS",
    "TREND_BPS",
    "VOLATILITY_BPS",
    "MarketConditions",
    "MarketDraws",
    "NormalValues",
    "ValueModel",
    "equicorrelation",
    "value_distribution",
]

FloatArray = NDArray[np.float64]

#: Shift of ``P*`` over the quote (bps) for ``trend = 1``: the quote lags a moving market.
TREND_BPS: Final = 20.0
#: Standard deviation of ``P*`` around its mean (bps) for ``volatility = 1``.
VOLATILITY_BPS: Final = 40.0
#: Cap on the price impact term (bps), so that a near-zero liquidity stays finite.
MAX_IMPACT_BPS: Final = 1_000.0
#: Upper bound on ``spread`` (bps, exclusive): a spread of 10,000 bps is 100 % of the
#: price, so the fair bid (half the spread below the mid) would be half the price or
#: less and the value noise (``max(1, spread) * (0.5 + volatility)`` bps) as large as the
#: price itself; beyond it the model has no meaning (and 1e300 overflows).
MAX_SPREAD_BPS: Final = 10_000.0
#: Off-diagonal correlation of fillers' values per unit of liquidity when not given:
#: in liquid markets fillers hedge on the same venues, so their values move together.
LIQUIDITY_CORRELATION: Final = 0.5
_DEFAULT_NUM_BIDDERS: Final = 20


def _is_number(value: Any) -> bool:
    """A real number (numpy's too), not a bool and not a string."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def equicorrelation(n: int, rho: float) -> FloatArray:
    """The ``n x n`` matrix with ones on the diagonal and ``rho`` elsewhere."""
    matrix = np.full((n, n), float(rho))
    np.fill_diagonal(matrix, 1.0)
    return matrix


def _check_correlation(rho: float, n: int, field_name: str = "correlation") -> None:
    """An equicorrelation matrix is positive definite iff -1/(n-1) < rho < 1."""
    low = -1.0 / (n - 1) if n > 1 else -math.inf
    if not (math.isfinite(rho) and low < rho < 1.0):
        bound = f"{low:.6g}" if n > 1 else "-inf"
        raise InvalidBidParameters(
            field_name,
            rho,
            f"must lie in ({bound}, 1) for a positive definite matrix over {n} bidders",
        )


@dataclass(frozen=True, slots=True)
class MarketConditions:
    """Market environment of the simulated auctions (the seed's fields plus ``correlation``).

    ``volatility`` and ``liquidity`` are scores in [0, 1] (liquidity > 0), ``trend`` in
    [-1, 1], ``spread`` the bid-ask spread in bps, in [0, 10,000) (:data:`MAX_SPREAD_BPS`:
    a spread of the whole price leaves no market to model), ``volume`` the recent traded
    volume in token A (finite, > 0), ``num_bidders`` the size of
    :attr:`values_correlation`. Each must be a number (an ``int`` or a ``float``, not a
    ``bool`` or a string). The real bidders'
    values correlate through either

    - ``correlation``, a constant off-diagonal correlation; ``None`` derives it from
      liquidity (``0.5 * liquidity``) in market mode and means independent values when a
      value distribution is given; or
    - ``correlation_matrix`` (the seed's form): a symmetric, positive definite matrix with
      a unit diagonal, one row per real bidder (bidder i takes row i; fewer bidders take
      the leading block). ``num_bidders`` is then its size.

    ``amm_fee_bps`` is the CFMM pool's LP fee (bps; 30 for the common 0.3% tier), the
    main reason its quote is below the fair price.
    """

    volatility: float = 0.3
    liquidity: float = 0.7
    trend: float = 0.0
    spread: float = 10.0
    volume: float = 1e6
    num_bidders: int = _DEFAULT_NUM_BIDDERS
    correlation: float | None = None
    amm_fee_bps: float = 30.0
    #: Given as any n x n array-like; kept as a tuple of rows (hashable, comparable).
    correlation_matrix: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.correlation_matrix is not None:
            matrix = _checked_matrix(self.correlation_matrix)
            if self.correlation is not None:
                raise InvalidBidParameters(
                    "correlation", self.correlation, "give correlation or correlation_matrix"
                )
            n = matrix.shape[0]
            if self.num_bidders not in (n, _DEFAULT_NUM_BIDDERS):  # the default: from R
                raise InvalidBidParameters(
                    "num_bidders", self.num_bidders, f"must match correlation_matrix's size {n}"
                )
            object.__setattr__(self, "num_bidders", n)
            object.__setattr__(self, "correlation_matrix", tuple(map(tuple, matrix.tolist())))
        # The type first (a number, not a bool), then the range: "high" or True is not
        # compared with a bound.
        checks: tuple[tuple[str, Callable[[float], bool], str], ...] = (
            ("volatility", lambda x: 0.0 <= x <= 1.0, "in [0, 1]"),
            ("liquidity", lambda x: 0.0 < x <= 1.0, "in (0, 1]"),
            ("trend", lambda x: -1.0 <= x <= 1.0, "in [-1, 1]"),
            ("spread", lambda x: 0.0 <= x < MAX_SPREAD_BPS, "in [0, 10000) bps"),
            ("volume", lambda x: 0.0 < x < math.inf, "finite and > 0"),
            ("amm_fee_bps", lambda x: 0.0 <= x < 10_000.0, "in [0, 10000) bps"),
        )
        for name, ok, bounds in checks:
            value = getattr(self, name)
            if not _is_number(value):
                raise InvalidBidParameters(name, value, f"must be a number {bounds}")
            if not ok(float(value)):
                raise InvalidBidParameters(name, value, f"must be {bounds}")
        if isinstance(self.num_bidders, bool) or not (
            isinstance(self.num_bidders, int) and self.num_bidders >= 1
        ):
            raise InvalidBidParameters("num_bidders", self.num_bidders, "must be an integer >= 1")
        if self.correlation is not None:
            if not _is_number(self.correlation):
                raise InvalidBidParameters(
                    "correlation", self.correlation, "must be a number in (-1/(n-1), 1) or None"
                )
            _check_correlation(float(self.correlation), self.num_bidders)

    @property
    def value_correlation(self) -> float:
        """Off-diagonal correlation of values in market mode (given, or from liquidity;
        the mean off-diagonal entry of a given ``correlation_matrix``)."""
        if self.correlation_matrix is not None:
            matrix = np.asarray(self.correlation_matrix)
            n = matrix.shape[0]
            return float((matrix.sum() - n) / (n * (n - 1))) if n > 1 else 0.0
        if self.correlation is not None:
            return float(self.correlation)
        return LIQUIDITY_CORRELATION * self.liquidity

    @property
    def values_correlation(self) -> FloatArray:
        """``num_bidders x num_bidders`` correlation of values (positive definite): the
        given ``correlation_matrix``, else constant off-diagonal :attr:`value_correlation`
        (the identity for ``correlation=0``)."""
        return self.correlation_matrix_for(self.num_bidders)

    def correlation_matrix_for(self, n: int) -> FloatArray:
        """The correlation of ``n`` bidders' values (the simulator's real bidders)."""
        if self.correlation_matrix is not None:
            matrix = np.asarray(self.correlation_matrix, dtype=np.float64)
            if n > matrix.shape[0]:
                raise InvalidBidParameters(
                    "correlation_matrix",
                    f"{matrix.shape[0]}x{matrix.shape[0]}",
                    f"has fewer rows than the {n} real bidders",
                )
            return matrix[:n, :n]
        rho = self.value_correlation
        _check_correlation(rho, max(n, 1))
        return equicorrelation(n, rho)


def _checked_matrix(value: Any) -> FloatArray:
    """``value`` as a correlation matrix, or :class:`InvalidBidParameters` saying why not."""
    name = "correlation_matrix"
    try:
        matrix = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidBidParameters(name, value, "must be a square matrix of numbers") from None
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        raise InvalidBidParameters(name, matrix.shape, "must be a square n x n matrix, n >= 1")
    if not np.isfinite(matrix).all():
        raise InvalidBidParameters(name, value, "has an entry that is not a finite number")
    if not np.allclose(matrix, matrix.T, atol=1e-12):
        raise InvalidBidParameters(name, value, "must be symmetric")
    if not np.allclose(np.diag(matrix), 1.0, atol=1e-12):
        raise InvalidBidParameters(name, np.diag(matrix).tolist(), "diagonal must be all 1")
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        low = float(np.linalg.eigvalsh(matrix).min())
        raise InvalidBidParameters(
            name, value, f"must be positive definite (smallest eigenvalue {low:.3g})"
        ) from None
    return matrix


def value_distribution(spec: Any) -> Any:
    """A frozen ``scipy.stats`` distribution of values in bps over baseline.

    ``spec`` is ``("uniform", low, high)``, ``("normal", mean, sd)``,
    ``("lognormal", mu, sigma)`` (``exp`` of a normal with that mean and sd) or already a
    frozen scipy distribution (anything with ``cdf``, ``ppf`` and ``mean``).
    """
    if all(hasattr(spec, name) for name in ("cdf", "ppf", "mean")):
        return spec
    from scipy import stats  # imported on use: scipy.stats takes ~0.5 s to import

    if not isinstance(spec, Sequence) or isinstance(spec, str) or len(spec) != 3:
        raise InvalidBidParameters(
            "value_distribution",
            spec,
            "must be ('uniform', low, high), ('normal', mean, sd), ('lognormal', mu, sigma) "
            "or a frozen scipy.stats distribution",
        )
    family, a, b = spec
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        raise InvalidBidParameters(
            "value_distribution", spec, "parameters must be numbers"
        ) from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise InvalidBidParameters("value_distribution", spec, "parameters must be finite")
    family = str(family).lower()
    if family == "uniform":
        if not a < b:
            raise InvalidBidParameters("value_distribution", spec, "uniform needs low < high")
        return stats.uniform(loc=a, scale=b - a)
    if family == "normal":
        if not b > 0:
            raise InvalidBidParameters("value_distribution", spec, "normal needs sd > 0")
        return stats.norm(loc=a, scale=b)
    if family == "lognormal":
        if not b > 0:
            raise InvalidBidParameters("value_distribution", spec, "lognormal needs sigma > 0")
        return stats.lognorm(s=b, scale=math.exp(a))
    raise InvalidBidParameters(
        "value_distribution", spec, "family must be 'uniform', 'normal' or 'lognormal'"
    )


class _NormFamily:
    """Stands for ``scipy.stats.norm`` in keys that name a distribution's family."""

    name: Final = "norm"


@dataclass(frozen=True, slots=True)
class NormalValues:
    """The normal ``N(loc, scale)`` (bps) with the frozen ``scipy.stats.norm`` methods
    the simulator and strategies call, computed as scipy does (``ndtr``, ``ndtri``).

    ``scipy.stats`` takes 0.5-1 s to import; a Monte Carlo run in market mode needs only
    these few methods of its values' marginal. Any other method is delegated to
    ``scipy.stats.norm(loc, scale)``, imported then. Equal when the parameters are.
    """

    loc: float
    scale: float
    dist: ClassVar[_NormFamily] = _NormFamily()
    args: ClassVar[tuple[()]] = ()

    @property
    def kwds(self) -> dict[str, float]:
        return {"loc": self.loc, "scale": self.scale}

    def _z(self, x: Any) -> Any:
        return (np.asarray(x, dtype=np.float64) - self.loc) / self.scale

    @staticmethod
    def _out(a: Any) -> Any:
        """A 0-d result as a numpy scalar, as scipy returns it."""
        out = np.asarray(a, dtype=np.float64)
        return out[()] if out.ndim == 0 else out

    def cdf(self, x: Any) -> Any:
        return self._out(ndtr(self._z(x)))

    def sf(self, x: Any) -> Any:
        return self._out(ndtr(-self._z(x)))

    def ppf(self, q: Any) -> Any:
        return self._out(ndtri(np.asarray(q, dtype=np.float64)) * self.scale + self.loc)

    def pdf(self, x: Any) -> Any:
        z = self._z(x)
        return self._out(np.exp(-(z**2) / 2.0) / _SQRT_2PI / self.scale)

    def logpdf(self, x: Any) -> Any:
        z = self._z(x)
        return self._out(-(z**2) / 2.0 - _LOG_SQRT_2PI - math.log(self.scale))

    def mean(self) -> float:
        return float(self.loc)

    def median(self) -> float:
        return float(self.loc)

    def std(self) -> float:
        return float(self.scale)

    def var(self) -> float:
        return float(self.scale) ** 2

    def support(self) -> tuple[float, float]:
        return -math.inf, math.inf

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        from scipy import stats

        return getattr(stats.norm(loc=self.loc, scale=self.scale), name)


_SQRT_2PI: Final = math.sqrt(2.0 * math.pi)
_LOG_SQRT_2PI: Final = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True, slots=True)
class MarketDraws:
    """Exogenous draws of ``A`` auctions: true price premium (A,) and values (A, N), in bps."""

    true_premium_bps: FloatArray
    values_bps: FloatArray


def _family(dist: Any) -> tuple[str, float, float]:
    """(family, loc, scale) for the closed forms we sample without ``ppf``; else ("other", ..)."""
    name = getattr(getattr(dist, "dist", None), "name", "")
    args = tuple(getattr(dist, "args", ()))
    kwds = dict(getattr(dist, "kwds", {}))
    if name in ("uniform", "norm") and not args:
        return name, float(kwds.get("loc", 0.0)), float(kwds.get("scale", 1.0))
    if name == "lognorm" and not args and set(kwds) <= {"s", "scale"} and "s" in kwds:
        return name, float(kwds["s"]), float(kwds.get("scale", 1.0))
    return "other", 0.0, 1.0


@dataclass(frozen=True, slots=True)
class ValueModel:
    """How one run draws ``P*`` and values (see the module docstring); picklable.

    Each auction takes one row of ``N + 2`` standard normals from the market stream:
    ``Z`` (true price), ``W`` (common factor of the values) and ``E`` (N idiosyncratic),
    so ``k`` auctions drawn at once equal ``k`` auctions drawn one by one.
    """

    num_bidders: int
    center_bps: float
    premium_sd_bps: float
    noise_sd_bps: float
    correlation: float
    distribution: Any = None
    _cholesky: FloatArray | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        market: MarketConditions,
        num_bidders: int,
        baseline_quantity: float,
        distribution: Any = None,
    ) -> ValueModel:
        """The model for ``num_bidders`` real bidders trading ``baseline_quantity`` token A."""
        if distribution is not None:
            rho = 0.0 if market.correlation is None else float(market.correlation)
            mean = float(distribution.mean())
            center = mean if math.isfinite(mean) else float(distribution.median())
            premium_sd = noise_sd = 0.0
        else:
            rho = market.value_correlation
            impact = min(
                MAX_IMPACT_BPS, 10_000.0 * baseline_quantity / (market.volume * market.liquidity)
            )
            center = market.amm_fee_bps + impact - market.spread / 2.0 + TREND_BPS * market.trend
            premium_sd = VOLATILITY_BPS * market.volatility
            noise_sd = max(1.0, market.spread) * (0.5 + market.volatility)
        chol = None
        if market.correlation_matrix is not None:
            matrix = market.correlation_matrix_for(num_bidders)
            rho = market.value_correlation
            if num_bidders > 1:
                chol = np.asarray(np.linalg.cholesky(matrix), dtype=np.float64)
        elif num_bidders > 1:
            _check_correlation(rho, num_bidders)
            if rho < 0.0:
                chol = np.asarray(
                    np.linalg.cholesky(equicorrelation(num_bidders, rho)), dtype=np.float64
                )
        return cls(num_bidders, center, premium_sd, noise_sd, rho, distribution, chol)

    @property
    def marginal(self) -> Any:
        """The distribution of one bidder's value (bps): F, or the market mode's normal."""
        if self.distribution is not None:
            return self.distribution
        return NormalValues(self.center_bps, math.hypot(self.premium_sd_bps, self.noise_sd_bps))

    @property
    def rows_independent(self) -> bool:
        """Whether :meth:`draw` of ``k`` auctions gives the bits of ``k`` draws of one (each
        row's values are computed element by element; a Cholesky product's bits may
        depend on the number of rows)."""
        return self._cholesky is None

    def draw(self, rng: np.random.Generator, n_auctions: int) -> MarketDraws:
        """Draw ``n_auctions`` auctions from the market stream ``rng``."""
        n = self.num_bidders
        block = rng.standard_normal((n_auctions, n + 2))
        premium_shock, common, idio = block[:, 0], block[:, 1], block[:, 2:]
        if self._cholesky is not None:
            x = idio @ self._cholesky.T
        elif self.correlation == 0.0:
            x = idio
        else:
            # sqrt(rho) * W + sqrt(1 - rho) * E, in place (the same bits: a + b == b + a).
            x = np.multiply(idio, math.sqrt(1.0 - self.correlation))
            x += (math.sqrt(self.correlation) * common)[:, None]
        if self.distribution is None:
            premium = self.center_bps + self.premium_sd_bps * premium_shock
            # premium + noise_sd * x, in place when x is ours.
            values = (
                np.multiply(x, self.noise_sd_bps)
                if x is idio
                else np.multiply(x, self.noise_sd_bps, out=x)
            )
            values += premium[:, None]
            return MarketDraws(premium, values)
        premium = np.full(n_auctions, self.center_bps)
        return MarketDraws(premium, self._quantile_transform(x))

    def _quantile_transform(self, x: FloatArray) -> FloatArray:
        """``F^-1(Phi(x))``, in closed form for the named families."""
        family, a, b = _family(self.distribution)
        if family == "norm":
            return a + b * x
        if family == "lognorm":
            out: FloatArray = b * np.exp(a * x)
            return out
        u: FloatArray = ndtr(x)
        if family == "uniform":
            return a + b * u
        # Keep u inside (0, 1): Phi saturates at 1.0 for x > 8.3 and F^-1(1) may be inf.
        np.clip(u, 1e-300, 1.0 - 2.0**-53, out=u)
        values: FloatArray = np.asarray(self.distribution.ppf(u), dtype=np.float64)
        return values
