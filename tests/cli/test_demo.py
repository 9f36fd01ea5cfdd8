"""``phantom-auction demo``: a live auction timeline, a Monte Carlo and the report."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from phantom_auction.cli import app
from phantom_auction.demo import run_live_auction


def test_demo_prints_timeline_summary_and_report(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(
        app,
        ["demo", "--simulations", "3000", "--workers", "1", "--out", str(out)],
        env={"COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    text = result.stdout
    for word in ("commit", "reveal", "phantoms", "clear", "improvement", "bps"):
        assert word in text
    assert "3,000 auctions" in text and "improvement_bps" in text
    page = out / "index.html"
    assert page.is_file()
    assert f"Report written to {page.resolve()}" in text.replace("\n", "")
    assert (out / "winners.png").is_file()


def test_live_auction_is_consistent() -> None:
    demo = run_live_auction(seed=5)
    result = demo.result
    # Fills sum to the order; the improvement is the price's distance from the baseline.
    assert sum(f.volume for f in result.fills) == result.amount
    expected = (result.price - result.baseline_price) / result.baseline_price * 10_000
    assert abs(result.improvement_bps - expected) < 1e-6
    events = [entry.what for entry in demo.timeline]
    assert events[0] == "open" and "clear" in events
    assert events.count("commit") + events.count("abstain") == 5
    # Every reveal comes after collection closed, and the clearing after every reveal.
    close = events.index("close")
    assert all(i > close for i, what in enumerate(events) if what == "reveal")
    assert events.index("clear") > max(i for i, what in enumerate(events) if what == "reveal")


def test_demo_rejects_bad_values(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--simulations", "0"])
    assert result.exit_code == 2 and "'--simulations' / '-n': '0'" in result.stderr
    taken = tmp_path / "file"
    taken.write_text("")
    result = runner.invoke(app, ["demo", "--out", str(taken)])
    assert result.exit_code == 2 and "'--out'" in result.stderr
