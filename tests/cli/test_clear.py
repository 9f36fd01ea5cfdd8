"""``phantom-auction clear``: a file of bids in, allocations and payments out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phantom_auction.cli import app

CSV = """bidder_id,valuation,quantity,is_phantom
alice,55,100,false
bob,52,200,
carol,60,150,false
ph1,58,120,true
dave,49,80,no
"""


@pytest.fixture
def bids_csv(tmp_path: Path) -> Path:
    path = tmp_path / "bids.csv"
    path.write_text(CSV)
    return path


def test_vcg_json_payments(runner: CliRunner, bids_csv: Path) -> None:
    result = runner.invoke(
        app, ["clear", str(bids_csv), "--supply", "300", "--reserve", "50", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    rows = {r["bidder_id"]: r for r in out["allocations"]}
    # carol 150 + ph1 120 + alice 30 = 300; alice displaces 30 of bob's units at 52.
    assert rows["carol"]["quantity"] == pytest.approx(150)
    assert rows["ph1"]["quantity"] == pytest.approx(120)
    assert rows["alice"]["quantity"] == pytest.approx(30)
    assert rows["alice"]["payment"] == pytest.approx(30 * 52)
    assert rows["bob"]["quantity"] == 0 and rows["dave"]["quantity"] == 0
    assert rows["ph1"]["is_phantom"] is True and rows["bob"]["is_phantom"] is False
    for row in out["allocations"]:
        # Utility is value x quantity - payment, never negative under VCG.
        assert row["utility"] == pytest.approx(row["valuation"] * row["quantity"] - row["payment"])
        assert row["utility"] >= 0
    assert out["total_revenue"] == pytest.approx(sum(r["payment"] for r in rows.values()))
    assert out["social_welfare"] == pytest.approx(60 * 150 + 58 * 120 + 55 * 30)
    assert out["phantom_participation_rate"] == pytest.approx(0.2)
    assert out["units_sold"] == pytest.approx(300)


def test_table_output_lists_every_bidder(runner: CliRunner, bids_csv: Path) -> None:
    result = runner.invoke(app, ["clear", str(bids_csv), "--supply", "300", "--reserve", "50"])
    assert result.exit_code == 0, result.output
    for name in ("alice", "bob", "carol", "ph1", "dave"):
        assert name in result.stdout
    assert "social welfare" in result.stdout and "17,610" in result.stdout
    assert "total revenue" in result.stdout and "16,020" in result.stdout


def test_uniform_price_is_the_highest_rejected_unit(runner: CliRunner, bids_csv: Path) -> None:
    args = ["clear", str(bids_csv), "--supply", "300", "--reserve", "50"]
    result = runner.invoke(app, [*args, "--mechanism", "uniform", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["mechanism"] == "uniform"
    prices = [r["price_per_unit"] for r in out["allocations"] if r["quantity"] > 0]
    # alice (55) gets 30 of her 100: her 70 unfilled units are the highest rejected
    # (textbook uniform price; the seed priced at bob's 52, the best bid that got nothing).
    assert prices == pytest.approx([55.0, 55.0, 55.0])


def test_unit_demand_second_price(runner: CliRunner, bids_csv: Path) -> None:
    result = runner.invoke(
        app,
        ["clear", str(bids_csv), "--supply", "2", "--unit-demand", "--mechanism", "second-price"],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["clear", str(bids_csv), "--supply", "2", "--unit-demand", "--json"]
    )
    out = json.loads(result.stdout)
    winners = {r["bidder_id"]: r for r in out["allocations"] if r["quantity"] > 0}
    assert set(winners) == {"carol", "ph1"}
    # Two units, each winner pays the third-best value.
    assert all(r["payment"] == pytest.approx(55.0) for r in winners.values())


def test_json_bids_file(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bids.json"
    path.write_text(
        json.dumps(
            {
                "bids": [
                    {"bidder_id": "a", "valuation": 10, "quantity": 1},
                    {"bidder_id": "b", "valuation": 8, "quantity": 1, "is_phantom": True},
                ]
            }
        )
    )
    result = runner.invoke(app, ["clear", str(path), "--supply", "1", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["allocations"][0]["payment"] == pytest.approx(8.0)
    assert out["phantom_participation_rate"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("content", "suffix", "needle"),
    [
        ("bidder_id,valuation,quantity\na,abc,1\n", ".csv", "line 2: valuation='abc'"),
        ("bidder_id,valuation,quantity\na,-3,1\n", ".csv", "valuation='-3'"),
        ("bidder_id,valuation,quantity\na,nan,1\n", ".csv", "valuation='nan'"),
        ("bidder,value\na,1\n", ".csv", "lacks"),
        ("bidder_id,valuation,quantity\n", ".csv", "contains no bids"),
        ("bidder_id,valuation,quantity\na,1,1\na,2,1\n", ".csv", "'a' appears twice"),
        ("bidder_id,valuation,quantity,is_phantom\na,1,1,maybe\n", ".csv", "is_phantom='maybe'"),
        ("{not json", ".json", "invalid JSON"),
        ('{"bids": 3}', ".json", "expected a list"),
        ('[{"bidder_id": "a", "quantity": 1}]', ".json", "missing valuation"),
        # A typo or an extra value is refused, not dropped (every bid had become real).
        ("bidder_id,valuation,quantity,is_phantm\na,1,1,true\n", ".csv", "'is_phantm'"),
        ("bidder_id,valuation,quantity\na,55,100,junk\n", ".csv", "line 2: 1 value(s) past"),
        (
            '[{"bidder_id": "a", "valuation": 1, "quantity": 1, "phantom": true}]',
            ".json",
            "bid 0: unknown key 'phantom'",
        ),
    ],
)
def test_bad_bids_file_exits_2_naming_the_value(
    runner: CliRunner, tmp_path: Path, content: str, suffix: str, needle: str
) -> None:
    path = tmp_path / f"bids{suffix}"
    path.write_text(content)
    result = runner.invoke(app, ["clear", str(path), "--supply", "1"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "'BIDS'" in lines[0] and needle in lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--supply", "abc"], "'--supply': 'abc'"),
        (["--supply", "-1"], "'--supply': '-1'"),
        (["--supply", "1", "--reserve", "x"], "'--reserve': 'x'"),
        (["--supply", "1", "--mechanism", "dutch"], "'--mechanism': 'dutch'"),
        (["--supply", "inf"], "'--supply'"),
        ([], "--supply"),
    ],
)
def test_bad_options_exit_2_on_one_line(
    runner: CliRunner, bids_csv: Path, args: list[str], needle: str
) -> None:
    result = runner.invoke(app, ["clear", str(bids_csv), *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_missing_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["clear", str(tmp_path / "nope.csv"), "--supply", "1"])
    assert result.exit_code == 2
    assert "nope.csv" in result.stderr and len(result.stderr.strip().splitlines()) == 1
