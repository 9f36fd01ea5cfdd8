"""``optimize_phantoms`` and ``optimal_reserve``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from phantom_auction.errors import InvalidBidParameters
from phantom_auction.simulation import MarketConditions, SimulationConfig
from phantom_auction.simulation.calibration import (
    optimal_reserve,
    optimize_phantoms,
    phantom_toml,
)


@pytest.mark.parametrize(
    ("dist", "expected"),
    [
        (stats.uniform(0.0, 100.0), 50.0),  # ψ(v) = 2v - 100
        (stats.expon(scale=20.0), 20.0),  # ψ(v) = v - 20
        (stats.uniform(40.0, 20.0), 40.0),  # ψ(40) = 40 - 20 > 0: every value clears
    ],
)
def test_optimal_reserve_is_the_root_of_the_virtual_value(dist: object, expected: float) -> None:
    assert optimal_reserve(dist) == pytest.approx(expected, abs=1e-4)


def _config() -> SimulationConfig:
    return SimulationConfig(
        num_real_bidders=2,
        num_phantom_bidders=4,
        value_distribution=("uniform", 10.0, 50.0),
        mechanism="second_price",
        num_simulations=4_000,
        seed=7,
    )


def test_optimize_phantoms_compares_the_winner_with_the_references() -> None:
    cal = optimize_phantoms(
        _config(),
        MarketConditions(),
        policy="reserve",
        means=(15.0, 30.0),
        sds=(5.0,),
        presence=((1, 1.0),),
        search_simulations=1_000,
        finalists=2,
    )
    labels = [row["label"] for row in cal.table()]
    assert labels[0] == "no phantoms"
    assert any(label.startswith("today's phantoms") for label in labels)
    assert any(label.startswith("Myerson reserve") for label in labels)
    assert labels[-1].startswith("calibrated (reserve)")
    assert cal.myerson_reserve_bps == pytest.approx(25.0, abs=1e-4)  # U[10, 50]: 2v - 50
    # The grid (2 points), the midpoint to the best one's neighbour, then the 2 best of
    # those re-run on 4,000 auctions: the winner is the best of these finalists.
    search = [c for c in cal.candidates if c.auctions == 1_000]
    finals = [c for c in cal.candidates if c.auctions == 4_000]
    assert sorted(c.model.mean_bps for c in search if c.model) == [15.0, 22.5, 30.0]
    top = sorted(search, key=lambda c: c.mean_bps, reverse=True)[:2]
    assert [c.label for c in finals] == [c.label for c in top]
    assert cal.best == cal.winners["reserve"] == max(finals, key=lambda c: c.mean_bps)
    values, errors = cal.surfaces["reserve"]
    assert values.shape == (2, 1) and (errors > 0).all()
    # Same auctions: each cell's paired gain is its mean minus no phantoms' mean there.
    gains, gain_errors = cal.gains["reserve"]
    np.testing.assert_allclose(gains, values - cal.surface_reference_bps, atol=1e-9)
    assert (gain_errors > 0).all()
    rows = cal.table()
    for row in rows:
        assert row["ci95_low"] < row["improvement_bps"] < row["ci95_high"]
        assert row["vs_reference_ci95_low"] <= row["vs_reference_bps"]
        assert row["vs_reference_bps"] <= row["vs_reference_ci95_high"]
        assert row["vs_reference_bps"] == pytest.approx(
            row["improvement_bps"] - rows[0]["improvement_bps"], abs=1e-9
        )
    assert rows[0]["vs_reference_bps"] == 0.0 == rows[0]["vs_reference_ci95_high"]
    # Two truthful bidders U[10, 50] and no phantoms: E[second value] = 10 + 40/3.
    assert abs(cal.comparison[0].mean_bps - (10 + 40 / 3)) < 4 * cal.comparison[0].se_bps
    assert cal.recommended.reserve_bps is None


def test_paired_differences_need_the_same_auctions() -> None:
    cal = optimize_phantoms(
        _config(),
        policy="reserve",
        means=(20.0,),
        sds=(5.0,),
        presence=((1, 1.0),),
        search_simulations=500,
    )
    grid_point = next(c for c in cal.candidates if c.auctions != cal.comparison[0].auctions)
    with pytest.raises(InvalidBidParameters, match="different auctions"):
        grid_point.paired_difference(cal.comparison[0])


def test_phantom_toml_loads_as_config() -> None:
    import tomllib

    from phantom_auction.engine.phantoms import PhantomModel

    table = tomllib.loads(phantom_toml(PhantomModel(max_phantom_bidders=3), "reserve"))
    assert table["phantom_auction"]["max_phantom_bidders"] == 3
    assert tomllib.loads(phantom_toml(None, "reserve"))["phantom_auction"] == {
        "max_phantom_bidders": 0
    }


def test_optimize_phantoms_checks_its_arguments() -> None:
    with pytest.raises(InvalidBidParameters, match="objective"):
        optimize_phantoms(_config(), objective="revenue")
    with pytest.raises(InvalidBidParameters, match="policy"):
        optimize_phantoms(_config(), policy="sometimes")
    with pytest.raises(InvalidBidParameters, match="sds"):
        optimize_phantoms(_config(), sds=(0.0,))
    with pytest.raises(InvalidBidParameters, match=r"means=50.5: must lie within .* \[10, 50\]"):
        optimize_phantoms(_config(), means=(10.0, 50.5))
    with pytest.raises(InvalidBidParameters, match="finalists"):
        optimize_phantoms(_config(), finalists=0)
    with pytest.raises(InvalidBidParameters, match="search_simulations"):
        optimize_phantoms(_config(), search_simulations=1)
