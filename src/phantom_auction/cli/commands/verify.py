"""``phantom-auction verify``: check a published competition document, as the explorer does."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from ...errors import InvalidBidParameters
from ..app import app, bad_value, err_console, out_console

#: How long a fetch of the competition endpoint may take (s).
FETCH_TIMEOUT_S = 30.0


def _read_source(source: str, name: str = "SOURCE") -> Any:
    """The parsed JSON of ``source`` (option ``name``): an http(s) URL (GET) or a file."""
    if re.match(r"^https?://", source, re.IGNORECASE):
        request = urllib.request.Request(source, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_S) as response:
                text = response.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            bad_value(name, source, f"the server answered {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError, UnicodeDecodeError) as exc:
            bad_value(name, source, f"cannot fetch it: {getattr(exc, 'reason', exc)}")
    else:
        path = Path(source)
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            bad_value(name, source, f"cannot read it: {exc}")
    try:
        return json.loads(text)
    except ValueError as exc:
        bad_value(name, source, f"not JSON: {exc}")


@app.command()
def verify(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="A competition JSON file, or the URL of GET /v1/auctions/{id}/competition.",
        ),
    ],
    commitment: Annotated[
        str | None,
        typer.Option(
            "--commitment",
            metavar="HEX",
            help="The phantom_commitment kept when the auction opened (64 hex digits).",
        ),
    ] = None,
    opened: Annotated[
        str | None,
        typer.Option(
            "--opened",
            metavar="SOURCE",
            help="The auction_opened push kept at open (a JSON file, or its entry of GET "
            "/v1/auctions/open): its phantom_commitment and terms are checked.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print every item as JSON instead.")
    ] = False,
) -> None:
    """Verify a published competition document: commitments, signatures, phantoms, clearing.

    Every item the explorer checks (docs/phantoms.md, "Verifying an auction"), with the
    engine's own code; the phantom commitment and terms against those kept at open
    with --opened (or the commitment alone with --commitment). Exit status 0: every item
    verified (some may be not checked); 1: an item failed; 2: bad input.
    """
    from rich.markup import escape

    from ...verification import verify_competition

    if commitment is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", commitment):
        bad_value("--commitment", commitment, "expected 64 hex digits (a SHA-256)")
    doc = _read_source(source)
    terms = None
    if opened is not None:
        if commitment is not None:
            bad_value("--opened", opened, "give --opened or --commitment, not both")
        terms = _read_source(opened, "--opened")
        if not isinstance(terms, dict) or not isinstance(terms.get("phantom_commitment"), str):
            bad_value("--opened", opened, "not an auction_opened push (no phantom_commitment)")
        if isinstance(doc, dict) and terms.get("auction_id") != doc.get("auction_id"):
            bad_value(
                "--opened",
                opened,
                f"announces auction {terms.get('auction_id')!r}, the document is of "
                f"{doc.get('auction_id')!r}",
            )
        commitment = terms["phantom_commitment"]
    try:
        check = verify_competition(doc, phantom_commitment_at_open=commitment, terms_at_open=terms)
    except InvalidBidParameters as exc:
        err_console().print(f"Error: malformed competition document: {escape(str(exc))}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(check.to_jsonable(), indent=2))
    else:
        console = out_console()
        for item in (*check.failures, *check.unchecked):
            mark = "[red]✗ failed[/red]" if item.ok is False else "[yellow]– not checked[/yellow]"
            console.print(
                f"{mark} {escape(f'[{item.group}]')} [bold]{escape(item.label)}[/bold]: "
                f"{escape(item.detail)}"
            )
        style = "green" if check.ok else "bold red"
        console.print(f"[{style}]{escape(check.summary())}[/{style}]")
    if not check.ok:
        raise typer.Exit(1)
