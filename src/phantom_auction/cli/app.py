"""The root of the command line: the ``app`` every command module registers on, and the
error handling all commands share (one-line errors, exit codes, Ctrl-C, install hints).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, cast

import typer
from typer.core import TyperCommand, TyperGroup

from .._extras import MissingExtra
from ..errors import PhantomAuctionError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "LazyCommands",
    "add_lazy_commands",
    "app",
    "bad_value",
    "err_console",
    "interrupted",
    "out_console",
]

# ClickException, whether typer vendors click (>= 0.20) or uses the click package.
_CLICK_ERROR = cast(type[Exception], typer.BadParameter.__mro__[2])


@dataclasses.dataclass(frozen=True, slots=True)
class LazyCommands:
    """Commands whose module loads only when one of them runs.

    ``--help`` lists them with ``summaries`` (name -> one line), without loading them.
    """

    summaries: Mapping[str, str]
    #: Whether to list the commands (e.g. the extra's module is installed).
    available: Callable[[], bool]
    #: The click command for a name, or None if there is none after all.
    load: Callable[[str], Any]


_LAZY_COMMANDS: list[LazyCommands] = []


def add_lazy_commands(commands: LazyCommands) -> None:
    """Mount ``commands`` on the root without importing them (see ``commands/serve.py``)."""
    _LAZY_COMMANDS.append(commands)


# rich is imported when a command prints, not for ``--help``.
def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def out_console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


#: Set when a command has said what it kept after Ctrl-C (so the root does not repeat it).
_INTERRUPT_REPORTED: list[str] = []


def interrupted(message: str) -> NoReturn:
    """Say what was kept after Ctrl-C and exit 130."""
    err_console().print(message)
    _INTERRUPT_REPORTED.append(message)
    raise typer.Exit(130)


def bad_value(option: str, value: object, reason: str) -> NoReturn:
    """Raise the usage error the CLI prints as one line and exits 2 on."""
    raise typer.BadParameter(f"{value!r}: {reason}", param_hint=f"'{option}'")


class CommandLine(TyperGroup):
    """The root group: one-line errors, install hints, clean Ctrl-C, lazy service commands."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        kwargs["standalone_mode"] = False
        argv = list(args[0] if args else kwargs.get("args") or sys.argv[1:])
        try:
            code = super().main(*args, **kwargs)
        except _CLICK_ERROR as exc:
            _name_the_value(exc, argv)
            format_message = getattr(exc, "format_message", None)
            message = format_message() if callable(format_message) else str(exc)
            if type(exc).__name__ == "NoArgsIsHelpError":
                typer.echo(message, err=True)
            else:
                typer.echo(f"Error: {message}", err=True)
            sys.exit(int(getattr(exc, "exit_code", 2)))
        except MissingExtra as exc:
            typer.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except PhantomAuctionError as exc:
            # Library validation names the field and the value; it is bad input.
            typer.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            code = 130
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            sys.exit(1)
        if code == 130 and not _INTERRUPT_REPORTED:
            # Typer turns a KeyboardInterrupt the command did not handle into exit 130.
            typer.echo("Interrupted.", err=True)
        _INTERRUPT_REPORTED.clear()
        sys.exit(code if isinstance(code, int) else 0)

    #: True while the help text is being written: lazy commands are then listed by
    #: their summaries instead of being loaded (which would cost their imports).
    _listing = False

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # The root's help in click's plain layout: typer's rich one imports rich,
        # rich.markdown and pygments (~0.2 s of a 0.3 s start). A command's own help
        # (``simulate --help``) keeps typer's rich panels.
        self._listing = True
        markup, self.rich_markup_mode = self.rich_markup_mode, None
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
            self.rich_markup_mode = markup

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        # Whole summaries, wrapped (click would cut them at the terminal's width).
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def list_commands(self, ctx: Any) -> list[str]:
        names = list(super().list_commands(ctx))
        for lazy in _LAZY_COMMANDS:
            if lazy.available():
                names += [n for n in lazy.summaries if n not in names]
        # The lazy tables' order, whichever commands happen to be loaded already.
        order = {n: i for i, n in enumerate(n for lazy in _LAZY_COMMANDS for n in lazy.summaries)}
        return sorted(names, key=lambda n: (order.get(n, len(order)), n))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except _CLICK_ERROR as exc:
            # typer suggests among the loaded commands only; suggest among all of them.
            message = getattr(exc, "message", None)
            if args and isinstance(message, str) and "Did you mean" not in message:
                from difflib import get_close_matches

                close = get_close_matches(args[0], self.list_commands(ctx))
                if close:
                    suggestions = ", ".join(repr(m) for m in close)
                    cast(Any, exc).message = f"{message.rstrip('.')}. Did you mean {suggestions}?"
            raise

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        for lazy in _LAZY_COMMANDS:
            if command is None and cmd_name in lazy.summaries and lazy.available():
                if self._listing:
                    return TyperCommand(cmd_name, help=lazy.summaries[cmd_name])
                command = lazy.load(cmd_name)
        return command


def _raw_value(argv: Sequence[str], opts: Sequence[str]) -> str | None:
    """The text last given on the command line for an option with names ``opts``."""
    found = None
    for i, token in enumerate(argv):
        for opt in opts:
            if token == opt and i + 1 < len(argv):
                found = argv[i + 1]
            elif opt.startswith("--") and token.startswith(opt + "="):
                found = token[len(opt) + 1 :]
            elif not opt.startswith("--") and token.startswith(opt) and len(token) > len(opt):
                found = token[len(opt) :]
    return found


def _not_finite(text: str) -> bool:
    """Whether ``text`` reads as a float that is NaN or infinite (``nan``, ``-inf``, ...)."""
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def _name_the_value(exc: Exception, argv: Sequence[str]) -> None:
    """Put the offending value into a bad-parameter message that does not show it."""
    param = getattr(exc, "param", None)
    message = getattr(exc, "message", None)
    opts = list(getattr(param, "opts", []) or [])
    if param is None or not isinstance(message, str) or not opts or opts[0][:1] != "-":
        return
    raw = _raw_value(argv, opts)
    if raw is not None and _not_finite(raw):
        # Whatever check tripped (a bound, a type), the problem is the value itself.
        cast(Any, exc).message = f"{raw!r} is not a finite number"
        return
    message = message.removeprefix("Value error, ")
    if raw is not None and repr(raw) not in message and raw not in message:
        message = f"{raw!r} ({message})"
    cast(Any, exc).message = message


app = typer.Typer(
    cls=CommandLine,
    name="phantom-auction",
    help="Phantom auctions: simulate, sweep, clear bids, show the configuration, benchmark.",
    no_args_is_help=True,
    # The root's plain help uses the terminal's width (click's default stops at 80).
    context_settings={"max_content_width": 120, "help_option_names": ["-h", "--help"]},
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from .._version import __version__

        typer.echo(f"phantom-auction {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version."
    ),
) -> None:
    """Phantom auctions: simulate, sweep, clear bids, show the configuration, benchmark."""
