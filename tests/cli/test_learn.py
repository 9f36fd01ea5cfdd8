"""``phantom-auction learn``: the Banchio & Skrzypacz experiment, small."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from phantom_auction.cli import app


def test_learn_prints_a_table_and_writes_the_figure(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "learn"
    result = runner.invoke(
        app,
        ["learn", "-n", "1000", "--seeds", "2", "--windows", "4", "--out", str(out)],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 0, result.output
    for arm in ("first price, no phantoms", "second price, with phantoms"):
        assert arm in result.stdout
    assert (out / "learning.png").stat().st_size > 10_000
    record = json.loads((out / "learning.json").read_text())
    assert len(record) == 4
    assert all(len(arm["played_by_seed"]) == 2 for arm in record)
    assert all(0.0 < arm["bid_over_value"] <= 1.0 for arm in record)


def test_learn_refuses_more_windows_than_auctions(runner: CliRunner) -> None:
    result = runner.invoke(app, ["learn", "-n", "100", "--windows", "200"])
    assert result.exit_code == 2
    assert "--windows" in result.stderr
