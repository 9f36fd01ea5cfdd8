"""Typed configuration: the packaged ``default.toml``, a user file, then ``AUCTION_*`` variables.

Precedence (last wins): defaults < ``path`` < environment. Each key is overridden by
``AUCTION_<SECTION>_<KEY>`` (``AUCTION_PHANTOM_AUCTION_DURATION_MS=80``); the variable's
text is read as a TOML value (``80``, ``0.4``, ``true``), else as a plain string.
An unknown key, a wrong type or an out-of-range value raises :class:`ConfigError`
naming the key, the value and where it came from.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .errors import ConfigError, InvalidBidParameters
from .mechanism_names import MECHANISMS, Mechanism, canonical_mechanism

__all__ = [
    "MECHANISM_NAMES",
    "AuctionConfig",
    "AuctionMechanicsConfig",
    "PhantomAuctionConfig",
    "ResourcesConfig",
    "SecurityConfig",
    "ServiceConfig",
    "default_config",
    "load_config",
]

ENV_PREFIX = "AUCTION_"
#: The clearing mechanisms a config may name (aliases are accepted too).
MECHANISM_NAMES = MECHANISMS


class _Section(BaseModel):
    # allow_inf_nan=False: a NaN or infinite limit would silently disable its check.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _cross_field(field: str, message: str) -> PydanticCustomError:
    """A rule between keys, blamed on ``field`` (the key the rule is about)."""
    return PydanticCustomError("cross_field", message, {"field": field})


class PhantomAuctionConfig(_Section):
    """The seed's ``[phantom_auction]`` table plus the clearing ``mechanism``."""

    bid_probability: float = Field(ge=0.0, le=1.0)
    duration_ms: int = Field(gt=0)
    min_improvement_bps: float = Field(ge=0.0)
    max_improvement_bps: float = Field(gt=0.0)
    reveal_delay_ms: int = Field(gt=0)
    min_participants: int = Field(ge=0)
    max_phantom_bidders: int = Field(ge=0, le=10_000)
    enable_vickrey: bool
    enable_uniform: bool
    enable_discriminatory: bool
    enable_vcg: bool
    mechanism: Mechanism
    phantom_improvement_mean_bps: float
    phantom_improvement_sd_bps: float = Field(gt=0.0)
    phantom_policy: Literal["reserve", "floor"] = "floor"

    @field_validator("mechanism", mode="before")
    @classmethod
    def _canonical_mechanism(cls, name: object) -> object:
        # Accept the same aliases as the mechanisms (second_price -> vickrey, ...).
        try:
            return canonical_mechanism(name) if isinstance(name, str) else name
        except InvalidBidParameters:
            return name  # the Literal check then names the allowed values

    @model_validator(mode="after")
    def _consistent(self) -> PhantomAuctionConfig:
        if self.min_improvement_bps > self.max_improvement_bps:
            raise _cross_field(
                "min_improvement_bps",
                f"is above max_improvement_bps={self.max_improvement_bps}",
            )
        if self.reveal_delay_ms >= self.duration_ms:
            raise _cross_field("reveal_delay_ms", f"must be below duration_ms={self.duration_ms}")
        if not getattr(self, f"enable_{self.mechanism}"):
            raise _cross_field(
                "mechanism",
                f"mechanism={self.mechanism!r} is not enabled (set enable_{self.mechanism} = true)",
            )
        return self


class AuctionMechanicsConfig(_Section):
    """Scoring and validation limits of the engine."""

    price_weight: float = Field(gt=0.0)
    fee_weight: float = Field(ge=0.0)
    max_bid_value_multiplier: float = Field(gt=0.0)
    priority_fee_max_ratio: float = Field(ge=0.0)
    min_window_ms: float = Field(gt=0.0)


class SecurityConfig(_Section):
    """Service-side limits and the no-reveal penalty (UniswapX-style back-off)."""

    max_message_bytes: int = Field(gt=0)
    challenge_ttl_s: float = Field(gt=0.0)
    no_reveal_threshold: float = Field(gt=0.0, le=1.0)
    no_reveal_smoothing: float = Field(gt=0.0, le=1.0)
    block_base_s: float = Field(gt=0.0)
    block_max_s: float = Field(gt=0.0)
    min_penalized_reveal_ms: float = Field(ge=0.0)


class ResourcesConfig(_Section):
    """Capacity limits and Monte Carlo chunking."""

    max_concurrent_auctions: int = Field(gt=0)
    #: One settlement client's share of ``max_concurrent_auctions``: without it one
    #: client's long auctions could keep every other client out.
    max_auctions_per_client: int = Field(gt=0)
    max_messages_per_second: float = Field(gt=0.0)
    simulation_chunk_size: int = Field(gt=0)
    workers: int = Field(ge=1)


