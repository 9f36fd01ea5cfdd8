"""Bidding strategies: the interface, the built-in strategies and their registry."""

from __future__ import annotations

from .adaptive import AdaptiveStrategy
from .aggressive import AggressiveStrategy
from .base import (
    AuctionFeedback,
    AuctionView,
    Bid,
    BidBatch,
    BidderStrategy,
    FeedbackBatch,
    InvalidStrategyBid,
    LabelledStrategy,
    call_generate_bids,
    generate_bid,
    strategy_label,
)
from .conservative import ConservativeStrategy
from .equilibrium import CompetitiveEquilibriumStrategy, first_price_equilibrium_table
from .random_walk import RandomWalkStrategy
from .registry import (
    SEED_STRATEGIES,
    STRATEGIES,
    create_strategy,
    filter_strategies,
    strategy_names,
)
from .truthful import TruthfulStrategy

__all__ = [
    "SEED_STRATEGIES",
    "STRATEGIES",
    "AdaptiveStrategy",
    "AggressiveStrategy",
    "AuctionFeedback",
    "AuctionView",
    "Bid",
    "BidBatch",
    "BidderStrategy",
    "CompetitiveEquilibriumStrategy",
    "ConservativeStrategy",
    "FeedbackBatch",
    "InvalidStrategyBid",
    "LabelledStrategy",
    "RandomWalkStrategy",
    "TruthfulStrategy",
    "call_generate_bids",
    "create_strategy",
    "filter_strategies",
    "first_price_equilibrium_table",
    "generate_bid",
    "strategy_label",
    "strategy_names",
]
