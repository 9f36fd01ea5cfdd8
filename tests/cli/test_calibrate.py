"""``phantom-auction calibrate``: the TOML table, the report and the comparison."""

from __future__ import annotations

import functools
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from phantom_auction.cli import app
from phantom_auction.simulation import calibration

#: A search of a few candidates (7 runs of 100-200 auctions).
TINY = ["-n", "200", "--search-simulations", "100", "--policy", "reserve", "--means", "20"]
TINY += ["--sds", "5", "--presence", "1x1"]


def test_calibrate_writes_the_table_and_the_report(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "cal"
    args = ["calibrate", "-n", "500", "--search-simulations", "200", "--policy", "reserve"]
    args += ["--means", "20,40", "--sds", "5"]
    result = runner.invoke(
        app, [*args, "--presence", "1x1", "--out", str(out)], env={"COLUMNS": "160"}
    )
    assert result.exit_code == 0, result.output
    assert "no phantoms" in result.stdout and "Myerson reserve" in result.stdout
    table = tomllib.loads((out / "calibration.toml").read_text())["phantom_auction"]
    assert table["max_phantom_bidders"] in (0, 1)
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    rows = json.loads((out / "comparison.json").read_text())
    assert rows[0]["label"] == "no phantoms"
    assert all(r["ci95_low"] <= r["improvement_bps"] <= r["ci95_high"] for r in rows)
    assert all(r["auctions"] == 500 for r in rows)  # the search ran 200 a candidate
    assert "200 auctions a candidate" in page and "paired 95% CI" in page
    assert all(
        r["vs_reference_ci95_low"] <= r["vs_reference_bps"] <= r["vs_reference_ci95_high"]
        for r in rows
    )


def test_calibrate_names_a_bad_option(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["calibrate", "--presence", "lots", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--presence" in result.stderr
    result = runner.invoke(app, ["calibrate", "--sds", "a,b", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--sds" in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        # Each error blames the option that carries the field (all blamed --policy).
        (["--means", "10,nan"], "'--means': '10,nan': nan is not a finite number"),
        (["--means", "10,inf"], "'--means': '10,inf'"),
        # Past the phantoms' bounds every phantom sat at the bound (the CLI audit).
        (
            ["--means", "20,60"],
            "'--means': '20,60': means=60.0: must lie within the phantoms' bounds [10, 50] bps",
        ),
        (["--means", "5"], "'--means': '5': means=5.0"),
        (["--sds", "0"], "'--sds': '0': sds=(0.0,): must all be > 0 bps"),
        (["--presence", "100000x0.5"], "'--presence': '100000x0.5'"),
        # An empty list crashed in max().
        (["--policy", ""], "'--policy': '': policy=(): give at least one of reserve, floor"),
        (["--policy", " , "], "'--policy': ' , '"),
        (["--policy", "reserve,reserve"], "lists a policy twice"),
        (["--policy", "sometimes"], "'--policy': 'sometimes'"),
        (["--mechanism", "dutch"], "'--mechanism': 'dutch'"),
    ],
)
def test_a_bad_value_names_its_own_option_before_running(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    needle: str,
) -> None:
    def must_not_run(*_: Any, **__: Any) -> Any:
        raise AssertionError("a bad value must be refused before any candidate runs")

    monkeypatch.setattr(calibration, "_evaluate", must_not_run)
    result = runner.invoke(app, ["calibrate", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert needle in line


def test_ctrl_c_keeps_the_candidates_evaluated_so_far(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = calibration._evaluate
    calls = {"n": 0}

    @functools.wraps(real)
    def third_is_interrupted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(calibration, "_evaluate", third_is_interrupted)
    out = tmp_path / "cal"
    result = runner.invoke(app, ["calibrate", *TINY, "--out", str(out)])
    assert result.exit_code == 130
    line = result.stderr.strip().splitlines()[-1]
    assert "Interrupted after 2 of 9 candidate runs" in line
    assert f"kept them in {out / 'candidates.json'} (marked partial)" in line
    kept = json.loads((out / "candidates.json").read_text())
    assert kept["partial"] is True and kept["evaluated"] == 2 and kept["planned"] == 9
    assert kept["parameters"]["seed"] == 1
    first, second = kept["candidates"]
    assert first["label"] == "no phantoms" and first["auctions"] == 100 and first["seed"] == 1
    assert second["label"] == "1 x 1 @ N(20, 5)"
    assert first["ci95_low"] <= first["improvement_bps"] <= first["ci95_high"]
    assert not (out / "calibration.toml").exists() and not (out / "report.html").exists()


def test_json_prints_the_comparison_and_the_winner(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "cal"
    result = runner.invoke(app, ["calibrate", *TINY, "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)  # only JSON on stdout
    assert printed["comparison"] == json.loads((out / "comparison.json").read_text())
    assert printed["recommended"]["toml"] == (out / "calibration.toml").read_text()
    assert printed["parameters"]["seed"] == 1
    kept = json.loads((out / "candidates.json").read_text())
    assert kept["partial"] is False and kept["evaluated"] == kept["planned"] == 7


def test_the_recommended_tables_simulate_line_runs_the_same_phantoms(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit: calibrate recommended one phantom slot, but the simulator keeps its own
    num_phantom_bidders (15), so those keys in simulate ran 15 phantoms bidding always.
    The table now says, in a comment, the simulate command that runs its phantoms."""
    import shlex

    from phantom_auction.engine.phantoms import PhantomModel

    model = PhantomModel(max_phantom_bidders=1, bid_probability=1.0, mean_bps=32.5, sd_bps=2.0)
    text = calibration.phantom_toml(model, "floor")
    assert tomllib.loads(text)["phantom_auction"]["max_phantom_bidders"] == 1
    line = text.strip().splitlines()[-1].removeprefix("# ")
    words = shlex.split(line)
    start = words.index("phantom-auction")
    assignments, (command, *args) = words[:start], words[start + 1 :]
    assert command == "simulate"
    for assignment in assignments:
        monkeypatch.setenv(*assignment.split("=", 1))
    result = runner.invoke(app, [command, *args, "-n", "500", "--seed", "2", "--json"])
    assert result.exit_code == 0, result.output
    bids = json.loads(result.stdout)["num_phantom_bids"]
    assert bids["min"] == bids["max"] == 1.0  # one slot, always bidding


def test_policy_both_is_reserve_and_floor(runner: CliRunner, tmp_path: Path) -> None:
    """The CLI audit: the help offered "both", and the command refused it."""
    args = [a for a in TINY if a not in ("--policy", "reserve")]
    result = runner.invoke(
        app, ["calibrate", *args, "--policy", "both", "--out", str(tmp_path / "c"), "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "c" / "comparison.json").read_text())
    assert {"reserve", "floor"} <= {r.get("policy") for r in rows}
