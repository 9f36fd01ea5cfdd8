"""``phantom-auction bench``: run scripts, parse their BENCH lines, one table."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from phantom_auction.cli import app
from phantom_auction.cli.commands.bench import parse_bench_lines


def write_script(directory: Path, name: str, body: str) -> Path:
    path = directory / f"bench_{name}.py"
    path.write_text(body)
    return path


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "benchmarks"
    directory.mkdir()
    write_script(
        directory,
        "vcg",
        'print("warming up")\n'
        'print("BENCH name=vcg.clear_1000 value=182.5 unit=us note=\\"median of 200\\"")\n'
        'print("BENCH name=vcg.clear_10000 value=2100 unit=us")\n',
    )
    write_script(
        directory, "engine", 'print("BENCH name=engine.auctions_per_s value=950 unit=1/s")\n'
    )
    write_script(directory, "service", 'print("BENCH name=service.p99 value=12 unit=ms")\n')
    return directory


def test_parse_bench_lines() -> None:
    out = "noise\nBENCH name=a value=1.5 unit=ms note='two words'\nBENCH value=3\n"
    first, bad = parse_bench_lines("x", out)
    assert (first.name, first.value, first.unit, first.note) == ("a", 1.5, "ms", "two words")
    assert bad.name.startswith("unparsable") and math.isnan(bad.value)


def test_default_runs_the_quick_ones(runner: CliRunner, bench_dir: Path) -> None:
    result = runner.invoke(app, ["bench", "--dir", str(bench_dir), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    names = {f["name"] for f in out["figures"]}
    # service is not a quick benchmark; simulator has no script here.
    assert names == {"vcg.clear_1000", "vcg.clear_10000", "engine.auctions_per_s"}
    vcg = next(f for f in out["figures"] if f["name"] == "vcg.clear_1000")
    assert vcg == {
        "script": "vcg",
        "name": "vcg.clear_1000",
        "value": 182.5,
        "unit": "us",
        "note": "median of 200",
    }
    assert out["failures"] == []


def test_named_and_all(runner: CliRunner, bench_dir: Path) -> None:
    result = runner.invoke(
        app, ["bench", "service", "--dir", str(bench_dir)], env={"COLUMNS": "160"}
    )
    assert result.exit_code == 0, result.output
    assert "service.p99" in result.stdout and "vcg" not in result.stdout
    result = runner.invoke(app, ["bench", "--all", "--dir", str(bench_dir), "--json"])
    assert {f["script"] for f in json.loads(result.stdout)["figures"]} == {
        "vcg",
        "engine",
        "service",
    }


def test_failing_script_is_reported_and_exits_1(runner: CliRunner, bench_dir: Path) -> None:
    write_script(bench_dir, "simulator", 'import sys\nsys.exit("simulator exploded")\n')
    result = runner.invoke(app, ["bench", "--dir", str(bench_dir), "--json"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert any("simulator: exit 1: simulator exploded" in f for f in out["failures"])
    # The others still ran and were kept.
    assert {f["script"] for f in out["figures"]} == {"vcg", "engine"}


def test_script_without_bench_lines_is_a_failure(runner: CliRunner, bench_dir: Path) -> None:
    write_script(bench_dir, "quiet", 'print("done")\n')
    result = runner.invoke(app, ["bench", "quiet", "--dir", str(bench_dir)])
    assert result.exit_code == 1
    assert "quiet: printed no BENCH lines" in result.stderr


def test_list(runner: CliRunner, bench_dir: Path) -> None:
    result = runner.invoke(app, ["bench", "--list", "--dir", str(bench_dir)])
    assert result.exit_code == 0
    assert "vcg" in result.stdout and "(quick)" in result.stdout and "service" in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nosuch"], "'NAMES': 'nosuch'"),
        (["vcg", "--all"], "'--all'"),
        (["--timeout", "0"], "'--timeout': '0'"),
    ],
)
def test_bad_input_exits_2(
    runner: CliRunner, bench_dir: Path, args: list[str], needle: str
) -> None:
    result = runner.invoke(app, ["bench", "--dir", str(bench_dir), *args])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert needle in line


def test_missing_directory_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--dir", str(tmp_path / "none")])
    assert result.exit_code == 2 and "'--dir'" in result.stderr


def test_ctrl_c_keeps_finished_scripts(
    runner: CliRunner, bench_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = subprocess.run
    calls = {"n": 0}

    def second_is_interrupted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_run(*args, **kwargs)

    monkeypatch.setattr(subprocess, "run", second_is_interrupted)
    result = runner.invoke(app, ["bench", "--all", "--dir", str(bench_dir), "--json"])
    assert result.exit_code == 130
    assert "kept the figures of 1 scripts" in result.stderr
    # Exactly one line: the root does not add its own "Interrupted." to the command's.
    assert len(result.stderr.strip().splitlines()) == 1
