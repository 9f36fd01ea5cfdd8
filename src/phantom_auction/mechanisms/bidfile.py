"""Bids from a file: CSV (header ``bidder_id,valuation,quantity[,is_phantom]``) or JSON.

The parser behind ``phantom-auction clear``, usable from Python. Every bad row raises
:class:`~phantom_auction.errors.InvalidBidParameters` naming the file (``field``), and
the row and value (``reason``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from ..errors import InvalidBidParameters
from .vcg import VCGBid

__all__ = ["BIDS_FILE_FIELD", "read_bids"]

#: ``InvalidBidParameters.field`` of every error raised here (``value`` is the path).
BIDS_FILE_FIELD = "bids file"

#: The keys (CSV columns) a bid has; any other is refused, not silently dropped (a typo
#: in ``is_phantom`` made every bid real: the CLI audit).
_KEYS = ("bidder_id", "valuation", "quantity", "is_phantom")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def _bad(file: str, reason: str) -> NoReturn:
    raise InvalidBidParameters(BIDS_FILE_FIELD, file, reason)


def _bid_from_record(record: Mapping[str, Any], where: str, file: str) -> VCGBid:
    unknown = [k for k in record if k not in _KEYS]
    if unknown:
        _bad(file, f"{where}: unknown key {unknown[0]!r} (a bid has {', '.join(_KEYS)})")
    missing = [k for k in ("bidder_id", "valuation", "quantity") if record.get(k) in (None, "")]
    if missing:
        _bad(file, f"{where}: missing {', '.join(missing)}")
    numbers: dict[str, float] = {}
    for key in ("valuation", "quantity"):
        raw = record[key]
        try:
            if isinstance(raw, bool):
                raise ValueError
            numbers[key] = float(raw)
        except (TypeError, ValueError):
            _bad(file, f"{where}: {key}={raw!r} is not a number")
        if not math.isfinite(numbers[key]) or numbers[key] < 0:
            _bad(file, f"{where}: {key}={raw!r} must be finite and >= 0")
    phantom_raw = record.get("is_phantom", False)
    if isinstance(phantom_raw, bool):
        phantom = phantom_raw
    elif str(phantom_raw).strip().lower() in _TRUE:
        phantom = True
    elif str(phantom_raw).strip().lower() in _FALSE:
        phantom = False
    else:
        _bad(file, f"{where}: is_phantom={phantom_raw!r} is not true/false")
    return VCGBid(
        str(record["bidder_id"]), numbers["valuation"], numbers["quantity"], is_phantom=phantom
    )


def read_bids(path: Path | str) -> list[VCGBid]:
    """The bids of a CSV or JSON file, in file order.

    CSV: header ``bidder_id,valuation,quantity[,is_phantom]`` (valuation per unit,
    quantity in token units). JSON: a list of objects with those keys, or
    ``{"bids": [...]}``. Bidder ids must be unique.
    """
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text("utf-8-sig")
    except OSError as exc:
        _bad(file, f"cannot read: {exc.strerror or exc}")
    records: list[tuple[str, Mapping[str, Any]]] = []
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            _bad(file, f"invalid JSON: {exc}")
        if isinstance(data, dict):
            data = data.get("bids")
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            _bad(file, 'expected a list of bid objects or {"bids": [...]}')
        records = [(f"bid {i}", r) for i, r in enumerate(data)]
    else:
        reader = csv.DictReader(text.splitlines())
        header = [h.strip() for h in reader.fieldnames or []]
        needed = {"bidder_id", "valuation", "quantity"}
        expected = "(expected bidder_id,valuation,quantity[,is_phantom])"
        if not needed <= set(header):
            _bad(file, f"CSV header {header} lacks {sorted(needed - set(header))} {expected}")
        unknown = [h for h in header if h not in _KEYS]
        if unknown:
            _bad(file, f"CSV header has an unknown column {unknown[0]!r} {expected}")
        for line, row in enumerate(reader, start=2):
            extra = row.pop(None, None)  # DictReader's key for values past the header
            if extra:
                _bad(file, f"line {line}: {len(extra)} value(s) past the header's columns")
            records.append((f"line {line}", {k.strip(): v for k, v in row.items()}))
    bids = [_bid_from_record(r, where, file) for where, r in records]
    if not bids:
        _bad(file, "contains no bids")
    seen: set[str] = set()
    for bid in bids:
        if bid.bidder_id in seen:
            _bad(file, f"bidder_id {bid.bidder_id!r} appears twice")
        seen.add(bid.bidder_id)
    return bids
