"""A whole live round on loopback: a server, its bidders and a settlement client.

    python examples/live_round.py --auctions 40                # the packaged defaults
    python examples/live_round.py --auctions 40 --config old.toml

Starts ``phantom-auction serve`` on a free port of 127.0.0.1 with a fresh SQLite
database in a temporary directory (``--config`` is passed to the server and to the
bidders), registers a settlement client, runs ``examples/live_bidders.py`` (5 bidders
with private values from the market model, ``--private-value``), opens ``--auctions``
auctions of ``--amount`` token A units one after another, and prints how they ended:
the share won by phantoms (volume routed to the CFMM at the baseline), the share where
the order went to the CFMM although a revealed real bid beat the baseline, and the
user's mean improvement (bps over the baseline, with its 95% confidence interval).
Stops the server and the bidders when done.
"""

from __future__ import annotations

import argparse
import math
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: The CLI installed beside this interpreter (the package's console script).
CLI = str(Path(sys.executable).with_name("phantom-auction"))


def _cli(*args: str) -> str:
    done = subprocess.run(
        [CLI, *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def _wait_healthy(url: str, server: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server at {url} did not answer /healthz in {timeout_s} s")


def _stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str], sig: int = signal.SIGINT) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_round(auctions: int, amount: float, config: str | None) -> list[dict[str, Any]]:
    """Results of ``auctions`` live auctions (the service's result documents)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite+aiosqlite:///{tmp}/round.db"
        conf = ["--config", config] if config else []
        token = _cli("clients", "add", "live-round", "--db", db, *conf).split()[-1]
        url = f"http://127.0.0.1:{_free_port()}"
        port = url.rsplit(":", 1)[1]
        server = subprocess.Popen(
            [CLI, "serve", "--port", port, "--db", db, *conf],
            cwd=tmp,
        )
        bidders: subprocess.Popen[str] | None = None
        try:
            _wait_healthy(url, server)
            bidders = subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "live_bidders.py"),
                    "--url",
                    url,
                    "--register",
                    "--db",
                    db,
                    "--keys",
                    f"{tmp}/keys.json",
                    *conf,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert bidders.stdout is not None
            print(bidders.stdout.readline().strip())  # printed once their keys are ready
            time.sleep(2.0)  # then they log in and subscribe
            results = []
            with httpx.Client(base_url=url, timeout=30.0) as http:
                for i in range(auctions):
                    answer = http.post(
                        "/v1/auctions",
                        headers={"Authorization": f"Bearer {token}"},
                        json={
                            "token_in": 1,
                            "token_out": 2,
                            "amount": amount,
                            "baseline_price": 2000.0,
                            "idempotency_key": f"round-{i}",
                        },
                    )
                    answer.raise_for_status()
                    results.append(answer.json())
            return results
        finally:
            if bidders is not None:
                _stop(bidders)
                print(bidders.stdout.read() if bidders.stdout else "", end="")
            _stop(server, signal.SIGTERM)  # a graceful stop, not an "Interrupted." one


def summarize(results: list[dict[str, Any]]) -> str:
    ended = [doc["result"] for doc in results if doc.get("result")]
    improvements = [float(r["improvement_bps"]) for r in ended]
    phantom_won = sum(bool(r["phantom_won"]) for r in ended)
    # At the baseline although a real bid (>= min_improvement_bps above it) was revealed:
    # what phantoms must not do.
    lost = sum(
        float(r["improvement_bps"]) == 0.0 and r["num_participants"] > r["num_phantom_bids"]
        for r in ended
    )
    outcomes = Counter(str(r["outcome"]) for r in ended)
    mean = statistics.fmean(improvements) if improvements else math.nan
    half = (
        1.96 * statistics.stdev(improvements) / math.sqrt(len(improvements))
        if len(improvements) > 1
        else math.nan
    )
    return (
        f"{len(ended)} of {len(results)} auctions ended; outcomes {dict(outcomes)}\n"
        f"won by phantoms: {phantom_won}/{len(ended)}; to the CFMM with a real bid in: "
        f"{lost}/{len(ended)}\n"
        f"mean improvement {mean:.2f} bps (95% CI ±{half:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--auctions", type=int, default=40)
    parser.add_argument("--amount", type=float, default=10.0, help="token A units per order")
    parser.add_argument("--config", default=None, help="TOML for the server and the bidders")
    args = parser.parse_args()
    print(summarize(run_round(args.auctions, args.amount, args.config)))


if __name__ == "__main__":
    main()
