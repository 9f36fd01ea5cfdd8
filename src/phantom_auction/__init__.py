"""phantom-auction: sealed-bid price-improvement auctions with calibrated phantom bids.

The seed API's names, re-exported. The root is lazy (PEP 562): ``import phantom_auction``
loads no numpy, scipy or simulator; each name loads its subpackage on first use. Type
checkers see the imports in the ``typing.TYPE_CHECKING`` block. ``__all__``,
``_EXPORTS`` and that block list the same names (``tests/test_exported_members.py``).
"""

from __future__ import annotations

import importlib
import typing

from ._version import __version__ as __version__

#: Subpackage -> the public names it provides.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "config": (
        "AuctionConfig",
        "load_config",
    ),
    "errors": (
        "AuctionTimeout",
        "ConfigError",
        "InsufficientParticipants",
        "InvalidBidParameters",
        "PhantomAuctionError",
    ),
    "mechanisms": (
        "MECHANISMS",
        "BatchClearing",
        "Clearing",
        "VCGAllocation",
        "VCGAuction",
        "VCGBid",
        "VCGResult",
        "canonical_mechanism",
        "clear",
        "clear_batch",
        "individual_rationality_check",
        "run_vcg_auction",
        "verify_truthfulness",
    ),
    "engine": (
        "Auction",
        "AuctionAnnouncement",
        "AuctionPhaseError",
        "AuctionResult",
        "BidSource",
        "Fill",
        "ImprovementBid",
        "NonceRegistry",
        "Outcome",
        "Phase",
        "RankedBid",
        "RejectReason",
        "SealedBid",
        "SettlementRequest",
        "abort_auction",
        "arun_auction",
        "finalize_auction",
        "make_bid",
        "make_commitment",
        "reveal_bid",
        "run_auction",
        "submit_bid",
        "verify_phantoms",
    ),
    "simulation": (
        "STRATEGIES",
        "AdaptiveStrategy",
        "AggressiveStrategy",
        "AuctionView",
        "Bid",
        "BidderStrategy",
        "ChunkTask",
        "CompetitiveEquilibriumStrategy",
        "ConservativeStrategy",
        "MarketConditions",
        "MonteCarloResults",
        "PhantomSimulator",
        "RandomWalkStrategy",
        "SimulatedBid",
        "SimulationConfig",
        "SimulationMetrics",
        "SimulationResult",
        "StrategyBidder",
        "StreamingSummary",
        "TruthfulStrategy",
        "analyze_results",
        "backtest_strategy",
        "calibrate_parameters",
        "create_strategy",
        "generate_bid",
        "plan_chunks",
        "run_monte_carlo",
        "run_simulation",
        "simulate_chunk",
        "sweep",
    ),
    "verification": (
        "Check",
        "CompetitionCheck",
        "verify_competition",
    ),
}
_SOURCE = {name: module for module, names in _EXPORTS.items() for name in names}

if typing.TYPE_CHECKING:
    from .config import (
        AuctionConfig,
        load_config,
    )
    from .engine import (
        Auction,
        AuctionAnnouncement,
        AuctionPhaseError,
        AuctionResult,
        BidSource,
        Fill,
        ImprovementBid,
        NonceRegistry,
        Outcome,
        Phase,
        RankedBid,
        RejectReason,
        SealedBid,
        SettlementRequest,
        abort_auction,
        arun_auction,
        finalize_auction,
        make_bid,
        make_commitment,
        reveal_bid,
        run_auction,
        submit_bid,
        verify_phantoms,
    )
    from .errors import (
        AuctionTimeout,
        ConfigError,
        InsufficientParticipants,
        InvalidBidParameters,
        PhantomAuctionError,
    )
    from .mechanisms import (
        MECHANISMS,
        BatchClearing,
        Clearing,
        VCGAllocation,
        VCGAuction,
        VCGBid,
        VCGResult,
        canonical_mechanism,
        clear,
        clear_batch,
        individual_rationality_check,
        run_vcg_auction,
        verify_truthfulness,
    )
    from .simulation import (
        STRATEGIES,
        AdaptiveStrategy,
        AggressiveStrategy,
        AuctionView,
        Bid,
        BidderStrategy,
        ChunkTask,
        CompetitiveEquilibriumStrategy,
        ConservativeStrategy,
        MarketConditions,
        MonteCarloResults,
        PhantomSimulator,
        RandomWalkStrategy,
        SimulatedBid,
        SimulationConfig,
        SimulationMetrics,
        SimulationResult,
        StrategyBidder,
        StreamingSummary,
        TruthfulStrategy,
        analyze_results,
        backtest_strategy,
        calibrate_parameters,
        create_strategy,
        generate_bid,
        plan_chunks,
        run_monte_carlo,
        run_simulation,
        simulate_chunk,
        sweep,
    )
    from .verification import (
        Check,
        CompetitionCheck,
        verify_competition,
    )

__all__ = [
    "AuctionConfig",
    "load_config",
    "AuctionTimeout",
    "ConfigError",
    "InsufficientParticipants",
    "InvalidBidParameters",
    "PhantomAuctionError",
    # -- mechanisms --
    "MECHANISMS",
    "BatchClearing",
    "Clearing",
    "VCGAllocation",
    "VCGAuction",
    "VCGBid",
    "VCGResult",
    "canonical_mechanism",
    "clear",
    "clear_batch",
    "individual_rationality_check",
    "run_vcg_auction",
    "verify_truthfulness",
    # -- engine --
    "Auction",
    "AuctionAnnouncement",
    "AuctionPhaseError",
    "AuctionResult",
    "BidSource",
    "Fill",
    "ImprovementBid",
    "NonceRegistry",
    "Outcome",
    "Phase",
    "RankedBid",
    "RejectReason",
    "SealedBid",
    "SettlementRequest",
    "abort_auction",
    "arun_auction",
    "finalize_auction",
    "make_bid",
    "make_commitment",
    "reveal_bid",
    "run_auction",
    "submit_bid",
    "verify_phantoms",
    # -- simulation --
    "STRATEGIES",
    "AdaptiveStrategy",
    "AggressiveStrategy",
    "AuctionView",
    "Bid",
    "BidderStrategy",
    "ChunkTask",
    "CompetitiveEquilibriumStrategy",
    "ConservativeStrategy",
    "MarketConditions",
    "MonteCarloResults",
    "PhantomSimulator",
    "RandomWalkStrategy",
    "SimulatedBid",
    "SimulationConfig",
    "SimulationMetrics",
    "SimulationResult",
    "StrategyBidder",
    "StreamingSummary",
    "TruthfulStrategy",
    "analyze_results",
    "backtest_strategy",
    "calibrate_parameters",
    "create_strategy",
    "generate_bid",
    "plan_chunks",
    "run_monte_carlo",
    "run_simulation",
    "simulate_chunk",
    "sweep",
    # -- verification --
    "Check",
    "CompetitionCheck",
    "verify_competition",
]


def __getattr__(name: str) -> object:
    """Load a public name's subpackage on first use, and keep the name (PEP 562)."""
    module = _SOURCE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
