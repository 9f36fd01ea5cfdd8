"""``serve``, ``clients``, ``bidders`` and ``auctions``: the service's commands, mounted
lazily.

They live in ``phantom_auction.service.commands`` (the ``service`` extra). They are
listed when that module exists and imported only when one of them runs, so the rest of
the command line works without the extra; without its dependencies a command prints
the ``pip install`` line that fixes it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any, cast

import typer

from ..._extras import MissingExtra
from ..app import LazyCommands, add_lazy_commands

#: Top-level commands the service extra registers through ``service.commands.register``,
#: with the line ``--help`` shows for each (a test checks they match the commands').
SERVICE_COMMANDS = {
    "serve": "Run the live auction service (HTTP + WebSocket) until interrupted.",
    "clients": "Settlement clients: they open auctions with a bearer token.",
    "bidders": "Bidders: they commit and reveal, signing with Ed25519 keys.",
    "auctions": "Stored auctions: retention.",
}
_SERVICE_MODULE = "phantom_auction.service.commands"


def service_available() -> bool:
    try:
        return importlib.util.find_spec(_SERVICE_MODULE) is not None
    except ImportError:
        return False


def _load_service_register() -> Callable[[typer.Typer], None]:
    module = importlib.import_module(_SERVICE_MODULE)
    return cast(Callable[[typer.Typer], None], module.register)


def service_command(name: str) -> Any:
    """The service's ``name`` command, or one that prints the install hint without the extra."""
    try:
        register = _load_service_register()
    except (MissingExtra, ModuleNotFoundError) as exc:
        missing = exc if isinstance(exc, MissingExtra) else None
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith(_SERVICE_MODULE):
            return None
        return _install_hint_command(name, missing, getattr(exc, "name", None))
    holder = typer.Typer()

    # A callback keeps typer from collapsing a one-command app into that command.
    @holder.callback()
    def _service() -> None:
        """Service commands."""

    register(holder)
    group = typer.main.get_command(holder)
    return cast(Any, group).get_command(None, name)


def _install_hint_command(name: str, missing: MissingExtra | None, module: str | None) -> Any:
    hint = typer.Typer()
    settings = {"ignore_unknown_options": True, "allow_extra_args": True}

    @hint.command(name, context_settings=settings, add_help_option=False)
    def _hint(ctx: typer.Context) -> None:
        reason = str(missing) if missing else f"{module} is needed for `{name}`"
        if "pip install" not in reason:
            reason += ": pip install 'phantom-auction[service]'"
        typer.echo(f"Error: {reason}", err=True)
        raise typer.Exit(1)

    return typer.main.get_command(hint)


# Looked up when called, so that tests can stand in for a missing extra.
add_lazy_commands(
    LazyCommands(SERVICE_COMMANDS, lambda: service_available(), lambda n: service_command(n))
)
