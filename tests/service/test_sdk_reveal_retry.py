"""The bidder SDK sends a refused reveal again once, not at every refusal (issue 16: under
overload each late reveal came back ``outside_reveal_window`` and was sent again at every
ack until its auction closed, ~500 refusals for one auction, feeding the overload)."""

from __future__ import annotations

from typing import Any

from phantom_auction.client import BidderClient, _Round


def test_a_refused_reveal_is_sent_again_once_not_at_every_refusal() -> None:
    client = BidderClient("http://127.0.0.1:1", "mm", "11" * 32)
    resent: list[Any] = []

    def reveal(round_: Any) -> None:
        resent.append(round_)

    client._reveal = reveal  # type: ignore[method-assign]
    round_ = _Round(None, commit="accepted", reveal_sent=True, reveal_open=True)  # type: ignore[arg-type]
    client._rounds["a1"] = round_
    ack = {
        "type": "ack",
        "ref": 7,
        "kind": "reveal",
        "auction_id": "a1",
        "status": "rejected",
        "reason": "outside_reveal_window",
        "detail": "arrived before the reveal window",
    }
    # Sent before the server's window opened (clocks differ): sent again on the push.
    client._on_ack(ack)
    assert len(resent) == 1 and not round_.reveal_sent
    round_.reveal_sent = True
    # Refused again: the window has passed, nothing more is sent.
    for ref in (8, 9, 10):
        client._on_ack({**ack, "ref": ref})
    assert len(resent) == 1 and round_.reveal_sent
