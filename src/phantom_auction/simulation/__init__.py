"""The Monte Carlo simulator: market model, strategies, object and fast paths, analysis.

Entry points (the seed's names): :class:`SimulationConfig`, :class:`MarketConditions`,
:class:`PhantomSimulator`, :func:`run_simulation`, :func:`run_monte_carlo`,
:func:`analyze_results`, :func:`calibrate_parameters`, :func:`backtest_strategy`, and
the strategies. For distributed runs: :func:`plan_chunks`, :func:`simulate_chunk`,
:func:`summarize_chunk` and :meth:`MonteCarloResults.from_chunks`.
"""

from __future__ import annotations

from .analysis import analyze_results, backtest_strategy, calibrate_parameters
from .calibration import optimal_reserve, optimize_phantoms
from .deviations import utility_loss
from .equilibrium import BiddingGame, solve_equilibrium
from .kernels import ChunkColumns
from .live import StrategyBidder
from .market import MarketConditions
from .parallel import (
    ChunkTask,
    SimulationSpec,
    plan_chunks,
    run_monte_carlo,
    simulate_chunk,
    simulate_chunk_objects,
    summarize_chunk,
)
from .results import (
    MonteCarloResults,
    RowsNotKept,
    SimulatedBid,
    SimulationMetrics,
    SimulationResult,
)
from .settings import SimulationConfig
from .simulator import PhantomSimulator, run_simulation
from .strategies import (
    STRATEGIES,
    AdaptiveStrategy,
    AggressiveStrategy,
    AuctionFeedback,
    AuctionView,
    Bid,
    BidBatch,
    BidderStrategy,
    CompetitiveEquilibriumStrategy,
    ConservativeStrategy,
    FeedbackBatch,
    LabelledStrategy,
    RandomWalkStrategy,
    TruthfulStrategy,
    create_strategy,
    filter_strategies,
    generate_bid,
    strategy_names,
)
from .streaming import QuantileSketch, StreamingSummary
from .sweeps import sweep

__all__ = [
    "STRATEGIES",
    "AdaptiveStrategy",
    "AggressiveStrategy",
    "AuctionFeedback",
    "AuctionView",
    "Bid",
    "BidBatch",
    "BidderStrategy",
    "BiddingGame",
    "ChunkColumns",
    "ChunkTask",
    "CompetitiveEquilibriumStrategy",
    "ConservativeStrategy",
    "FeedbackBatch",
    "LabelledStrategy",
    "MarketConditions",
    "MonteCarloResults",
    "PhantomSimulator",
    "QuantileSketch",
    "RandomWalkStrategy",
    "RowsNotKept",
    "SimulatedBid",
    "SimulationConfig",
    "SimulationMetrics",
    "SimulationResult",
    "SimulationSpec",
    "StrategyBidder",
    "StreamingSummary",
    "TruthfulStrategy",
    "analyze_results",
    "backtest_strategy",
    "calibrate_parameters",
    "create_strategy",
    "filter_strategies",
    "generate_bid",
    "optimal_reserve",
    "optimize_phantoms",
    "plan_chunks",
    "run_monte_carlo",
    "run_simulation",
    "simulate_chunk",
    "simulate_chunk_objects",
    "solve_equilibrium",
    "strategy_names",
    "summarize_chunk",
    "sweep",
    "utility_loss",
]
