"""The layering of docs/architecture.md, enforced by walking every module's imports.

Every ``import`` and ``from ... import`` counts, wherever it stands (inside functions
and ``TYPE_CHECKING`` blocks too), and so does a string passed to
``importlib.import_module``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "phantom_auction"
SRC = Path(__file__).resolve().parents[1] / "src" / PACKAGE

#: Layer (a module or package of ours) -> what it may not import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "engine": ("simulation", "service", "cli", "report", "demo", "client"),
    "simulation": ("service", "cli", "report", "demo", "client"),
    "config": ("mechanisms", "engine", "simulation", "service", "cli", "report", "demo"),
    # The bidder SDK shares the wire format with the service, never the server itself.
    "client": ("service", "cli", "report", "demo"),
    "wire": ("simulation", "service", "cli", "report", "demo", "client"),
    # Checks a published document with the engine's own code (signatures via service.auth).
    "verification": ("simulation", "cli", "report", "demo", "client"),
}
#: Layer -> the only modules of ours it may import (besides its own).
ALLOWED_ONLY: dict[str, tuple[str, ...]] = {
    "mechanisms": ("errors", "mechanism_names"),
    "mechanism_names": ("errors",),
    "errors": (),
    "_version": (),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str | None = None) -> set[str]:
    """Every module of ours that ``path`` (module ``name``) imports, as dotted names."""
    name = name or _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            # `from . import x` / `from .. import config` import submodules by name.
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _our_modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _violations(path: Path, name: str | None = None) -> list[str]:
    name = name or _module_name(path)
    layer = _layer(name)
    bad = []
    for imported in sorted(_imports(path, name)):
        target = _layer(imported)
        if target in ("", layer):
            # The root package only re-exports; a submodule named from it is judged by name.
            continue
        if target in FORBIDDEN.get(layer, ()):
            bad.append(f"{name} imports {imported}")
        if layer in ALLOWED_ONLY and target not in ALLOWED_ONLY[layer]:
            bad.append(f"{name} imports {imported}")
    return bad


@pytest.mark.parametrize("path", _our_modules(), ids=lambda p: _module_name(p))
def test_module_keeps_to_its_layer(path: Path) -> None:
    assert _violations(path) == []


def test_the_walker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The checker itself: a lazy relative import and an import_module string are found."""
    assert "phantom_auction.errors" in _imports(SRC / "engine" / "bids.py")
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import importlib\n"
        "def f():\n"
        "    from ..simulation import market\n"
        "    importlib.import_module('phantom_auction.service')\n",
        "utf-8",
    )
    assert _violations(probe, "phantom_auction.engine.probe") == [
        "phantom_auction.engine.probe imports phantom_auction.service",
        "phantom_auction.engine.probe imports phantom_auction.simulation",
        "phantom_auction.engine.probe imports phantom_auction.simulation.market",
    ]


def test_the_sdk_rule_catches_a_server_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from .service.auth import sign\n", "utf-8")
    assert _violations(probe, "phantom_auction.client") == [
        "phantom_auction.client imports phantom_auction.service.auth",
        "phantom_auction.client imports phantom_auction.service.auth.sign",
    ]


def test_importing_the_package_loads_no_numpy() -> None:
    """The lazy root: ``import phantom_auction`` (and ``--help``) stays light."""
    import subprocess
    import sys

    code = (
        "import sys, phantom_auction, phantom_auction.cli, phantom_auction.config;"
        "print(sorted(m for m in ('numpy', 'scipy', 'pandas', 'phantom_auction.simulation')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
