"""VCG speed: run_vcg_auction against the seed's naive algorithm, and clear_batch.

Prints the median time per ``run_vcg_auction`` at 20 and 200 bidders (multi-unit, with
a reserve), the same for a naive reference written here (the seed's algorithm: greedy
allocation re-run without each winner, bids found by linear look-up), their ratio, and
the seconds ``clear_batch`` takes for 1,000,000 auctions x 20 bidders with VCG.

Goals (issue 2, 2-core machine): 200 bidders <= 0.2 ms and >= 100x the naive
reference; 1,000,000 batch clearings <= 2 s.

    python benchmarks/bench_vcg.py [--auctions 1000000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import timeit
from collections.abc import Callable

import numpy as np

from phantom_auction import VCGAuction, VCGBid, clear_batch, run_vcg_auction

RESERVE = 50.0
SUPPLY_PER_BIDDER = 50.0  # about half the demand of a bidder (30..150 units, mean 90)


def make_auction(n: int, rng: np.random.Generator) -> VCGAuction:
    """Seed-like bids around the reserve: values 45..65 per unit, 30..150 units each."""
    auction = VCGAuction(SUPPLY_PER_BIDDER * n, RESERVE, enable_multi_unit=True)
    for i in range(n):
        auction.bids.append(
            VCGBid(
                f"bidder_{i}",
                45.0 + 20.0 * float(rng.random()),
                float(rng.integers(30, 151)),
                is_phantom=i % 4 != 0,
            )
        )
    return auction


def naive_vcg(auction: VCGAuction) -> dict[str, tuple[float, float]]:
    """The seed's algorithm: ``{bidder_id: (quantity, payment)}`` of the winners.

    Welfare counts the seller's kept units at the reserve, so that the payments are the
    VCG ones (the seed's own code leaves that out and undercharges).
    """
    supply, reserve = auction.supply, auction.reserve_price

    def allocate(bids: list[VCGBid]) -> dict[str, float]:
        ordered = sorted((b for b in bids if b.valuation >= reserve), key=lambda b: -b.valuation)
        left, allocation = supply, {}
        for bid in ordered:
            take = min(bid.quantity, left)
            if take > 0:
                allocation[bid.bidder_id] = take
                left -= take
        return allocation

    def welfare(bids: list[VCGBid], allocation: dict[str, float], skip: str = "") -> float:
        total = reserve * (supply - sum(allocation.values()))
        for bidder_id, units in allocation.items():
            if bidder_id != skip:
                bid = next(b for b in bids if b.bidder_id == bidder_id)  # linear look-up
                total += bid.valuation * units
        return total

    bids = auction.bids
    allocation = allocate(bids)
    outcome = {}
    for bidder_id, units in allocation.items():
        others = [b for b in bids if b.bidder_id != bidder_id]
        without = welfare(others, allocate(others))
        outcome[bidder_id] = (units, without - welfare(bids, allocation, skip=bidder_id))
    return outcome


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    """Median over ``repeats`` of the mean time per call of a loop of ~0.2 s."""
    number, _ = timeit.Timer(call).autorange()
    return statistics.median(t / number for t in timeit.repeat(call, number=number, repeat=repeats))


def check_agreement(auction: VCGAuction) -> None:
    fast = run_vcg_auction(auction)
    slow = naive_vcg(auction)
    for a in fast.allocations:
        units, payment = slow.get(a.bidder_id, (0.0, 0.0))
        assert abs(a.quantity - units) <= 1e-9 * max(1.0, units), a
        assert abs(a.payment - payment) <= 1e-9 * max(1.0, payment), (a, payment)


def batch_seconds(auctions: int, bidders: int, repeats: int, threads: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of one ``clear_batch`` VCG call."""
    rng = np.random.default_rng(0)
    values = 45.0 + 20.0 * rng.random((auctions, bidders))
    quantities = rng.integers(30, 151, (auctions, bidders)).astype(np.float64)
    supply = SUPPLY_PER_BIDDER * bidders
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        clear_batch(values, quantities, supply=supply, reserve=RESERVE, threads=threads)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auctions", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(2024)
    # Wall-clock figures mean little on a busy machine: say how busy it is.
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n")

    print("run_vcg_auction, multi-unit with reserve (median time per auction)")
    print(f"{'bidders':>8} {'fast ms':>10} {'naive ms':>10} {'speed-up':>10}")
    fast_200 = ratio_200 = 0.0
    for n in (20, 200):
        auction = make_auction(n, rng)
        check_agreement(auction)
        fast = median_seconds(lambda a=auction: run_vcg_auction(a), args.repeats)
        naive = median_seconds(lambda a=auction: naive_vcg(a), max(3, args.repeats // 2))
        print(f"{n:>8} {fast * 1e3:>10.4f} {naive * 1e3:>10.3f} {naive / fast:>9.0f}x")
        if n == 200:
            fast_200, ratio_200 = fast, naive / fast

    batch, batch_cpu = batch_seconds(args.auctions, 20, 3, 1)
    double, double_cpu = batch_seconds(args.auctions, 20, 3, 2)
    print(f"\nclear_batch VCG, {args.auctions:,} auctions x 20 bidders (median of 3)")
    print(f"  one thread (default): {batch:.3f} s wall, {batch_cpu:.3f} s CPU")
    print(f"  threads=2:            {double:.3f} s wall, {double_cpu:.3f} s CPU")
    print("\ngoals:")
    verdict = "met" if fast_200 <= 2e-4 else "MISSED"
    print(f"  200 bidders <= 0.2 ms: {fast_200 * 1e3:.4f} ms {verdict}")
    print(f"  >= 100x naive: {ratio_200:.0f}x {'met' if ratio_200 >= 100 else 'MISSED'}")
    if args.auctions == 1_000_000:
        print(f"  1M batch <= 2 s: {batch:.3f} s {'met' if batch <= 2.0 else 'MISSED'}")
    print(f"BENCH name=vcg.run_200_bidders value={fast_200 * 1e3:.4f} unit=ms")
    print(f"BENCH name=vcg.speedup_vs_naive_200 value={ratio_200:.0f} unit=x")
    print(f"BENCH name=vcg.batch_{args.auctions}x20 value={batch:.3f} unit=s")


if __name__ == "__main__":
    main()
