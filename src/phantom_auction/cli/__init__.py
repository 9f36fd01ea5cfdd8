"""The ``phantom-auction`` command line.

Commands: ``demo``, ``simulate``, ``sweep``, ``clear``, ``config show``, ``bench``,
``calibrate``, ``learn``, ``verify``, and, with the ``service`` extra, the service's own
commands (``serve``, ``clients``, ``bidders``).

Layout: :mod:`.app` is the root and its error handling, :mod:`.scenario` the simulation
scenario (TOML file + flags), :mod:`.output` the file writers, :mod:`.tables` the
terminal tables, :mod:`.progress` the progress bar, and ``commands/`` one module per
command (each registers itself on the root). A new command is a new file there and a
line in :data:`COMMANDS`.

Every command is mounted lazily: ``--help`` lists :data:`COMMANDS` by their summaries,
and a command's module (with typer's rich help, numpy, pandas, the simulator) is
imported only when that command runs or shows its own help, so ``phantom-auction
--help`` starts fast (``benchmarks/bench_import.py``).

Conventions every command follows:

- A bad flag or value exits with code 2 and one line on stderr naming the option and
  the value (``Error: Invalid value for '--supply': 'abc' is not a valid float.``).
- A missing optional extra exits with code 1 and the ``pip install`` line that fixes it.
- Ctrl-C exits with code 130 after keeping what was finished and saying where (a sweep
  keeps its completed grid points and names the plots it did not draw; ``learn`` its
  finished runs; ``calibrate`` the candidates evaluated so far, marked partial;
  ``bench`` prints the scripts that finished).
- ``--json`` (``simulate``, ``sweep``, ``calibrate``, ``learn``, ``clear``, ``config
  show``, ``bench``, ``verify``) prints the result on stdout as JSON; everything else goes
  to stderr.
- Heavy imports (numpy, pandas, matplotlib, the simulator) happen inside commands.
"""

from __future__ import annotations

import importlib
from typing import Any, cast

from . import commands
from .app import LazyCommands, add_lazy_commands, app

__all__ = ["COMMANDS", "app", "load_command", "main"]

#: The built-in commands in ``--help`` order (a researcher's path): name -> (module in
#: ``commands/``, the line ``--help`` shows; a test checks it is the command's own).
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "demo",
        "One live phantom auction, then a Monte Carlo of the default config with its report.",
    ),
    "simulate": ("simulate", "Run a Monte Carlo simulation of phantom auctions and summarise it."),
    "sweep": (
        "sweep",
        "Run one Monte Carlo per grid point and plot each metric against the swept fields.",
    ),
    "clear": (
        "clear",
        "Clear a file of bids: allocations, payments, utilities, welfare and revenue.",
    ),
    "config": ("config", "The effective configuration."),
    "bench": ("bench", "Run benchmark scripts and print one table of the figures they report."),
    "calibrate": (
        "calibrate",
        "Search the phantom model (and policy) for the user's best price on the default market.",
    ),
    "learn": (
        "learn",
        "Banchio & Skrzypacz (2022): first vs second price, with and without phantoms.",
    ),
    "verify": (
        "verify",
        "Verify a published competition document: commitments, signatures, phantoms, clearing.",
    ),
}


def load_command(name: str) -> Any:
    """The click command ``name``, its module imported (it registers on :data:`app`)."""
    import typer

    importlib.import_module(f"{commands.__name__}.{COMMANDS[name][0]}")
    group = typer.main.get_command(app)
    # The group's own table, not get_command: no second lazy lookup.
    return cast(Any, group).commands.get(name)


add_lazy_commands(
    LazyCommands({name: line for name, (_, line) in COMMANDS.items()}, lambda: True, load_command)
)
# Then the service's commands (listed after the built-in ones).
importlib.import_module(f"{commands.__name__}.serve")


def main() -> None:
    """Console-script entry point (``phantom-auction``)."""
    app()
