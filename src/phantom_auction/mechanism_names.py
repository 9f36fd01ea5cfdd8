"""Names of the clearing mechanisms and their aliases: a leaf module (no numpy), read by
the configuration, the command line and the mechanisms themselves.
"""

from __future__ import annotations

from typing import Final, Literal

from .errors import InvalidBidParameters

__all__ = ["MECHANISMS", "MECHANISM_ALIASES", "Mechanism", "canonical_mechanism"]

#: Canonical names: ``vcg``; ``vickrey`` (second price / second score); ``uniform``
#: (uniform price); ``discriminatory`` (first price, pay as bid).
MECHANISMS: Final = ("vcg", "vickrey", "uniform", "discriminatory")
Mechanism = Literal["vcg", "vickrey", "uniform", "discriminatory"]

#: Other names accepted wherever a mechanism is named -> the canonical name.
MECHANISM_ALIASES: Final = {
    "second_price": "vickrey",
    "second_score": "vickrey",
    "first_price": "discriminatory",
    "pay_as_bid": "discriminatory",
}


def canonical_mechanism(name: str) -> str:
    """The canonical name of ``name`` (``first_price`` -> ``discriminatory``, ...).

    Case, surrounding blanks and ``-`` for ``_`` are forgiven; anything else raises
    :class:`InvalidBidParameters` listing the accepted names.
    """
    if name in MECHANISMS:  # the common case, kept off the string handling below
        return name
    key = str(name).strip().lower().replace("-", "_")
    key = MECHANISM_ALIASES.get(key, key)
    if key not in MECHANISMS:
        raise InvalidBidParameters(
            "mechanism", name, f"unknown; choose one of {[*MECHANISMS, *MECHANISM_ALIASES]}"
        )
    return key
