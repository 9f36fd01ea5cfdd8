"""``phantom-auction config show``: effective values and where each came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phantom_auction.cli import app


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for var in list(os.environ):
        if var.startswith("AUCTION_"):
            monkeypatch.delenv(var)


def test_json_gives_value_and_source(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "over.toml"
    file.write_text("[phantom_auction]\nbid_probability = 0.5\n")
    monkeypatch.setenv("AUCTION_PHANTOM_AUCTION_DURATION_MS", "80")
    result = runner.invoke(app, ["config", "show", "--file", str(file), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["phantom_auction.duration_ms"] == {
        "value": 80,
        "source": "environment variable AUCTION_PHANTOM_AUCTION_DURATION_MS",
    }
    assert shown["phantom_auction.bid_probability"] == {"value": 0.5, "source": f"file {file}"}
    assert shown["phantom_auction.max_phantom_bidders"] == {"value": 20, "source": "default"}
    assert "service.port" in shown


def test_table_shows_sources(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUCTION_SERVICE_PORT", "9000")
    result = runner.invoke(app, ["config", "show"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if "service.port" in x)
    assert "9000" in line and "AUCTION_SERVICE_PORT" in line
    line = next(x for x in result.stdout.splitlines() if "service.host" in x)
    assert "default" in line


def test_bad_environment_value_exits_2_naming_it(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUCTION_PHANTOM_AUCTION_DURATION_MS", "soon")
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "AUCTION_PHANTOM_AUCTION_DURATION_MS" in line and "'soon'" in line


def test_unknown_key_in_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("[phantom_auction]\nduration = 5\n")
    result = runner.invoke(app, ["config", "show", "--file", str(file)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "'--file'" in line and "phantom_auction.duration" in line


def test_missing_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "show", "--file", str(tmp_path / "none.toml")])
    assert result.exit_code == 2
    assert "none.toml" in result.stderr


def test_config_without_subcommand_shows_help(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config"])
    assert "show" in result.output
