"""One registry of the built-in strategies, by name, with their classifiers (Axelrod style)."""

from __future__ import annotations

from typing import Any, Final

from ...errors import InvalidBidParameters
from .adaptive import AdaptiveStrategy
from .aggressive import AggressiveStrategy
from .base import BidderStrategy
from .conservative import ConservativeStrategy
from .equilibrium import CompetitiveEquilibriumStrategy
from .random_walk import RandomWalkStrategy
from .truthful import TruthfulStrategy

__all__ = [
    "SEED_STRATEGIES",
    "STRATEGIES",
    "create_strategy",
    "filter_strategies",
    "strategy_names",
]

#: Every built-in strategy by its ``name``.
STRATEGIES: Final[dict[str, type[BidderStrategy]]] = {
    cls.name: cls
    for cls in (
        TruthfulStrategy,
        AggressiveStrategy,
        ConservativeStrategy,
        AdaptiveStrategy,
        RandomWalkStrategy,
        CompetitiveEquilibriumStrategy,
    )
}

_ALIASES: Final = {
    "competitive_equilibrium": "equilibrium",
    "bne": "equilibrium",
    "randomwalk": "random_walk",
    "q_learning": "adaptive",
}

#: The seed's five strategies, in the order a default simulator rotates through them.
SEED_STRATEGIES: Final = ("aggressive", "conservative", "adaptive", "random_walk", "equilibrium")


def strategy_names() -> list[str]:
    """Registered names (aliases excluded)."""
    return list(STRATEGIES)


def create_strategy(name: str, **params: Any) -> BidderStrategy:
    """A new instance of the strategy registered as ``name`` (or an alias)."""
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    cls = STRATEGIES.get(key)
    if cls is None:
        raise InvalidBidParameters(
            "real_strategy", name, f"unknown strategy; choose one of {[*STRATEGIES, *_ALIASES]}"
        )
    return cls(**params)


def filter_strategies(**flags: bool) -> list[str]:
    """Names whose classifier matches every ``flag=value`` (``learns=True``, …)."""
    return [
        name
        for name, cls in STRATEGIES.items()
        if all(cls.classifier.get(flag) == value for flag, value in flags.items())
    ]
