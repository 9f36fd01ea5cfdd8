"""Optional extras: import a module or say which ``pip install`` line provides it."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtra", "require"]


class MissingExtra(ImportError):
    """An optional dependency is missing; the message gives the install line."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming ``phantom-auction[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{module} is needed for this feature: pip install 'phantom-auction[{extra}]'"
        ) from exc
