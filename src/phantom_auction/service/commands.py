"""``phantom-auction serve``, ``clients add`` and ``bidders add|keygen`` (a typer sub-app).

The CLI mounts these with :func:`register`. Only typer and the config are imported
here: the service's own dependencies (the ``service`` extra) load when a command runs,
so ``phantom-auction --help`` works without them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from .._extras import require
from ..config import AuctionConfig, load_config
from ..errors import ConfigError

__all__ = ["register"]

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML file overriding config/default.toml."),
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL: sqlite+aiosqlite:///path.db, postgresql+asyncpg://user:pw@host/db "
        "or memory:// (not durable). Default: [service] database_url.",
    ),
]


def _config(path: Path | None) -> AuctionConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from None


def _require_service() -> None:
    modules = ("fastapi", "uvicorn", "sqlalchemy", "cryptography", "nacl", "orjson")
    for module in (*modules, "prometheus_client"):
        require(module, "service")


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind. Default: [service] host.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="TCP port. Default: [service] port.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Run the live auction service (HTTP + WebSocket) until interrupted."""
    _require_service()
    import uvicorn

    from .app import create_app
    from .wsdirect import DirectWebSocketProtocol

    cfg = _config(config)
    app = create_app(cfg, database_url=db)
    uvicorn.run(
        app,
        host=host or cfg.service.host,
        port=cfg.service.port if port is None else port,
        log_level=log_level,
        # uvicorn's websockets (sans-I/O) protocol, plus direct delivery and coalesced
        # writes for logged-in bidders (service/wsdirect.py).
        ws=DirectWebSocketProtocol,
        # Frames between max_message_bytes and this are answered `message_too_large`;
        # larger ones close the socket (code 1009) before they are buffered.
        ws_max_size=max(1 << 20, 16 * cfg.security.max_message_bytes),
        # Bidder messages are a few hundred bytes: compressing them costs more CPU than
        # it saves bytes, on both ends.
        ws_per_message_deflate=False,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_graceful_shutdown=5,
        access_log=False,
    )


def clients_add(
    name: Annotated[str, typer.Argument(help="Settlement client name (letters, digits, _.:@-).")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Register a settlement client and print its bearer token (shown once, stored hashed)."""
    _require_service()
    from .auth import check_bidder_id, hash_token, new_token
    from .store import StoreConflict, open_store

    try:
        check_bidder_id(name, "name")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME") from None
    cfg = _config(config)
    token = new_token()

    async def add() -> None:
        store = open_store(db or cfg.service.database_url)
        await store.start()
        try:
            await store.add_client(name, hash_token(token))
        finally:
            await store.close()

    try:
        asyncio.run(add())
    except StoreConflict as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME") from None
    typer.echo(token)


def bidders_add(
    name: Annotated[str, typer.Argument(help="Bidder id (letters, digits, _.:@-; at most 64).")],
    pubkey: Annotated[
        str, typer.Argument(help="Ed25519 public key: 64 hex characters, base64, or a PEM file.")
    ],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Register a bidder with its Ed25519 public key."""
    _require_service()
    from .auth import check_bidder_id, parse_public_key
    from .store import StoreConflict, open_store

    key_text = pubkey
    if Path(pubkey).is_file():
        key_text = Path(pubkey).read_text("utf-8")
    try:
        check_bidder_id(name, "name")
        public_key = parse_public_key(key_text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    cfg = _config(config)

    async def add() -> None:
        store = open_store(db or cfg.service.database_url)
        await store.start()
        try:
            await store.add_bidder(name, public_key)
        finally:
            await store.close()

    try:
        asyncio.run(add())
    except StoreConflict as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME") from None
    typer.echo(f"bidder {name} added (public key {public_key.hex()})")


def bidders_keygen() -> None:
    """Print a new Ed25519 key pair: `private_hex public_hex` (keep the first secret)."""
    _require_service()
    from .auth import generate_keypair

    private, public = generate_keypair()
    typer.echo(f"{private} {public}")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``clients`` and ``bidders`` groups to ``app``."""
    app.command("serve")(serve)
    clients = typer.Typer(help="Settlement clients: they open auctions with a bearer token.")
    clients.command("add")(clients_add)
    app.add_typer(clients, name="clients")
    bidders = typer.Typer(help="Bidders: they commit and reveal, signing with Ed25519 keys.")
    bidders.command("add")(bidders_add)
    bidders.command("keygen")(bidders_keygen)
    app.add_typer(bidders, name="bidders")
