"""The command line as a researcher meets it (issue 14): each rough edge, pinned."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from phantom_auction import __version__
from phantom_auction.cli import app
from phantom_auction.cli.commands import bench as bench_command
from phantom_auction.simulation import parallel


def _one_line(result: Any) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


@pytest.mark.parametrize(
    "command",
    [
        ["simulate", "-n", "100", "--seed", "1"],
        ["sweep", "--grid", "num_phantom_bidders=0,5", "-n", "100", "--seed", "1"],
        ["demo", "-n", "100"],
    ],
)
def test_an_out_path_under_a_file_is_refused_before_running(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    def must_not_run(*_: Any, **__: Any) -> Any:
        raise AssertionError("the output path must be checked before anything runs")

    monkeypatch.setattr(parallel, "_run_task", must_not_run)
    monkeypatch.setattr("phantom_auction.demo.run_live_auction", must_not_run)
    afile = tmp_path / "afile"
    afile.write_text("")
    result = runner.invoke(app, [*command, "--out", str(afile / "sub")])
    assert result.exit_code == 2
    line = _one_line(result)
    assert "'--out'" in line and "which is a file" in line


def test_an_out_path_that_cannot_be_created_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    # /proc refuses new directories even to root (chmod does not stop root).
    target = Path("/proc/phantom-auction-test") if Path("/proc").is_dir() else None
    if target is None:
        pytest.skip("no /proc to stand for an unwritable place")
    result = runner.invoke(app, ["simulate", "-n", "100", "--out", str(target)])
    assert result.exit_code == 2
    assert "cannot write there" in _one_line(result)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["simulate", "--volatility", "nan"], "--volatility"),
        (["simulate", "--spread", "inf"], "--spread"),
        (["simulate", "--baseline-price", "-inf"], "--baseline-price"),
        (["clear", "bids.csv", "--supply", "nan"], "--supply"),
        (["sweep", "--grid", "volatility=0.1,nan"], "--grid"),
    ],
)
def test_nan_and_inf_flags_are_not_finite_numbers(
    runner: CliRunner, args: list[str], option: str
) -> None:
    result = runner.invoke(app, [*args, "-n", "10"] if args[0] != "clear" else args)
    assert result.exit_code == 2
    line = _one_line(result)
    assert f"'{option}'" in line and "not a finite number" in line


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"phantom-auction {__version__}"


def test_rows_default_to_parquet(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["simulate", "-n", "300", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "auctions.parquet",
        "run.json",
        "scenario.toml",
        "summary.parquet",
    ]
    assert len(pd.read_parquet(out / "auctions.parquet")) == 300


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_run_too_large_to_keep_streams_its_rows_and_writes_its_summary(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Above the in-memory threshold (lowered here to 1,500 auctions) the rows go to the
    file chunk by chunk; they equal a run that kept them."""
    scenario = tmp_path / "chunks.toml"
    scenario.write_text("[simulation]\nchunk_size = 1000\n")
    args = ["simulate", "-n", "3000", "--seed", "4", "--workers", "1", "--config", str(scenario)]
    kept = tmp_path / "kept"
    assert runner.invoke(app, [*args, "--out", str(kept), "--format", fmt]).exit_code == 0
    monkeypatch.setattr(parallel, "STREAMING_THRESHOLD", 1500)
    big = tmp_path / "big"
    result = runner.invoke(app, [*args, "--out", str(big), "--format", fmt, "--report"])
    assert result.exit_code == 0, result.output
    assert "report not written" in result.stdout
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    streamed, expected = read(big / f"auctions.{fmt}"), read(kept / f"auctions.{fmt}")
    assert len(streamed) == 3000
    pd.testing.assert_frame_equal(streamed, expected)
    summary, full = read(big / f"summary.{fmt}"), read(kept / f"summary.{fmt}")
    mean = summary.query("metric == 'improvement_bps' and statistic == 'mean'")["value"]
    full_mean = full.query("metric == 'improvement_bps' and statistic == 'mean'")["value"]
    assert float(mean.iloc[0]) == pytest.approx(float(full_mean.iloc[0]))
    assert not list(big.glob(".*partial"))


def test_narrow_terminal_config_show_cuts_no_key(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "show"], env={"COLUMNS": "50"})
    assert result.exit_code == 0
    assert "…" not in result.stdout
    for key in ("max_phantom_bidders", "phantom_improvement_mean_bps", "simulation_chunk_size"):
        assert key in result.stdout


def test_narrow_terminal_sweep_table_cuts_no_header(runner: CliRunner, tmp_path: Path) -> None:
    grid = ["--grid", "num_phantom_bidders=0,5", "--grid", "volatility=0.1"]
    args = ["sweep", *grid, "-n", "200", "--seed", "1", "--workers", "1", "--no-plots"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)], env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout


def test_clear_says_it_is_the_bare_mechanism_when_phantoms_are_in_the_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    bids = tmp_path / "bids.csv"
    bids.write_text("bidder_id,valuation,quantity,is_phantom\nalice,55,100,false\np1,58,120,true\n")
    result = runner.invoke(app, ["clear", str(bids), "--supply", "300", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    # The bare mechanism allocates to the phantom, and says so.
    assert next(r for r in out["allocations"] if r["bidder_id"] == "p1")["quantity"] > 0
    assert "bare mechanism" in out["note"] and "CFMM at the baseline" in out["note"]
    table = runner.invoke(app, ["clear", str(bids), "--supply", "300"], env={"COLUMNS": "200"})
    assert "bare mechanism" in table.stdout
    real_only = tmp_path / "real.csv"
    real_only.write_text("bidder_id,valuation,quantity\nalice,55,100\n")
    quiet = runner.invoke(app, ["clear", str(real_only), "--supply", "300", "--json"])
    assert "note" not in json.loads(quiet.stdout)


def test_bench_list_outside_a_source_checkout_says_where_the_scripts_are(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wheel install: the package sits in site-packages, no repository above it.
    site = tmp_path / "lib" / "python3.11" / "site-packages" / "phantom_auction"
    site.mkdir(parents=True)
    monkeypatch.setattr(bench_command, "_PACKAGE_DIR", site)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["bench", "--list"])
    assert result.exit_code == 2
    line = _one_line(result)
    assert "source repository" in line and "--dir" in line
    # With the scripts in the working directory, --list works.
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "bench_vcg.py").write_text("print('BENCH name=x value=1 unit=s')\n")
    listed = runner.invoke(app, ["bench", "--list"])
    assert listed.exit_code == 0 and "vcg" in listed.stdout


def test_demo_names_one_mechanism_and_shows_no_none_rows(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(
        app, ["demo", "-n", "300", "--workers", "1", "--out", str(out)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    names = {m for m in ("vcg", "vickrey", "uniform", "discriminatory") if m in result.stdout}
    assert len(names) == 1, names
    page = (out / "index.html").read_text("utf-8")
    assert "<td>None</td>" not in page
    assert "simulation.mechanism<" not in page
    # enable_vcg only chooses the mechanism when none is named: True beside vickrey
    # would contradict the clearing mechanism.
    assert "simulation.enable_vcg" not in page
    assert f"<td>simulation.clearing_mechanism</td><td>{names.pop()}</td>" in page


def test_help_runs_as_the_console_script() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from phantom_auction.cli import main; main()", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0 and __version__ in out.stdout
