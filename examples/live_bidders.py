"""Run N simulator strategies as live bidders against a phantom-auction server.

    phantom-auction serve &                                   # 127.0.0.1:8080, ./data/
    TOKEN=$(phantom-auction clients add acme)
    python examples/live_bidders.py -n 5 --register --duration 60 &
    curl -s -X POST http://127.0.0.1:8080/v1/auctions \\
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
        -d '{"token_in": 1, "token_out": 2, "amount": 10, "baseline_price": 2000}'

``--register`` creates the bidders' Ed25519 keys, registers them in the server's
database (``--db``, default the configured ``[service] database_url``, on this machine)
and keeps the keys in ``--keys`` (a JSON file ``{bidder_id: private_key_hex}``) for the
next run; without it the keys file must exist (register each public key with
``phantom-auction bidders add NAME PUBKEY``). Bidder ``i`` plays strategy
``strategies[i % len(strategies)]`` from the simulator's registry. Prints each
bidder's acks, rejections by reason and wins when it stops.

``--private-value`` (on by default; ``--no-private-value`` turns it off) gives each
bidder, in every auction, a private value of the order drawn from the simulator's
market model (``MarketConditions()``: the marginal distribution of a filler's value,
bps over the baseline; each bidder draws independently, whereas the simulator's market
mode also shares a common shock between them). Strategies bid against the rules the
server publishes in its configuration (``--config``, default the packaged one): the
phantom model, the phantom policy and the number of bidders (the clients' ``view``),
with each auction's mechanism, accepted range and windows as announced, so that the
``equilibrium`` bidder bids its equilibrium for them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from phantom_auction.client import BidderClient, BidderReport
from phantom_auction.config import AuctionConfig, load_config
from phantom_auction.engine.phantoms import PhantomModel
from phantom_auction.service.auth import generate_keypair
from phantom_auction.service.store import StoreConflict, open_store
from phantom_auction.simulation.market import MarketConditions, ValueModel
from phantom_auction.simulation.strategies import create_strategy, strategy_names
from phantom_auction.simulation.strategies.base import AuctionView

BPS = 10_000.0


def auction_view(config: AuctionConfig, n_bidders: int, market: MarketConditions) -> AuctionView:
    """What a bidder knows of the server's rules (from its published configuration)."""
    pa = config.phantom_auction
    values = ValueModel.build(market, n_bidders, 1.0).marginal
    return AuctionView(
        window_ms=float(pa.duration_ms - pa.reveal_delay_ms),
        duration_ms=float(pa.duration_ms),
        min_improvement_bps=pa.min_improvement_bps,
        max_improvement_bps=pa.max_improvement_bps,
        max_volume_fraction=config.auction_mechanics.max_bid_value_multiplier,
        priority_fee_max_ratio=config.auction_mechanics.priority_fee_max_ratio,
        num_bidders=n_bidders,
        mechanism=pa.mechanism,
        value_distribution=values,
        phantom_model=PhantomModel.from_config(config) if pa.max_phantom_bidders else None,
        phantom_policy=str(getattr(pa, "phantom_policy", "reserve")),
        min_participants=pa.min_participants,
    )


def value_sampler(view: AuctionView) -> Callable[[Any, np.random.Generator], float]:
    """A private value per auction: a draw of the market model's value (B per A)."""
    values = view.value_distribution

    def draw(announcement: Any, rng: np.random.Generator) -> float:
        v = float(values.ppf(rng.random()))
        return float(announcement.baseline_price) * (1.0 + v / BPS)

    return draw


async def register(db_url: str, names: list[str], keys_file: Path) -> dict[str, str]:
    """Keys for ``names``: those in ``keys_file``, new ones created and registered."""
    keys: dict[str, str] = json.loads(keys_file.read_text()) if keys_file.exists() else {}
    store = open_store(db_url)
    await store.start()
    try:
        for name in names:
            if name in keys:
                continue
            private, public = generate_keypair()
            try:
                await store.add_bidder(name, bytes.fromhex(public))
            except StoreConflict:
                raise SystemExit(
                    f"bidder {name!r} is registered but its key is not in {keys_file}"
                ) from None
            keys[name] = private
    finally:
        await store.close()
    keys_file.write_text(json.dumps(keys, indent=2))
    keys_file.chmod(0o600)
    return keys


async def run(args: argparse.Namespace) -> list[BidderReport]:
    names = [f"{args.prefix}-{i}" for i in range(args.n)]
    keys_file = Path(args.keys)
    if args.register:
        keys = await register(args.db or load_config().service.database_url, names, keys_file)
    else:
        keys = json.loads(keys_file.read_text())
    strategies = args.strategies.split(",")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    view = auction_view(load_config(args.config), len(names), MarketConditions())
    clients = [BidderClient(args.url, name, keys[name], view=view) for name in names]
    private_value = value_sampler(view) if args.private_value else None
    runs = [
        client.arun(
            create_strategy(strategies[i % len(strategies)]),
            duration_s=args.duration,
            max_auctions=args.auctions,
            stop=stop,
            private_value=private_value,
        )
        for i, client in enumerate(clients)
    ]
    print(f"{len(clients)} bidders on {args.url} ({', '.join(strategies)}); Ctrl-C stops")
    return list(await asyncio.gather(*runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the server")
    parser.add_argument("-n", type=int, default=5, help="number of bidders")
    parser.add_argument(
        "--prefix", default="live-mm", help="bidder ids are PREFIX-0 .. PREFIX-(n-1)"
    )
    parser.add_argument(
        "--strategies",
        default="truthful,aggressive,conservative,equilibrium,random_walk",
        help=f"comma-separated, from: {', '.join(strategy_names())}",
    )
    parser.add_argument("--keys", default="live-bidders.keys.json", help="private keys (JSON)")
    parser.add_argument("--register", action="store_true", help="create and register keys")
    parser.add_argument("--db", default=None, help="database URL for --register")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many s")
    parser.add_argument("--auctions", type=int, default=None, help="stop after this many auctions")
    parser.add_argument(
        "--private-value",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give each bidder a private value per auction from the market model",
    )
    parser.add_argument(
        "--config", default=None, help="the server's config file (default: packaged)"
    )
    args = parser.parse_args()
    for report in asyncio.run(run(args)):
        rejected = ", ".join(f"{reason}={n}" for reason, n in sorted(report.rejected.items()))
        print(
            f"{report.bidder_id}: {report.auctions_seen} auctions, {report.commits_sent} commits, "
            f"{report.accepted} accepted, rejected [{rejected or 'none'}], "
            f"won {report.auctions_won} ({report.filled_volume:g} filled), "
            f"{report.strategy_errors} strategy errors"
        )


if __name__ == "__main__":
    main()
