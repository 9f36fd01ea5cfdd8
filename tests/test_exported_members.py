"""The public API: everything in ``__all__`` exists, and every public name is in ``__all__``."""

from __future__ import annotations
import __future__

import types

import pytest

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


def test_lazy_root_lists_each_name_once_everywhere() -> None:
    """``__all__``, the lazy table and the type checkers' imports name the same things."""
    import ast
    import importlib
    from pathlib import Path

    tree = ast.parse(Path(phantom_auction.__file__).read_text("utf-8"))
    checked: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                checked += [alias.name for alias in stmt.names]
    sources = phantom_auction._SOURCE
    assert sorted(checked) == sorted(phantom_auction.__all__) == sorted(sources)
    for name, module in sources.items():
        home = importlib.import_module(f"phantom_auction.{module}")
        assert getattr(phantom_auction, name) is getattr(home, name), name
    assert "numpy" not in dir(phantom_auction)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = phantom_auction.nope  # type: ignore[attr-defined]


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    from phantom_auction._version import __version__

    assert phantom_auction.__version__ == __version__ == version("phantom-auction")
