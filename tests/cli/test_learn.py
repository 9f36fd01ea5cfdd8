"""``phantom-auction learn``: the Banchio & Skrzypacz experiment, small."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from phantom_auction.cli import app
from phantom_auction.simulation import learning

SMALL = ["-n", "200", "--seeds", "2", "--windows", "2"]


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
    written = json.loads((out / "learning.json").read_text())
    assert written["parameters"] == {
        "auctions": 1000, "seeds": 2, "windows": 4, "steps": written["parameters"]["steps"],
        "alpha": written["parameters"]["alpha"], "gamma": 0.95, "beta": 1e-4,
    }  # fmt: skip
    record = written["arms"]
    assert len(record) == 4
    assert all(len(arm["played_by_seed"]) == 2 for arm in record)
    assert all(0.0 < arm["bid_over_value"] <= 1.0 for arm in record)


def test_learn_refuses_more_windows_than_auctions(runner: CliRunner) -> None:
    result = runner.invoke(app, ["learn", "-n", "100", "--windows", "200"])
    assert result.exit_code == 2
    assert "--windows" in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        # Named the learners' internal field epsilon_decay.
        (["--beta", "1e308"], "'--beta': 1e+308: must be below 745"),
        (["--alpha", "0"], "'--alpha': 0.0: must be > 0"),
        (["--alpha", "nan"], "'--alpha'"),
    ],
)
def test_a_bad_value_names_the_option(runner: CliRunner, args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["learn", "-n", "100", *args])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert needle in line and "epsilon_decay" not in line and "learning_rate" not in line


def test_ctrl_c_keeps_the_finished_runs(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted in the third of eight (arm, seed) runs: the first arm is kept whole."""
    real = learning.banchio_skrzypacz
    calls = {"n": 0}

    def third_is_interrupted(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(**kwargs)

    monkeypatch.setattr(learning, "banchio_skrzypacz", third_is_interrupted)
    out = tmp_path / "learn"
    result = runner.invoke(app, ["learn", *SMALL, "--out", str(out)], env={"COLUMNS": "160"})
    assert result.exit_code == 130
    line = result.stderr.strip().splitlines()[-1]
    assert "Interrupted after 2 of 8 learning runs" in line
    assert str(out / "learning.json") in line and "figure was not drawn" in line
    (arm,) = json.loads((out / "learning.json").read_text())["arms"]
    assert arm["arm"] == "first price, no phantoms" and arm["complete"] is True
    assert arm["seeds"] == [1, 2] and len(arm["played_by_seed"]) == 2
    assert "first price, no phantoms" in result.stdout  # its row of the table
    assert not (out / "learning.png").exists()


def test_json_prints_every_arm(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "learn"
    result = runner.invoke(app, ["learn", *SMALL, "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)  # only JSON on stdout
    assert printed["parameters"]["seeds"] == 2 and printed["parameters"]["beta"] == 1e-4
    assert printed == json.loads((out / "learning.json").read_text())
    assert [a["complete"] for a in printed["arms"]] == [True] * 4
    # One (arm, seed) at a time gives what the experiment gives at once.
    runs = learning.banchio_skrzypacz(seeds=(1, 2), auctions=200, windows=2)
    assert [a["played_by_seed"] for a in printed["arms"]] == [r.played.tolist() for r in runs]
