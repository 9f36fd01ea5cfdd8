"""``phantom-auction simulate``: flags and config files reach the simulator; outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from phantom_auction.cli import app
from phantom_auction.simulation import parallel

SMALL = ["--simulations", "400", "--seed", "11", "--workers", "1"]


def run_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["simulate", *SMALL, *args, "--json"])
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_json_summary_has_every_metric(runner: CliRunner) -> None:
    out = run_json(runner)
    assert out["num_auctions"] == 400
    assert out["parameters"]["simulation.seed"] == 11
    for metric in ("improvement_bps", "mev_capture_rate", "real_fill_fraction", "clearing_price"):
        stats = out[metric]
        assert stats["min"] <= stats["p05"] <= stats["median"] <= stats["p95"] <= stats["max"]
    assert sum(out["strategy_performance"].values()) == pytest.approx(1.0)


def test_the_strategy_table_gives_each_share_its_interval(runner: CliRunner) -> None:
    from phantom_auction.simulation.intervals import proportion_ci

    out = run_json(runner)
    share = out["strategy_performance"]["aggressive"]
    low, high = proportion_ci(share, 400)
    assert out["strategy_performance_ci95"]["aggressive"] == {"ci95_low": low, "ci95_high": high}
    shown = runner.invoke(app, ["simulate", *SMALL], env={"COLUMNS": "100"})
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.stdout.splitlines() if line.strip().startswith("aggressive"))
    assert f"{share:.1%}" in row and f"{100 * low:.1f}–{100 * high:.1f}%" in row, row


def test_same_seed_same_numbers(runner: CliRunner) -> None:
    assert run_json(runner) == run_json(runner)


def test_flags_reach_the_simulator(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    out = run_json(runner, "--phantoms", "0", "--real", "2", "--mechanism", "second-price")
    # No phantom slots: no phantom bid, no phantom win, at most two real bids.
    assert out["num_phantom_bids"]["max"] == 0
    assert out["phantom_won"]["mean"] == 0
    assert out["num_real_bids"]["max"] <= 2
    assert out["parameters"]["simulation.clearing_mechanism"] == "vickrey"
    # Phantoms win only under the `reserve` policy (the default `floor` never lets them).
    assert run_json(runner, "--phantoms", "30")["phantom_won"]["mean"] == 0
    monkeypatch.setenv("AUCTION_PHANTOM_AUCTION_PHANTOM_POLICY", "reserve")
    monkeypatch.setenv("AUCTION_PHANTOM_AUCTION_PHANTOM_IMPROVEMENT_MEAN_BPS", "25")
    monkeypatch.setenv("AUCTION_PHANTOM_AUCTION_PHANTOM_IMPROVEMENT_SD_BPS", "10")
    crowded = run_json(runner, "--phantoms", "30")
    assert crowded["phantom_won"]["mean"] > 0.3


def test_config_file_then_flags(runner: CliRunner, tmp_path: Path) -> None:
    file = tmp_path / "scenario.toml"
    file.write_text(
        "[simulation]\nnum_phantom_bidders = 0\nnum_real_bidders = 3\n"
        "[market]\nvolatility = 0.5\n[run]\nbaseline_price = 50.0\n"
    )
    out = run_json(runner, "--config", str(file))
    assert out["parameters"]["market.volatility"] == 0.5
    assert out["num_phantom_bids"]["max"] == 0
    # Prices are in B per A around the file's baseline of 50.
    assert out["clearing_price"]["min"] >= 50.0 and out["clearing_price"]["max"] < 50.5
    # A flag wins over the file.
    out = run_json(runner, "--config", str(file), "--phantoms", "10")
    assert out["parameters"]["simulation.num_phantom_bidders"] == 10
    assert out["num_phantom_bids"]["max"] > 0


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_out_writes_rows_and_summary(runner: CliRunner, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["simulate", *SMALL, "--out", str(out), "--format", fmt])
    assert result.exit_code == 0, result.output
    rows_path, summary_path = out / f"auctions.{fmt}", out / f"summary.{fmt}"
    assert str(rows_path) in result.stdout
    if fmt == "csv":
        rows, summary = pd.read_csv(rows_path), pd.read_csv(summary_path)
    elif fmt == "parquet":
        rows, summary = pd.read_parquet(rows_path), pd.read_parquet(summary_path)
    else:
        rows = pd.read_json(rows_path)
        nested = json.loads(summary_path.read_text())
        assert nested["improvement_bps"]["mean"] == pytest.approx(rows["improvement_bps"].mean())
        return
    assert len(rows) == 400
    assert {"improvement_bps", "phantom_won", "winner_strategy"} <= set(rows.columns)
    mean = summary[(summary.metric == "improvement_bps") & (summary.statistic == "mean")]
    assert float(mean["value"].iloc[0]) == pytest.approx(rows["improvement_bps"].mean())


def test_report(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["simulate", *SMALL, "--out", str(out), "--report"])
    assert result.exit_code == 0, result.output
    page = out / "report" / "index.html"
    assert page.is_file() and "report:" in result.stdout
    html = page.read_text()
    for image in (
        "improvement_bps",
        "mev_capture_rate",
        "clearing_price",
        "convergence",
        "winners",
    ):
        assert (out / "report" / f"{image}.png").is_file()
        assert f'src="{image}.png"' in html


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--mechanism", "dutch"], "'--mechanism': 'dutch'"),
        (["--volatility", "2"], "'--volatility': '2'"),
        (["--liquidity", "abc"], "'--liquidity': 'abc'"),
        (["--simulations", "0"], "'--simulations' / '-n': '0'"),
        (["--phantoms", "-1"], "'--phantoms': '-1'"),
        (["--baseline-price", "0"], "'--baseline-price': 0"),
        (["--format", "xml"], "'--format': 'xml'"),
        (["--strategy", "psychic"], "'--strategy': 'psychic'"),
        (["--workers", "0"], "'--workers': '0'"),
        (["--scheduler", "localhost"], "'--scheduler': 'localhost': expected tcp://HOST:PORT"),
        (["--cluster", "local:0"], "'--cluster': 'local:0'"),
        (["--cluster", "remote"], "'--cluster': 'remote'"),
        (["--cluster", "local:1", "--scheduler", "tcp://h:1"], "not both"),
        (["--cluster", "local:1", "--workers", "2"], "'--workers': 2"),
        # Bounds on one auction's work (were an 18 GB run, or numpy memory tracebacks).
        (["--duration-ms", "100000000"], "'--duration-ms': 100000000: auction_duration_ms"),
        (["--duration-ms", "1000000"], "must be at most 60,000 ms"),
        (["--duration-ms", "40000"], "'--duration-ms': 40000: auction_duration_ms: 5 real"),
        (["--phantoms", "100000000"], "'--phantoms': 100000000: num_phantom_bidders"),
        (["--real", "1700"], "'--real': 1700: num_real_bidders: 1,700 real bidders"),
        (["--spread", "1e300"], "'--spread': 1e+300: spread: must be in [0, 10000) bps"),
    ],
)
def test_bad_values_exit_2_on_one_line(runner: CliRunner, args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["simulate", "-n", "10", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[simulation]\nnum_real_bidders = 'five'\n", "'five': num_real_bidders"),
        ("[simulation]\nbidders = 3\n", "unknown key simulation.bidders"),
        ("[auction]\nx = 1\n", "unknown table [auction]"),
        # The CLI audit: a bare key was called a table, an engine table just unknown.
        ("num_simulations = 100\n", "key 'num_simulations' is outside a table"),
        ("[phantom_auction]\nphantom_policy = 'floor'\n", "AUCTION_PHANTOM_AUCTION_<KEY>"),
        ("[market]\nvolatility = 7.0\n", "volatility: must be in [0, 1]"),
        ("not toml at all", "invalid TOML"),
        # A boolean is not a number (it was taken as 1).
        ("[market]\ntrend = true\n", "True: trend: must be a number in [-1, 1]"),
        ("[market]\nspread = '1'\n", "'1': spread: must be a number"),
        # [run] is checked as the file is read, naming the key.
        ("[run]\nworkers = 'two'\n", "run.workers='two': must be an integer >= 1"),
        ("[run]\nworkers = 0\n", "run.workers=0: must be an integer >= 1"),
        ("[run]\nbaseline_quantity = true\n", "run.baseline_quantity=True: must be a number"),
        ("[run]\nbaseline_price = -1.0\n", "run.baseline_price=-1.0: must be > 0"),
    ],
)
def test_bad_config_file_exits_2(
    runner: CliRunner, tmp_path: Path, content: str, needle: str
) -> None:
    file = tmp_path / "scenario.toml"
    file.write_text(content)
    result = runner.invoke(app, ["simulate", "-n", "10", "--config", str(file)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "'--config'" in line and needle in line
    # The file is named, and nothing (not even the seed) is printed before the error.
    assert str(file) in line
    assert result.stdout == ""


def test_out_must_be_a_directory(runner: CliRunner, tmp_path: Path) -> None:
    file = tmp_path / "taken"
    file.write_text("")
    result = runner.invoke(app, ["simulate", "-n", "10", "--out", str(file)])
    assert result.exit_code == 2 and "'--out'" in result.stderr


def test_ctrl_c_exits_130_and_writes_nothing(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted in the third of five chunks: the count is the auctions finished."""
    real = parallel._run_task
    calls = {"n": 0}

    def third_is_interrupted(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(parallel, "_run_task", third_is_interrupted)
    scenario = tmp_path / "chunks.toml"
    scenario.write_text("[simulation]\nchunk_size = 1000\n")
    out = tmp_path / "run"
    args = ["simulate", "-n", "5000", "--seed", "1", "--workers", "1", "--config", str(scenario)]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 130
    assert "Interrupted after 2,000 of 5,000 auctions" in result.stderr
    assert not list(out.glob("auctions.*"))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_summary_files_keep_text_and_the_runs_parameters(
    runner: CliRunner, tmp_path: Path, fmt: str
) -> None:
    """ci_method and strategy_details were NaN in summary.csv/.parquet; the seed nowhere."""
    out = tmp_path / "run"
    result = runner.invoke(app, ["simulate", *SMALL, "--out", str(out), "--format", fmt])
    assert result.exit_code == 0, result.output
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    summary = read(out / f"summary.{fmt}")
    assert list(summary.columns) == ["metric", "statistic", "value", "text"]

    def row(metric: str, statistic: str) -> Any:
        found = summary[(summary.metric == metric) & (summary.statistic == statistic)]
        assert len(found) == 1, (metric, statistic)
        return found.iloc[0]

    assert "Student t" in row("ci_method", "value")["text"]
    shading = row("strategy_details", "aggressive.bid_shading")["value"]
    assert 0.0 < shading < 1.0
    assert row("parameters", "simulation.seed")["value"] == 11
    assert row("parameters", "simulation.clearing_mechanism")["text"] == "vcg"
    assert row("num_auctions", "value")["value"] == 400
    # Every row has a number or a text.
    assert (summary["value"].notna() | summary["text"].notna()).all()


def test_out_records_a_drawn_seed_and_reruns_from_it(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["simulate", "-n", "300", "--workers", "1", "--volatility", "0.6", "--phantoms", "7"]
    result = runner.invoke(app, [*args, "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "auctions.json",
        "run.json",
        "scenario.toml",
        "summary.json",
    ]
    record = json.loads((out / "run.json").read_text())
    seed = int(result.stdout.split()[1])  # "seed N (drawn; ...)"
    assert record["seed"] == seed and record["seed_drawn"] is True
    assert record["config"]["simulation"]["num_phantom_bidders"] == 7
    assert record["config"]["market"] == {"volatility": 0.6}
    assert record["parameters"]["simulation.seed"] == seed
    assert record["rerun"] == f"phantom-auction simulate --config {out / 'scenario.toml'}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["parameters"]["simulation.seed"] == seed
    # The recorded scenario reruns the same auctions.
    again = runner.invoke(app, ["simulate", "--config", str(out / "scenario.toml"), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == summary


def test_the_record_names_the_phantoms_and_the_variables_that_chose_them(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit: with AUCTION_* variables choosing the phantom policy and model, the
    report's parameters did not name them and run.json's rerun line (without them) gave
    another run (39.15 bps and no phantom wins instead of 32.89 and 26%)."""
    monkeypatch.setenv("AUCTION_PHANTOM_AUCTION_PHANTOM_POLICY", "reserve")
    monkeypatch.setenv("AUCTION_PHANTOM_AUCTION_PHANTOM_IMPROVEMENT_MEAN_BPS", "25")
    out = tmp_path / "run"
    result = runner.invoke(app, ["simulate", "-n", "300", "--seed", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())
    assert record["parameters"]["simulation.phantom_policy"] == "reserve"
    assert record["parameters"]["phantom_model.mean_bps"] == 25.0
    assert record["rerun"].startswith(
        "AUCTION_PHANTOM_AUCTION_PHANTOM_IMPROVEMENT_MEAN_BPS=25 "
        "AUCTION_PHANTOM_AUCTION_PHANTOM_POLICY=reserve phantom-auction simulate --config "
    )
    import pandas as pd

    summary = pd.read_parquet(out / "summary.parquet")
    policy = summary[summary["statistic"] == "simulation.phantom_policy"]
    assert policy["text"].tolist() == ["reserve"]


def test_a_report_says_how_to_rerun_it(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reports audit: no HTML report gave the command that reproduces it. The page
    shows the rerun line; without --out the report directory gets its own scenario.toml,
    and that line reproduces the run."""
    import html as html_module

    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["simulate", *SMALL, "--report", "--json"])
    assert result.exit_code == 0, result.output
    target = tmp_path / "reports" / "simulate"
    page = html_module.unescape((target / "index.html").read_text())
    rerun = json.loads((target / "run.json").read_text())["rerun"]
    assert f"Rerun: {rerun}" in page
    again = runner.invoke(app, [*rerun.split()[1:], "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == json.loads(result.stdout.split("report:")[0])


def test_a_run_too_large_to_plan_is_refused_in_one_line(runner: CliRunner) -> None:
    """The CLI audit: 10^13 auctions planned 150 million chunk tasks before the first ran,
    and the process was killed at 24 GB."""
    from phantom_auction.errors import InvalidBidParameters
    from phantom_auction.simulation import SimulationConfig
    from phantom_auction.simulation.settings import MAX_CHUNKS

    with pytest.raises(InvalidBidParameters, match="num_simulations"):
        SimulationConfig(num_simulations=MAX_CHUNKS * 100 + 1, chunk_size=100)
    assert SimulationConfig(num_simulations=MAX_CHUNKS * 100, chunk_size=100)
    result = runner.invoke(app, ["simulate", "--simulations", "10000000000000", "--seed", "1"])
    assert result.exit_code == 2
    assert "'--simulations'" in result.output and "152,587,891 chunks" in result.output


def test_engine_variables_a_simulation_overrides_are_named(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI audit: AUCTION_PHANTOM_AUCTION_MECHANISM=uniform was recorded in run.json
    and the rerun line, yet the run cleared by vcg (the simulation's own mechanism)."""
    monkeypatch.setenv("AUCTION_PHANTOM_AUCTION_MECHANISM", '"uniform"')
    result = runner.invoke(app, ["simulate", *SMALL])
    assert result.exit_code == 0, result.output
    assert "note: AUCTION_PHANTOM_AUCTION_MECHANISM" in result.output
    assert "--mechanism decides" in result.output
    monkeypatch.delenv("AUCTION_PHANTOM_AUCTION_MECHANISM")
    quiet = runner.invoke(app, ["simulate", *SMALL])
    assert "note:" not in quiet.output


def test_an_earlier_run_in_out_is_replaced_only_when_asked(
    runner: CliRunner, tmp_path: Path
) -> None:
    """The CLI audit: --out silently replaced an earlier run, and a seed-1
    auctions.parquet stayed beside a seed-9 run.json written as CSV."""
    out = tmp_path / "run"
    first = runner.invoke(app, ["simulate", *SMALL, "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert (out / "auctions.parquet").is_file()
    again = runner.invoke(app, ["simulate", *SMALL, "--out", str(out), "--format", "csv"])
    assert again.exit_code == 2
    assert "'--out'" in again.output and "--overwrite" in again.output
    assert (out / "auctions.parquet").is_file() and not (out / "auctions.csv").exists()
    (out / "notes.txt").write_text("mine")
    replaced = runner.invoke(
        app, ["simulate", *SMALL, "--out", str(out), "--format", "csv", "--overwrite"]
    )
    assert replaced.exit_code == 0, replaced.output
    assert "earlier run's 4 files were removed" in replaced.output
    assert sorted(p.name for p in out.iterdir()) == [
        "auctions.csv", "notes.txt", "run.json", "scenario.toml", "summary.csv",
    ]  # fmt: skip


def test_a_ratio_of_sums_is_marked_in_the_table(runner: CliRunner) -> None:
    """The CLI audit: the "mean" column showed mev_capture_rate's ratio of sums (0.8204)
    beside a per-auction column whose mean is 0.8315, with nothing to say so."""
    result = runner.invoke(app, ["simulate", *SMALL], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "mev_capture_rate" in line)
    assert "*" in row
    assert "the mean is the ratio of sums" in result.stdout
    improvement = next(line for line in result.stdout.splitlines() if "improvement_bps" in line)
    assert "*" not in improvement


def test_help_gives_the_defaults_the_run_uses(runner: CliRunner) -> None:
    """The CLI audit: --help gave no default for -n, --real, --phantoms, --mechanism..."""
    import dataclasses

    from phantom_auction.simulation import MarketConditions, SimulationConfig

    text = " ".join(
        runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": "300"}).stdout.split()
    )
    sim = {f.name: f.default for f in dataclasses.fields(SimulationConfig)}
    market = {f.name: f.default for f in dataclasses.fields(MarketConditions)}
    assert f"(default: {sim['num_simulations']:,};" in text
    assert f"Real bidders per auction (default: {sim['num_real_bidders']})" in text
    assert f"slots per auction (default: {sim['num_phantom_bidders']})" in text
    assert f"(ms; default: {sim['auction_duration_ms']})" in text
    assert SimulationConfig().clearing_mechanism == "vcg" and "default: vcg" in text
    for name in ("volatility", "liquidity", "trend", "spread"):
        assert f"default: {market[name]:g})" in text, name


def test_format_without_out_is_refused(runner: CliRunner) -> None:
    result = runner.invoke(app, ["simulate", *SMALL, "--format", "csv"])
    assert result.exit_code == 2 and "'--format'" in result.output and "--out" in result.output


def test_json_rows_are_the_parquet_rows_to_the_bit(runner: CliRunner, tmp_path: Path) -> None:
    """The CLI audit: auctions.json rounded to 10 decimals (only 0.6% of welfare values
    equal to the Parquet's)."""
    for fmt in ("json", "parquet"):
        result = runner.invoke(
            app, ["simulate", *SMALL, "--out", str(tmp_path / fmt), "--format", fmt]
        )
        assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "json" / "auctions.json").read_text())
    frame = pd.read_parquet(tmp_path / "parquet" / "auctions.parquet")
    assert len(rows) == len(frame) == 400
    for column in ("welfare", "improvement_bps", "clearing_price", "mev_capture_rate"):
        got = [row[column] for row in rows]
        want = [None if pd.isna(x) else float(x) for x in frame[column]]
        assert got == want, column


def test_json_rows_keep_every_kind_of_column_exactly(tmp_path: Path) -> None:
    """auctions.json is written a column at a time (orjson over each numpy column, one
    template a row): every kind of column must come out as the frame holds it, exact
    doubles, float32 values as their value, nulls for NaN, infinities and missing."""
    from phantom_auction.cli.output import _write_json_rows

    frame = pd.DataFrame(
        {
            "f": [0.1, 5e-324, 1e16, math.nan, -math.inf, -0.0],
            "f32": np.array([0.1, 1.5, 3.0, 0.0, 2.5, -1.0], dtype=np.float32),
            "i": np.array([1, -2, 3, 2**31 - 1, 0, 7], dtype=np.int32),
            "big": np.array([2**62, 0, 1, 2, 3, 4], dtype=np.int64),
            "b": [True, False, True, False, True, False],
            "cat": pd.Categorical(["a", "b", None, "a", "%s", "b"]),
            "nullable": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
            "o": ["x", None, 1.5, math.nan, 'q"uote', "é"],
            "100%": [1, 2, 3, 4, 5, 6],
        }
    )
    path = tmp_path / "rows.json"
    _write_json_rows(frame, path)
    rows = json.loads(path.read_text("utf-8"))
    assert [list(row) for row in rows] == [list(frame.columns)] * len(frame)
    assert [r["f"] for r in rows] == [0.1, 5e-324, 1e16, None, None, -0.0]
    assert [r["f32"] for r in rows] == [float(x) for x in frame["f32"]]  # 0.10000000149...
    assert [r["i"] for r in rows] == [1, -2, 3, 2**31 - 1, 0, 7]
    assert rows[0]["big"] == 2**62
    assert [r["b"] for r in rows] == [True, False, True, False, True, False]
    assert [r["cat"] for r in rows] == ["a", "b", None, "a", "%s", "b"]
    assert [r["nullable"] for r in rows] == [1, None, 3, 4, 5, 6]
    assert [r["o"] for r in rows] == ["x", None, 1.5, None, 'q"uote', "é"]
    assert [r["100%"] for r in rows] == [1, 2, 3, 4, 5, 6]
    _write_json_rows(frame.iloc[:0], path)
    assert json.loads(path.read_text("utf-8")) == []


def test_an_earlier_run_survives_a_refused_option_and_strangers_files_are_not_a_run(
    runner: CliRunner, tmp_path: Path
) -> None:
    """The review: --overwrite removed the earlier run before the new options were
    checked (a typo left the directory empty), and any index.html or summary.* counted
    as an earlier run's."""
    out = tmp_path / "run"
    assert runner.invoke(app, ["simulate", *SMALL, "--out", str(out)]).exit_code == 0
    before = sorted(p.name for p in out.iterdir())
    bad = runner.invoke(
        app, ["simulate", *SMALL, "--out", str(out), "--overwrite", "--mechanism", "bogus"]
    )
    assert bad.exit_code == 2 and "'--mechanism'" in bad.output
    assert sorted(p.name for p in out.iterdir()) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("<p>mine</p>")
    (mine / "summary.csv").write_text("mine")
    result = runner.invoke(app, ["simulate", *SMALL, "--out", str(mine), "--format", "parquet"])
    assert result.exit_code == 0, result.output  # no run.json: not an earlier run
    assert (mine / "index.html").read_text() == "<p>mine</p>"
    assert (mine / "summary.csv").read_text() == "mine"
