"""``read_bids``: the bid-file parser behind ``phantom-auction clear``, as library code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phantom_auction.errors import InvalidBidParameters
from phantom_auction.mechanisms.bidfile import BIDS_FILE_FIELD, read_bids
from phantom_auction.mechanisms.vcg import VCGBid


def test_csv_and_json_give_the_same_bids(tmp_path: Path) -> None:
    csv_file = tmp_path / "bids.csv"
    csv_file.write_text("bidder_id,valuation,quantity,is_phantom\na,10,2,false\np,12.5,1,yes\n")
    json_file = tmp_path / "bids.json"
    json_file.write_text(
        json.dumps(
            {
                "bids": [
                    {"bidder_id": "a", "valuation": 10, "quantity": 2},
                    {"bidder_id": "p", "valuation": 12.5, "quantity": 1, "is_phantom": True},
                ]
            }
        )
    )
    expected = [VCGBid("a", 10.0, 2.0), VCGBid("p", 12.5, 1.0, is_phantom=True)]
    assert read_bids(csv_file) == expected
    assert read_bids(json_file) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("bidder_id,valuation,quantity\na,x,1\n", "line 2: valuation='x' is not a number"),
        ("bidder_id,valuation,quantity\na,1,-1\n", "quantity='-1' must be finite and >= 0"),
        ("bidder_id,valuation,quantity\na,1,1\na,2,1\n", "'a' appears twice"),
        ("bidder_id,valuation\na,1\n", "lacks ['quantity']"),
        ("bidder_id,valuation,quantity\n", "contains no bids"),
    ],
)
def test_bad_rows_name_the_file_row_and_value(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bids.csv"
    path.write_text(text)
    with pytest.raises(InvalidBidParameters) as info:
        read_bids(path)
    assert info.value.field == BIDS_FILE_FIELD and info.value.value == str(path)
    assert needle in info.value.reason
