"""The ``phantom-auction`` command line.

Commands: ``demo``, ``simulate``, ``sweep``, ``clear``, ``config show``, ``bench``, and,
with the ``service`` extra, the service's own commands (``serve``, ``clients``,
``bidders``), mounted lazily so that the rest works without it.

Layout: :mod:`.app` is the root and its error handling, :mod:`.scenario` the simulation
scenario (TOML file + flags), :mod:`.output` the file writers, :mod:`.tables` the
terminal tables, :mod:`.progress` the progress bar, and ``commands/`` one module per
command (each registers itself on the root; a new command is a new file there).

Conventions every command follows:

- A bad flag or value exits with code 2 and one line on stderr naming the option and
  the value (``Error: Invalid value for '--supply': 'abc' is not a valid float.``).
- A missing optional extra exits with code 1 and the ``pip install`` line that fixes it.
- Ctrl-C exits with code 130 after keeping what was finished (a sweep keeps its
  completed grid points; ``bench`` prints the scripts that finished).
- Heavy imports (numpy, pandas, matplotlib, the simulator) happen inside commands, so
  ``--help`` and ``config show`` start fast.
"""

from __future__ import annotations

import importlib
import pkgutil

from . import commands
from .app import app

__all__ = ["app", "main"]

#: ``--help`` lists these first, in this order (a researcher's path); any other command
#: module follows in alphabetical order.
_FIRST = ("demo", "simulate", "sweep", "clear", "config", "bench")
_found = sorted(m.name for m in pkgutil.iter_modules(commands.__path__))
for _name in sorted(_found, key=lambda n: (_FIRST.index(n) if n in _FIRST else len(_FIRST), n)):
    importlib.import_module(f"{commands.__name__}.{_name}")


def main() -> None:
    """Console-script entry point (``phantom-auction``)."""
    app()
