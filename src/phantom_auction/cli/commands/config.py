"""``phantom-auction config show``: the effective configuration and its sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from ...errors import PhantomAuctionError
from ..app import app, bad_value, out_console
from ..output import dumps

config_app = typer.Typer(help="The effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="A TOML file layered over the defaults (before AUCTION_* variables)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show the effective configuration and where each value came from."""
    from ...config import load_config

    if file is not None and not file.is_file():
        bad_value("--file", str(file), "is a directory" if file.is_dir() else "no such file")
    try:
        config = load_config(file)
    except PhantomAuctionError as exc:
        # The key, the value and its source (file or AUCTION_* variable) are in the message.
        option = "--file" if file is not None and str(file) in str(exc) else "configuration"
        raise typer.BadParameter(str(exc), param_hint=f"'{option}'") from None
    flat = config.flat()
    if as_json:
        payload = {
            k: {"value": v, "source": config.sources.get(k, "default")} for k, v in flat.items()
        }
        typer.echo(dumps(payload))
        return
    console = out_console()
    longest = max(len(k) for k in flat)
    # A narrow terminal gets one table per section, so no key is cut short.
    by_section = console.width < longest + 32
    table = Table(
        title="Effective configuration",
        title_justify="left",
        box=box.SIMPLE_HEAD if by_section else box.HEAVY_HEAD,
    )
    table.add_column("key", no_wrap=by_section, overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
    table.add_column("source", overflow="fold", min_width=len("default"))
    section = ""
    for key, value in flat.items():
        source = config.sources.get(key, "default")
        style = "" if source == "default" else "bold yellow"
        shown = key
        if by_section:
            head, _, shown = key.partition(".")
            if head != section:
                section = head
                table.add_section()
                table.add_row(Text(f"[{head}]", style="bold"), "", "")
        table.add_row(shown, json.dumps(value), Text(source, style=style))
    console.print(table)
