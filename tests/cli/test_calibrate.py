"""``phantom-auction calibrate``: the TOML table, the report and the comparison."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from typer.testing import CliRunner

from phantom_auction.cli import app


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
