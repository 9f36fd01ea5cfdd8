"""Wire formats of the service: HTTP bodies, responses and WebSocket messages (pydantic).

The bidders' messages (commit, reveal, login, status) live in :mod:`phantom_auction.wire`,
which the SDK shares; they are re-exported here with the rest.

Units: prices in token B per token A (``token_out`` per ``token_in``); ``amount`` and
``volume`` in token A units; ``priority_fee`` in token units; improvements in basis
points over the baseline; times are ISO 8601 UTC. Hex is lower or upper case.
Numbers must be finite and be JSON numbers: ``"300"`` or ``true`` where a number is
expected is refused (``malformed``), never coerced. Integers (token ids, nonces) are
within JSON's safe range, magnitude at most 2**53 - 1, so that every parser, JavaScript's
``JSON.parse`` included, reads them exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
)

from ..wire import (
    BidderMessage,
    CommitBody,
    RevealBody,
    StrictBody,
    TokenId,
    WsCommit,
    WsLogin,
    WsReveal,
    WsStatus,
    bidder_message_adapter,
    login_adapter,
)

__all__ = [
    "AckBody",
    "AuctionDocument",
    "BidderMessage",
    "BidderStatus",
    "CommitBody",
    "CompetitionView",
    "ErrorBody",
    "OpenAuctionBody",
    "ResultBody",
    "RevealBody",
    "WsCommit",
    "WsLogin",
    "WsReveal",
    "WsStatus",
    "bidder_message_adapter",
    "login_adapter",
]

#: Amounts and prices are bounded so that every derived quantity stays finite.
Quantity = Annotated[float, Strict(), Field(gt=0.0, le=1e18, allow_inf_nan=False)]
Price = Annotated[float, Strict(), Field(gt=0.0, le=1e15, allow_inf_nan=False)]
#: Printable text only: PostgreSQL refuses NUL bytes, logs are spoiled by the others.
IDEMPOTENCY_KEY_PATTERN = r"^[^\x00-\x1f\x7f]{1,200}$"


# ---------------------------------------------------------------- settlement clients


class OpenAuctionBody(StrictBody):
    """``POST /v1/auctions``: sell ``amount`` of ``token_in`` for ``token_out``.

    Give ``deadline`` (the result is due by then; the auction runs the configured
    duration or less to fit) or ``duration_ms`` (the auction runs exactly that long),
    or neither (the configured ``phantom_auction.duration_ms``). A retry with the same
    ``idempotency_key`` returns the same auction; with other fields it is refused (409).
    """

    token_in: TokenId
    token_out: TokenId
    amount: Quantity
    baseline_price: Price
    deadline: AwareDatetime | None = None
    duration_ms: Annotated[int, Strict(), Field(ge=1, le=3_600_000)] | None = None
    idempotency_key: (
        Annotated[str, Field(min_length=1, max_length=200, pattern=IDEMPOTENCY_KEY_PATTERN)] | None
    ) = None

    @field_validator("deadline")
    @classmethod
    def _in_utc(cls, deadline: datetime | None) -> datetime | None:
        # In UTC here: at the ends of the calendar (year 1 at +01:00, year 9999 at -14:00)
        # the conversion overflows, which must be this field's error, not a 500.
        if deadline is None:
            return None
        try:
            return deadline.astimezone(UTC)
        except OverflowError:
            raise ValueError("out of range once converted to UTC") from None

    @field_validator("token_out")
    @classmethod
    def _two_tokens(cls, token_out: int, info: ValidationInfo) -> int:
        if token_out == info.data.get("token_in"):
            raise ValueError("must differ from token_in (a token is not sold for itself)")
        return token_out


class FillBody(BaseModel):
    """``volume`` token A units sold at ``price``; ``bidder_id`` null is the CFMM remainder."""

    bidder_id: str | None
    volume: float
    price: float


class WinningBidBody(BaseModel):
    """The best-ranked real bid that fills (revealed in full after the auction)."""

    bidder_id: str
    token_pair: list[int]
    improved_price: float
    volume: float
    priority_fee: float
    nonce: int
    commitment_hash: str


class ResultBody(BaseModel):
    """The engine's ``AuctionResult`` (the seed's fields first)."""

    winning_bid: WinningBidBody | None
    price: float = Field(description="user's volume-weighted price, B per A")
    amount: float
    improvement_bps: float
    num_participants: int = Field(description="revealed real bids + phantom bids")
    num_phantom_bids: int
    auction_duration_ms: float
    auction_id: str
    mechanism: str
    outcome: str
    fills: list[FillBody]
    phantom_won: bool
    phantom_seed: str
    phantom_commitment: str
    unrevealed: list[str] = Field(
        description="bidders that committed and never revealed (penalized, unless recovered)"
    )
    baseline_price: float
    finalized_at: datetime
    recovered: bool = Field(
        False,
        description="ended by crash recovery after a server restart (present only then): "
        "its no-reveals are not penalized",
    )


class AuctionDocument(BaseModel):
    """An auction as its settlement client sees it; ``result`` once it has ended."""

    auction_id: str
    status: Literal["open", "finalized", "aborted"]
    outcome: str | None
    token_in: int
    token_out: int
    amount: float
    baseline_price: float
    idempotency_key: str | None
    opened_at: datetime
    commit_deadline: datetime
    reveal_deadline: datetime
    phantom_commitment: str
    result: ResultBody | None


class RulesBody(BaseModel):
    """What an auction clears by besides its mechanism and phantoms (bps; the weights of
    ``score = price_weight * improvement_bps + fee_weight * fee_bps``; volume caps as a
    multiple of the amount, fee caps per unit of volume)."""

    min_improvement_bps: float
    max_improvement_bps: float
    price_weight: float
    fee_weight: float
    min_participants: int
    max_bid_value_multiplier: float
    priority_fee_max_ratio: float


class CompetitionView(BaseModel):
    """Everything about a finished auction, published for audit (CoW-style).

    ``commitments``: every commit as received (with the bidder's signature over auction
    id, commitment and nonce) and its verdict; ``reveals``: every reveal and its verdict;
    ``phantom_bids`` and ``phantom_seed``: redraw them from the seed with
    ``phantom_auction.engine.draw_phantom_bids`` (docs/phantoms.md gives the procedure);
    ``ranking``: every real and phantom bid with score, rank and fill; ``rejections``:
    every refused message with its reason. ``phantom_policy``, ``rules`` and
    ``phantom_model`` are the terms announced at open (``rules`` is null in documents
    stored before it was published).
    """

    auction_id: str
    status: Literal["finalized", "aborted"]
    outcome: str
    mechanism: str
    phantom_policy: str | None
    rules: RulesBody | None
    token_pair: list[int]
    amount: float
    baseline_price: float
    opened_at: datetime
    commit_deadline: datetime
    reveal_deadline: datetime
    phantom_commitment: str
    phantom_seed: str
    phantom_model: dict[str, Any]
    bidder_keys: dict[str, str | None] = Field(
        description="Ed25519 public key (hex) of every bidder that sent a message"
    )
    commitments: list[dict[str, Any]]
    reveals: list[dict[str, Any]]
    phantom_bids: list[dict[str, Any]]
    ranking: list[dict[str, Any]]
    fills: list[FillBody]
    rejections: list[dict[str, Any]]
    unrevealed: list[str]
    price: float
    improvement_bps: float


class ErrorBody(BaseModel):
    """A refused request: ``reason`` is a stable code, ``detail`` names field and value."""

    status: Literal["rejected"] = "rejected"
    reason: str
    detail: str
    field: str | None = None


# ---------------------------------------------------------------- bidders (HTTP)


class AckBody(BaseModel):
    """The verdict on a commit or reveal (also the WebSocket ``ack`` message)."""

    type: Literal["ack"] = "ack"
    ref: str | int | None = None
    kind: str
    auction_id: str | None
    status: Literal["accepted", "rejected"]
    reason: str | None = None
    detail: str | None = None


class BidderStatus(BaseModel):
    """``GET /v1/bidders/me``: the bidder's no-reveal record and any block."""

    bidder_id: str
    no_reveal_rate: float = Field(description="EWMA of unrevealed commitments, in [0, 1]")
    no_reveal_threshold: float
    blocked: bool
    blocked_until: datetime | None
    block_count: int
    reason: str | None


class Announcement(BaseModel):
    """An open auction as pushed to bidders (``auction_opened``)."""

    auction_id: str
    token_pair: list[int]
    baseline_price: float
    amount: float
    opened_at: datetime
    commit_deadline: datetime
    reveal_deadline: datetime
    phantom_commitment: str
    mechanism: str
    min_improvement_bps: float
    max_improvement_bps: float
    max_volume: float
    priority_fee_max_ratio: float
    phantom_policy: str = Field(description="reserve or floor: how phantom bids clear")
    rules: RulesBody
    phantom_model: dict[str, Any] = Field(
        description="The distribution the phantom bids are drawn from (docs/phantoms.md)"
    )


# ---------------------------------------------------------------- bidders (WebSocket)
