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
    "strategy_class",
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


def strategy_class(name: str, field: str = "name") -> type[BidderStrategy]:
    """The strategy class registered as ``name`` (or an alias); an unknown name is an
    :class:`InvalidBidParameters` naming ``field``, with the names to choose from."""
    key = str(name).strip().lower().replace("-", "_")
    cls = STRATEGIES.get(_ALIASES.get(key, key))
    if cls is None:
        raise InvalidBidParameters(
            field, name, f"unknown strategy; choose one of {[*STRATEGIES, *_ALIASES]}"
        )
    return cls


def create_strategy(name: str, **params: Any) -> BidderStrategy:
    """A new instance of the strategy registered as ``name`` (or an alias)."""
    return strategy_class(name)(**params)


def filter_strategies(**flags: bool) -> list[str]:
    """Names whose classifier matches every ``flag=value`` (``learns=True``, …)."""
    return [
        name
        for name, cls in STRATEGIES.items()
        if all(cls.classifier.get(flag) == value for flag, value in flags.items())
    ]
