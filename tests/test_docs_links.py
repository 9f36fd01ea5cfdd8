"""Every relative link in README.md and docs/*.md reaches a file, and its #anchor a heading.

The docs point into each other (the pages keep the latest figures and link to the dated
runs in docs/measurements.md), so a moved section must not leave a dead link behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text("utf-8"))
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text("utf-8"))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_slug_follows_githubs_rule() -> None:
    assert slug("The live service: the floor's ceiling") == "the-live-service-the-floors-ceiling"
    assert slug("Scaling past one process: `serve --workers N`") == (
        "scaling-past-one-process-serve---workers-n"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    dead = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            dead.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            dead.append(f"{target}: no heading with anchor #{anchor} in {file.name}")
    assert not dead, f"{page.name}: " + "; ".join(dead)


def test_every_column_a_run_writes_is_documented() -> None:
    """docs/outputs.md lists the columns of auctions.<format> (the CLI audit: they were
    described only in a source docstring), and no column it lists is gone."""
    from phantom_auction.simulation import (
        MarketConditions,
        PhantomSimulator,
        SimulationConfig,
        run_monte_carlo,
    )

    page = (ROOT / "docs" / "outputs.md").read_text("utf-8")
    documented = set(re.findall(r"^\| `([^`]+)` \|", page, re.M))
    simulator = PhantomSimulator(SimulationConfig(num_simulations=50, seed=1), MarketConditions())
    frame = run_monte_carlo(simulator, 100.0, 1000.0, workers=1).to_frame()
    written = {re.sub(r":.+$", ":<strategy>", column) for column in frame.columns}
    assert written == documented
