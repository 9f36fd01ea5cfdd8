"""The public API: everything in ``__all__`` exists, and every public name is in ``__all__``."""

from __future__ import annotations
import __future__

import types

import phantom_auction

SEED_NAMES = {
    # VCGMechanism
    "VCGAuction",
    "VCGBid",
    "VCGAllocation",
    "VCGResult",
    "run_vcg_auction",
    "verify_truthfulness",
    "individual_rationality_check",
    # PhantomAuction
    "ImprovementBid",
    "AuctionResult",
    "run_auction",
    "submit_bid",
    "reveal_bid",
    # PhantomAuctionSimulator
    "SimulationConfig",
    "MarketConditions",
    "SimulationResult",
    "PhantomSimulator",
    "run_simulation",
    "run_monte_carlo",
    "analyze_results",
    "AggressiveStrategy",
    "ConservativeStrategy",
    "AdaptiveStrategy",
    "RandomWalkStrategy",
    "CompetitiveEquilibriumStrategy",
    "BidderStrategy",
    "generate_bid",
    # Configuration and errors
    "load_config",
    "InsufficientParticipants",
    "InvalidBidParameters",
    "AuctionTimeout",
}


def test_all_names_exist() -> None:
    missing = [name for name in phantom_auction.__all__ if not hasattr(phantom_auction, name)]
    assert missing == []


def test_all_is_unique_and_complete() -> None:
    assert len(set(phantom_auction.__all__)) == len(phantom_auction.__all__)
    public = {
        name
        for name, value in vars(phantom_auction).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType | __future__._Feature)
    }
    assert public - set(phantom_auction.__all__) == set()


def test_seed_names_are_exported() -> None:
    assert SEED_NAMES - set(phantom_auction.__all__) == set()
