"""Admission control: an auction whose deadline the loop cannot keep is refused at once."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from phantom_auction.engine import SettlementRequest, arun_auction, make_bid
from phantom_auction.engine.admission import Overloaded, admission_for
from phantom_auction.errors import AuctionTimeout

from .engine_support import PAIR, no_phantoms

REQUEST = SettlementRequest(PAIR[0], PAIR[1], 1000.0)
CONFIG = no_phantoms(duration_ms=200, reveal_delay_ms=100, min_participants=1)


class NoShow:
    """Commits at once, never reveals: its auction waits out the reveal window."""

    def __init__(self, auction_id: str, nonce: int) -> None:
        self.bid = make_bid(auction_id, "no-show", PAIR, 100.3, 10.0, 0.0, nonce)

    async def commit(self, announcement: object) -> object:
        return self.bid.sealed()

    async def reveal(self, announcement: object) -> None:
        return None


def _deadline(ms: float) -> datetime:
    return datetime.now(UTC) + timedelta(milliseconds=ms)


def test_a_stalled_loop_refuses_what_it_cannot_finish_in_time() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate = admission_for(loop)
        running = asyncio.ensure_future(
            arun_auction(
                REQUEST,
                100.0,
                1000.0,
                _deadline(2000),
                config=CONFIG,
                bidders=[NoShow("a-1", 1)],
                auction_id="a-1",
                admission=True,
                finalize_margin_ms=1000.0,  # 500 ms kept: room for a loaded test machine
            )
        )
        await asyncio.sleep(0.02)
        # Something blocks the loop for 60 ms: the probe sees it fire that late.
        loop.call_soon(time.sleep, 0.06)
        await asyncio.sleep(0.08)
        assert gate.lag_s > 0.03
        # A 3 ms margin cannot absorb a lag of tens of ms: refused before it opens.
        with pytest.raises(Overloaded) as refused:
            await arun_auction(
                REQUEST,
                100.0,
                1000.0,
                _deadline(150),
                config=CONFIG,
                bidders=[NoShow("a-2", 2)],
                auction_id="a-2",
                admission=True,
            )
        assert isinstance(refused.value, AuctionTimeout)
        assert refused.value.retry_after_s > 0 and "late" in str(refused.value)
        # A deadline with room for the lag is taken, and kept.
        deadline = _deadline(2000)
        result = await arun_auction(
            REQUEST,
            100.0,
            1000.0,
            deadline,
            config=CONFIG,
            bidders=[NoShow("a-3", 3)],
            auction_id="a-3",
            admission=True,
            finalize_margin_ms=1000.0,
        )
        assert result.unrevealed == ("no-show",)
        assert (await running).auction_id == "a-1"
        assert gate.refused >= 1 and gate.admitted >= 2

    asyncio.run(main())


def test_admission_is_opt_in() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(time.sleep, 0.05)
        await asyncio.sleep(0.06)
        result = await arun_auction(
            REQUEST,
            100.0,
            1000.0,
            _deadline(150),
            config=CONFIG,
            bidders=[NoShow("b-1", 1)],
            auction_id="b-1",
        )
        assert result.auction_id == "b-1"

    asyncio.run(main())
