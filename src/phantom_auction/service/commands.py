"""``phantom-auction serve``, ``clients add|list|revoke``, ``bidders
add|list|remove|keygen`` and ``auctions prune`` (a typer sub-app).

The CLI mounts these with :func:`register`. Only typer and the config are imported
here: the service's own dependencies (the ``service`` extra) load when a command runs,
so ``phantom-auction --help`` works without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import errno
import fcntl
import re
import socket
from pathlib import Path
from typing import IO, Annotated, Any, NoReturn

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
        "or memory:// (not durable). Default: \\[service] database_url.",
    ),
]


def _blamed(exc: ConfigError) -> str:
    """What to name for a bad configuration value: its ``AUCTION_*`` variable when it
    came from one (no ``--config`` was at fault), else ``--config``."""
    variable = exc.source.removeprefix("environment variable ")
    return variable if variable != exc.source else "--config"


def _config(path: Path | None) -> AuctionConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint=_blamed(exc)) from None


def _require_service() -> None:
    modules = ("fastapi", "uvicorn", "sqlalchemy", "cryptography", "nacl", "orjson")
    for module in (*modules, "prometheus_client"):
        require(module, "service")


_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _refuse(option: str, problem: str) -> NoReturn:
    """A bad ``serve`` option: one line on stderr, exit status 2 (like a usage error)."""
    typer.echo(f"Error: {option}: {problem}", err=True)
    raise typer.Exit(2)


def _announce(line: str) -> None:
    typer.echo(line, err=True)


class _CannotOpen(Exception):
    """The store at a URL could not be opened (the cause is chained)."""


def _on_store(url: str, work: Any, synchronous: str = "full", blame: str = "--db") -> Any:
    """``await work(store)`` on the store at ``url``, opened and closed around it. A
    store that cannot be opened (a bad URL, an unreachable database, a missing schema) is
    one ``Error: <blame>: …`` line and exit status 2, not a driver's traceback."""
    from .store import open_store

    async def run() -> Any:
        try:
            store = open_store(url, sqlite_synchronous=synchronous)
            await store.start()
        except Exception as exc:  # every driver's errors: say which URL and why
            raise _CannotOpen() from exc
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except _CannotOpen as failed:
        cause = failed.__cause__
        text = " ".join(str(cause).split()) or type(cause).__name__
        shown = url
        with contextlib.suppress(Exception):  # never print a password
            from sqlalchemy.engine import make_url

            shown = make_url(url).render_as_string(hide_password=True)
            text = text.replace(url, shown)
        _refuse(blame, f"{shown!r}: cannot open the store: {text[:300]}")


async def _nothing(_store: Any) -> None:
    return None


