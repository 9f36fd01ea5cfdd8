"""``python -m phantom_auction.service serve|clients|bidders|auctions``: the service's
commands alone."""

from __future__ import annotations

import typer

from .commands import register

app = typer.Typer(no_args_is_help=True, add_completion=False, help="phantom-auction live service")
register(app)

if __name__ == "__main__":
    app()