class ServiceConfig(_Section):
    """Where ``phantom-auction serve`` listens and stores."""

    host: str
    port: int = Field(ge=0, le=65535)
    database_url: str
    finish_early: bool
    sqlite_synchronous: Literal["full", "normal"]
    read_timeout_s: float = Field(gt=0.0)
    public_metrics: bool
    #: Days an ended auction is kept before the server prunes it (0: kept for ever).
    retention_days: float = Field(ge=0.0, le=36_500.0)


class AuctionConfig(BaseModel):
    """The whole configuration; ``sources`` maps ``section.key`` to where its value came from."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    phantom_auction: PhantomAuctionConfig
    auction_mechanics: AuctionMechanicsConfig
    security: SecurityConfig
    resources: ResourcesConfig
    service: ServiceConfig
    sources: dict[str, str] = Field(default_factory=dict, exclude=True)

    def flat(self) -> dict[str, Any]:
        """``{"section.key": value}`` for every key, in file order."""
        out: dict[str, Any] = {}
        for section in _SECTIONS:
            for key, value in getattr(self, section).model_dump().items():
                out[f"{section}.{key}"] = value
        return out


_SECTIONS: dict[str, type[_Section]] = {
    "phantom_auction": PhantomAuctionConfig,
    "auction_mechanics": AuctionMechanicsConfig,
    "security": SecurityConfig,
    "resources": ResourcesConfig,
    "service": ServiceConfig,
}


def default_config_text() -> str:
    """The packaged ``default.toml`` (also at ``config/default.toml`` in the repository)."""
    return resources.files("phantom_auction").joinpath("default.toml").read_text("utf-8")


def _merge(
    values: dict[str, dict[str, Any]],
    sources: dict[str, str],
    table: Mapping[str, Any],
    source: str,
) -> None:
    for section, keys in table.items():
        if section not in _SECTIONS:
            raise ConfigError(section, keys, source, f"unknown section; known: {list(_SECTIONS)}")
        if not isinstance(keys, Mapping):
            raise ConfigError(section, keys, source, "must be a table")
        known = _SECTIONS[section].model_fields
        for key, value in keys.items():
            if key not in known:
                raise ConfigError(
                    f"{section}.{key}", value, source, f"unknown key; known: {sorted(known)}"
                )
            values.setdefault(section, {})[key] = value
            sources[f"{section}.{key}"] = source


def _parse_env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _env_table(env: Mapping[str, str]) -> dict[str, tuple[str, str, Any]]:
    """``{var: (section, key, value)}`` for every ``AUCTION_*`` variable."""
    found: dict[str, tuple[str, str, Any]] = {}
    # Longest section first: "auction_mechanics" must not be read as section "auction".
    sections = sorted(_SECTIONS, key=len, reverse=True)
    for var, text in env.items():
        if not var.startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(var, text, f"environment variable {var}", "unknown section")
        found[var] = (section, rest[len(section) + 1 :], _parse_env_value(text))
    return found


@functools.cache
def default_config() -> AuctionConfig:
    """The packaged defaults alone: no file, no ``AUCTION_*`` variables (read once).

    What the sans-IO engine uses when its driver passes no config; drivers that honour
    the user's environment call :func:`load_config` and pass the result.
    """
    values: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    _merge(values, sources, tomllib.loads(default_config_text()), "default")
    return _validate(values, sources)


def load_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> AuctionConfig:
    """Load the configuration: packaged defaults, then the TOML file at ``path``, then ``env``.

    ``env`` defaults to ``os.environ``. Raises :class:`ConfigError` on an unknown key,
    a wrong type, an out-of-range value or a missing file.
    """
    values: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    _merge(values, sources, tomllib.loads(default_config_text()), "default")
    if path is not None:
        file = Path(path)
        try:
            table = tomllib.loads(file.read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigError("path", str(file), "load_config", "file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("path", str(file), "load_config", f"cannot read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("path", str(file), "load_config", f"invalid TOML: {exc}") from None
        _merge(values, sources, table, f"file {file}")
    for var, (section, key, value) in _env_table(os.environ if env is None else env).items():
        _merge(values, sources, {section: {key: value}}, f"environment variable {var}")
    return _validate(values, sources)


def _validate(values: dict[str, dict[str, Any]], sources: dict[str, str]) -> AuctionConfig:
    parsed: dict[str, Any] = {}
    for section, model in _SECTIONS.items():
        try:
            parsed[section] = model.model_validate(values.get(section, {}))
        except ValidationError as exc:
            err = exc.errors()[0]
            ctx = err.get("ctx") or {}
            field = str(ctx["field"]) if "field" in ctx else str(err["loc"][0])
            name = f"{section}.{field}"
            value = values.get(section, {}).get(field)
            msg = str(err["msg"])
            raise ConfigError(name, value, sources.get(name, "default"), msg) from None
    return AuctionConfig(**parsed, sources=sources)