def _check_store(url: str, synchronous: str, blame: str = "--db") -> None:
    """Open and migrate the store once before serving: a bad URL or an unreachable
    database is one line, not a traceback from inside the server's startup."""
    _on_store(url, _nothing, synchronous, blame)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind. Default: \\[service] host.")
    ] = None,
    # Text, parsed here: a bad value is one line, not a usage panel.
    port: Annotated[
        str | None, typer.Option(help="TCP port (0-65535). Default: \\[service] port.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    workers: Annotated[
        str,
        typer.Option(
            help="Server processes behind the one port (more than 1 needs PostgreSQL; "
            "docs/service.md, Scaling)."
        ),
    ] = "1",
    worker_fd: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run the live auction service (HTTP + WebSocket) until interrupted."""
    _require_service()
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        _refuse(_blamed(exc), str(exc))
    bind_port = cfg.service.port
    if port is not None:
        if not port.isdigit() or not 0 <= int(port) <= 65535:
            _refuse("--port", f"{port!r}: must be an integer in 0-65535")
        bind_port = int(port)
    if log_level.lower() not in _LOG_LEVELS:
        _refuse("--log-level", f"{log_level!r}: one of {', '.join(_LOG_LEVELS)}")
    if not workers.isdigit() or int(workers) < 1:
        _refuse("--workers", f"{workers!r}: must be an integer >= 1")
    processes = int(workers)
    bind_host = host or cfg.service.host
    url = db or cfg.service.database_url
    postgres = url.startswith(("postgresql", "postgres://"))
    if processes > 1 and not postgres:
        _refuse(
            "--workers",
            f"{processes} processes need PostgreSQL (--db postgresql+asyncpg://…); "
            "SQLite and memory:// are served by one process",
        )
    if worker_fd is not None:
        _serve_worker(cfg, url, bind_host, bind_port, log_level.lower(), worker_fd)
        return
    # Port, file and schema first, before anything opens, migrates or reads the store
    # (recovery ends the auctions a crash left open): a second server on the same port,
    # SQLite file or schema would end the running server's.
    listener = _listen(bind_host, bind_port)
    bound = int(listener.getsockname()[1])
    lock = _own_sqlite_file(url)
    if postgres:
        _check_schema_free(url, shared=processes > 1)
    _check_store(url, cfg.service.sqlite_synchronous)
    if lock is None:
        lock = _own_sqlite_file(url)  # a SQLite file the check has just made
    if processes > 1:
        from .workers import supervise, worker_argv

        def command(fd: int, bound_port: int) -> list[str]:
            base = ["serve", "--host", bind_host, "--port", str(bound_port)]
            base += ["--log-level", log_level, "--workers", str(processes)]
            if config is not None:
                base += ["--config", str(config)]
            return worker_argv(base, fd)

        # The URL (its password) in the workers' environment, not on their command lines.
        env = {"AUCTION_SERVICE_DATABASE_URL": url}
        raise typer.Exit(supervise(processes, listener, command, _announce, env))
    from .app import create_app

    app = create_app(
        cfg, database_url=url, announce=_announce, address=f"http://{bind_host}:{bound}"
    )
    _run(app, listener, host=bind_host, port=bound, **_uvicorn_options(cfg, log_level.lower()))
    if lock is not None:
        lock.close()


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the service starts (a clear error if taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        # A port in use (or not ours to take) is --port's fault; anything else (a name
        # that does not resolve, an address this machine does not have) is --host's.
        option = "--port" if exc.errno in (errno.EADDRINUSE, errno.EACCES) else "--host"
        _refuse(option, f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    listener.set_inheritable(True)
    return listener


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite store URL; ``None`` for other stores and in-memory SQLite."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _own_sqlite_file(url: str) -> IO[bytes] | None:
    """For a SQLite store, an exclusive lock on its file for as long as this server runs
    (the file handle to keep; ``None`` for other stores). SQLite stores are served by
    one process; ``auctions prune`` and ``clients add`` beside it take no such lock.
    (``flock`` does not touch SQLite's own POSIX locks on the same file.)"""
    path = _sqlite_file(url)
    if path is None:
        return None
    if not path.exists():
        return None  # nobody serves it yet: taken once the store check has made it
    handle = open(path, "rb")  # noqa: SIM115 (held until the server stops)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        _refuse("--db", f"{path} is served by another running server (one process per file)")
    return handle


def _check_schema_free(url: str, *, shared: bool) -> None:
    """Refuse now, in one line, to serve a PostgreSQL schema that another server holds in
    the other mode (:mod:`.claim`). Each server process takes the claim again when it
    starts and holds it while it runs."""
    from .claim import SchemaClaim, SchemaInUse

    async def probe() -> None:
        claim = SchemaClaim(url, shared=shared)
        await claim.take()
        await claim.release()

    try:
        asyncio.run(probe())
    except SchemaInUse as exc:
        _refuse("--db", str(exc))
    except Exception:  # cannot connect: the store check next says so, in one line
        return


def _run(app: Any, listener: socket.socket, **options: Any) -> None:
    """uvicorn on ``listener``, ending the running auctions as soon as it is asked to stop.

    uvicorn's own stop closes every WebSocket, then waits up to 5 s for the open HTTP
    requests (settlement requests waiting for their auction) while those auctions run on
    to their deadlines with no bidder able to reveal, and only then runs the app's
    shutdown: every commit would count as a missed reveal. Ending them first tells the
    bidders (aborted: no one is penalized) and answers the waiting requests."""
    import uvicorn

    class ServiceServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await app.state.house.end_auctions()
            await super().shutdown(sockets)

    server = ServiceServer(uvicorn.Config(app, **options))
    house = app.state.house
    # A lost lock (house.lost_database) ends the server as SIGTERM would, with status 1:
    # a supervisor or service manager starts it again, and it recovers as after a crash.
    house.stop = lambda: setattr(server, "should_exit", True)
    server.run(sockets=[listener])
    if house.fatal is not None:
        typer.echo(f"Error: {house.fatal}", err=True)
        raise typer.Exit(1)


def _log_config(log_level: str) -> dict[str, Any]:
    """uvicorn's logging, with the service's own loggers (``phantom_auction.*``: retention,
    recovery, the store) on the same stderr handler, format and ``--log-level``."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["phantom_auction"] = {
        "handlers": ["default"],
        "level": log_level.upper(),
        "propagate": False,
    }
    return config


def _uvicorn_options(cfg: AuctionConfig, log_level: str) -> dict[str, Any]:
    """How ``serve`` runs uvicorn (one process or each worker)."""
    from .connections import with_read_timeout
    from .ws_fastpath import DirectWebSocketProtocol

    return {
        "log_level": log_level,
        "log_config": _log_config(log_level),
        # Each request must arrive within service.read_timeout_s (slowloris).
        "http": with_read_timeout(cfg.service.read_timeout_s),
        # uvicorn's websockets (sans-I/O) protocol, plus direct delivery and coalesced
        # writes for logged-in bidders (service/ws_fastpath.py).
        "ws": DirectWebSocketProtocol,
        # Frames between max_message_bytes and this are answered `message_too_large`;
        # larger ones close the socket (code 1009) before they are buffered.
        "ws_max_size": max(1 << 20, 16 * cfg.security.max_message_bytes),
        # Bidder messages are a few hundred bytes: compressing them costs more CPU than
        # it saves bytes, on both ends.
        "ws_per_message_deflate": False,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        "timeout_graceful_shutdown": 5,
        "access_log": False,
    }


def _serve_worker(
    cfg: AuctionConfig, url: str, host: str, port: int, log_level: str, fd: int
) -> None:
    """One of ``serve --workers N``'s processes, on the supervisor's socket ``fd``."""
    import os

    from .app import create_app
    from .workers import die_with_parent, inherited_socket

    die_with_parent()
    pid = os.getpid()
    # The supervisor checked the store before the first workers; one restarted while the
    # database is down says so in one line (and is started again after a back-off), not
    # in uvicorn's traceback of the app's startup.
    _check_store(url, cfg.service.sqlite_synchronous, blame=f"worker {pid}")
    app = create_app(
        cfg,
        database_url=url,
        announce=lambda line: _announce(f"worker {pid}: {line}"),
        address=f"http://{host}:{port}",
        peers=True,
    )
    options = _uvicorn_options(cfg, log_level)
    _run(app, inherited_socket(fd), host=host, port=port, **options)


def clients_add(
    name: Annotated[str, typer.Argument(help="Settlement client name (letters, digits, _.:@-).")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Register a settlement client and print its bearer token (shown once, stored hashed)."""
    _require_service()
    from .auth import check_bidder_id, hash_token, new_token
    from .store import StoreConflict

    try:
        check_bidder_id(name, "name")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME") from None
    token = new_token()
    try:
        _run_on_store(
            db, config, lambda store: store.add_client(name, hash_token(token)), creates=True
        )
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
    from .store import StoreConflict

    key_text = pubkey
    if Path(pubkey).is_file():
        key_text = Path(pubkey).read_text("utf-8")
    try:
        check_bidder_id(name, "name")
        public_key = parse_public_key(key_text)
    except ValueError as exc:
        # (A base64 key is 44 characters and may hold a "/".)
        if Path(pubkey).suffix in (".pem", ".pub", ".key") or ("/" in pubkey and len(pubkey) != 44):
            # Meant as a file (the CLI audit: a missing one was reported as a bad key).
            raise typer.BadParameter(f"no such file: {pubkey}", param_hint="PUBKEY") from None
        raise typer.BadParameter(str(exc)) from None
    try:
        _run_on_store(db, config, lambda store: store.add_bidder(name, public_key), creates=True)
    except StoreConflict as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME") from None
    typer.echo(f"bidder {name} added (public key {public_key.hex()})")


def _run_on_store(db: str | None, config: Path | None, work: Any, *, creates: bool = False) -> Any:
    """:func:`_on_store` on ``--db``, else the configuration's ``database_url``. A
    SQLite file that does not exist is refused, unless the command ``creates`` (adds a
    client or a bidder), which says it made a new one: a mistyped ``--db`` made an empty
    database and listed nothing (the CLI audit)."""
    url = db or _config(config).service.database_url
    path = _sqlite_file(url)
    new = path is not None and not path.exists()
    if new and not creates:
        _refuse(
            "--db", f"{str(path)!r}: no such database (serve, clients add and bidders add make one)"
        )
    done = _on_store(url, work)
    if new:
        _announce(f"note: created a new database at {path}")
    return done


def _when(us: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="seconds")


def clients_list(db: DbOption = None, config: ConfigOption = None) -> None:
    """List settlement clients: id, name, created, and whether the token is revoked."""
    _require_service()
    for c in _run_on_store(db, config, lambda store: store.clients()):
        state = "revoked" if c.revoked else "active"
        typer.echo(f"{c.client_id}\t{c.name}\t{_when(c.created_at_us)}\t{state}")


def clients_revoke(
    name: Annotated[str, typer.Argument(help="The settlement client's name.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a settlement client's token (a running server stops taking it within 30 s)."""
    _require_service()
    if not _run_on_store(db, config, lambda store: store.revoke_client(name)):
        typer.echo(f"Error: NAME: no settlement client named {name!r}", err=True)
        raise typer.Exit(2)  # a bad NAME, as every bad value
    typer.echo(f"client {name} revoked (its auctions stay)")


def bidders_list(db: DbOption = None, config: ConfigOption = None) -> None:
    """List bidders: id, public key, created, no-reveal rate and any block."""
    _require_service()
    import time

    from .penalties import is_blocked

    now_us = time.time_ns() // 1000
    for b in _run_on_store(db, config, lambda store: store.bidders()):
        p = b.penalty
        # A block that has ended is not shown (block_count stays: it sets the next one).
        block = f"blocked until {_when(p.blocked_until_us)}" if is_blocked(p, now_us) else "-"
        typer.echo(
            f"{b.bidder_id}\t{b.public_key.hex()}\t{_when(b.created_at_us)}\t"
            f"no_reveal_rate={p.no_reveal_rate:.3f}\t{block}"
        )


def bidders_remove(
    name: Annotated[str, typer.Argument(help="The bidder id.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove a bidder (a running server drops it within 30 s; its stored messages and
    used nonces stay, so re-adding the id cannot replay them)."""
    _require_service()
    if not _run_on_store(db, config, lambda store: store.remove_bidder(name)):
        typer.echo(f"Error: NAME: no bidder named {name!r}", err=True)
        raise typer.Exit(2)
    typer.echo(f"bidder {name} removed")


def bidders_keygen() -> None:
    """Print a new Ed25519 key pair: `private_hex public_hex` (keep the first secret)."""
    _require_service()
    from .auth import generate_keypair

    private, public = generate_keypair()
    typer.echo(f"{private} {public}")


_AGE_UNITS_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}


#: The longest ``--older-than`` (s): 100 years.
_MAX_AGE_S = 100 * 365 * 86_400


def _age_us(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``3600s`` as microseconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if found is None:
        raise typer.BadParameter(
            f"{text!r}: a number and a unit, s, m, h or d (e.g. 30d, 12h)",
            param_hint="--older-than",
        )
    age_s = float(found[1]) * _AGE_UNITS_S[found[2]]
    if age_s > _MAX_AGE_S:  # before 1970 there is nothing to prune; dates end in year 1
        raise typer.BadParameter(
            f"{text!r}: at most {_MAX_AGE_S // 86_400:,.0f}d", param_hint="--older-than"
        )
    return round(age_s * 1_000_000)


def auctions_prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Remove the auctions that ended longer ago than this: a number and a "
            "unit, s, m, h or d (e.g. 30d).",
        ),
    ],
    batch: Annotated[
        int | None,
        typer.Option("--batch", min=1, help="Auctions removed per transaction (default 25)."),
    ] = None,
    pause_ratio: Annotated[
        float | None,
        typer.Option(
            "--pause-ratio",
            min=0.0,
            max=1000.0,
            help="After each transaction, wait this many times as long as it took "
            "(default 3: a quarter of the database's and a CPU's time at most).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Count what would be removed; remove nothing."),
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove ended auctions and their bid events, oldest first; open auctions stay, and
    each bidder's highest used nonce is kept, so an old signed commit is still refused.
    Safe while servers run on the same database. A pruned auction is gone from the API,
    the explorer and idempotent retries (a retry with its key opens a new auction): keep
    auctions longer than any settlement client retries."""
    _require_service()
    from .store import now_us

    cutoff = max(0, now_us() - _age_us(older_than))
    options: dict[str, Any] = {"batch_auctions": batch, "pause_ratio": pause_ratio}
    options = {k: v for k, v in options.items() if v is not None}  # else the store's
    if dry_run:
        pruned = _run_on_store(db, config, lambda store: store.count_ended(cutoff))
    else:
        pruned = _run_on_store(db, config, lambda store: store.prune(cutoff, **options))
    typer.echo(
        f"{'would prune' if dry_run else 'pruned'} {pruned.auctions:,} auction(s) and their "
        f"{pruned.events:,} bid event(s): every auction that ended before {_when(cutoff)}"
    )


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``clients``, ``bidders`` and ``auctions`` groups to ``app``."""
    app.command("serve")(serve)
    clients = typer.Typer(help="Settlement clients: they open auctions with a bearer token.")
    clients.command("add")(clients_add)
    clients.command("list")(clients_list)
    clients.command("revoke")(clients_revoke)
    app.add_typer(clients, name="clients")
    bidders = typer.Typer(help="Bidders: they commit and reveal, signing with Ed25519 keys.")
    bidders.command("add")(bidders_add)
    bidders.command("list")(bidders_list)
    bidders.command("remove")(bidders_remove)
    bidders.command("keygen")(bidders_keygen)
    app.add_typer(bidders, name="bidders")
    auctions = typer.Typer(help="Stored auctions: retention.")
    auctions.command("prune")(auctions_prune)
    app.add_typer(auctions, name="auctions")
