"""``phantom-auction clear``: clear a file of bids with one mechanism."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.table import Table

from ...errors import InvalidBidParameters, PhantomAuctionError
from ..app import app, bad_value, out_console
from ..output import clean_floats, dumps
from ..tables import compact

if TYPE_CHECKING:
    from ...mechanisms.vcg import VCGBid


#: What ``clear`` does with ``is_phantom`` bids (printed whenever the file has one).
PHANTOM_NOTE = (
    "clear runs the bare mechanism: is_phantom bids clear like any other bid and may be "
    "allocated units. In a live auction the engine instead sends the volume a phantom "
    "wins to the CFMM at the baseline (a phantom never fills)."
)


@app.command()
def clear(
    bids_file: Annotated[
        Path,
        typer.Argument(
            metavar="BIDS",
            help="CSV or JSON of bids: bidder_id,valuation,quantity[,is_phantom].",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    supply: Annotated[
        float, typer.Option("--supply", min=0.0, help="Units for sale (token units).")
    ],
    reserve: Annotated[
        float,
        typer.Option(
            "--reserve",
            min=0.0,
            help="Reserve per unit, in the bids' valuation unit (bids below it lose).",
        ),
    ] = 0.0,
    mechanism: Annotated[
        str,
        typer.Option("--mechanism", help="vcg, vickrey, uniform or discriminatory (aliases ok)."),
    ] = "vcg",
    unit_demand: Annotated[
        bool, typer.Option("--unit-demand", help="Each bidder gets at most one unit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Clear a file of bids: allocations, payments, utilities, welfare and revenue.

    The bare mechanism: is_phantom bids clear like real ones (the live engine would
    route a phantom's volume to the CFMM at the baseline instead).
    """
    from ...mechanism_names import canonical_mechanism
    from ...mechanisms.bidfile import read_bids

    try:
        name = canonical_mechanism(mechanism)
    except PhantomAuctionError as exc:
        bad_value("--mechanism", mechanism, str(exc).split(": ", 1)[-1])
    if not math.isfinite(supply):
        bad_value("--supply", supply, "not a finite number")
    if not math.isfinite(reserve):
        bad_value("--reserve", reserve, "not a finite number")
    try:
        bids = read_bids(bids_file)
    except InvalidBidParameters as exc:
        bad_value("BIDS", exc.value, exc.reason)
    cleared = _clear_bids(bids, supply=supply, reserve=reserve, mechanism=name, unit=unit_demand)
    if any(bid.is_phantom for bid in bids):
        cleared["note"] = PHANTOM_NOTE
    if as_json:
        typer.echo(dumps(clean_floats(cleared)))
        return
    console = out_console()
    table = Table(
        title=f"{cleared['mechanism']} clearing: supply {compact(supply)}, "
        f"reserve {compact(reserve)}" + (", unit demand" if unit_demand else ""),
        title_justify="left",
    )
    for column, justify in (
        ("bidder", "left"),
        ("phantom", "left"),
        ("value", "right"),
        ("bid qty", "right"),
        ("alloc", "right"),
        ("payment", "right"),
        ("unit price", "right"),
        ("utility", "right"),
    ):
        table.add_column(column, justify=cast(Any, justify))
    for row in cleared["allocations"]:
        table.add_row(
            row["bidder_id"],
            "yes" if row["is_phantom"] else "",
            compact(row["valuation"]),
            compact(row["bid_quantity"]),
            compact(row["quantity"]),
            compact(row["payment"]),
            compact(row["price_per_unit"]) if row["quantity"] > 0 else "",
            compact(row["utility"]),
        )
    console.print(table)
    totals = Table(show_header=False, box=None)
    totals.add_column(style="bold")
    totals.add_column(justify="right")
    for label, key in (
        ("social welfare (Σ v·x)", "social_welfare"),
        ("total revenue (Σ p)", "total_revenue"),
        ("efficiency", "efficiency"),
        ("units sold", "units_sold"),
        ("phantom participation", "phantom_participation_rate"),
    ):
        totals.add_row(label, compact(cleared[key]))
    console.print(totals)
    if "note" in cleared:
        console.print(f"note: {PHANTOM_NOTE}", style="yellow")


def _clear_bids(
    bids: Sequence[VCGBid], *, supply: float, reserve: float, mechanism: str, unit: bool
) -> dict[str, Any]:
    """Clear with the VCG object API (``run_vcg_auction``) and join back the bid fields."""
    from ...mechanisms.vcg import VCGAuction, run_vcg_auction

    auction = VCGAuction(supply=supply, reserve_price=reserve, enable_multi_unit=not unit)
    auction.bids.extend(bids)
    result = run_vcg_auction(auction, mechanism=mechanism)
    by_id = {a.bidder_id: a for a in result.allocations}
    rows = []
    for bid in bids:
        alloc = by_id.get(bid.bidder_id)
        quantity = float(alloc.quantity) if alloc else 0.0
        payment = float(alloc.payment) if alloc else 0.0
        utility = float(alloc.utility) if alloc else 0.0
        rows.append(
            {
                "bidder_id": bid.bidder_id,
                "is_phantom": bid.is_phantom,
                "valuation": bid.valuation,
                "bid_quantity": bid.quantity,
                "quantity": quantity,
                "payment": payment,
                "price_per_unit": payment / quantity if quantity > 0 else None,
                "utility": utility,
            }
        )
    return {
        "mechanism": result.mechanism,
        "supply": supply,
        "reserve": reserve,
        "unit_demand": unit,
        "allocations": rows,
        "units_sold": sum(r["quantity"] for r in rows),
        "social_welfare": float(result.social_welfare),
        "total_revenue": float(result.total_revenue),
        "efficiency": float(result.efficiency),
        "phantom_participation_rate": float(result.phantom_participation_rate),
    }
