"""``--scheduler`` and ``--cluster`` on ``simulate`` and ``sweep``, as a user runs them.

A real cluster here is ``dask scheduler`` and two ``dask worker`` processes started from
``.venv/bin/dask`` on 127.0.0.1 (the OS picks free ports), as docs/distributed.md says;
``phantom-auction`` runs as a subprocess too. Every process is stopped at the end, also
when a test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed.client", reason="the distributed extra is not installed")

from typer.testing import CliRunner

from phantom_auction.cli import app

from .cluster_helpers import DaskProcesses, dask_processes

BIN = Path(sys.executable).parent
PHANTOM_AUCTION = BIN / "phantom-auction"
# The docs' worker setting: undo Dask's MALLOC_TRIM_THRESHOLD_, which slows chunks down.
WORKER_CONFIG = """\
distributed:
  nanny:
    pre-spawn-environ:
      MALLOC_TRIM_THRESHOLD_: null
"""
# 16,000 auctions in 8 chunks, so that both workers get some.
SCENARIO = "[simulation]\nchunk_size = 2000\n"
RUN = ["--simulations", "16000", "--seed", "31"]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskProcesses]:
    where = tmp_path_factory.mktemp("dask")
    (where / "config").mkdir()
    (where / "config" / "distributed.yaml").write_text(WORKER_CONFIG)
    with dask_processes(where, {"DASK_CONFIG": str(where / "config")}) as cluster:
        yield cluster


def _phantom_auction(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PHANTOM_AUCTION), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _chunks_run(address: str) -> dict[str, int]:
    from distributed import Client

    def executed(dask_worker: Any) -> int:
        return int(dask_worker.state.executed_count)

    with Client(address, timeout=30) as client:
        return dict(client.run(executed))


@pytest.mark.slow
def test_simulate_on_a_dask_scheduler_with_two_workers(
    dask_cluster: DaskProcesses, tmp_path: Path, runner: CliRunner
) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(SCENARIO)
    before = _chunks_run(dask_cluster.address)
    done = _phantom_auction(
        "simulate", "--scheduler", dask_cluster.address, "--config", str(scenario), *RUN, "--json"
    )
    assert done.returncode == 0, done.stderr
    on_cluster = json.loads(done.stdout)
    assert on_cluster["num_auctions"] == 16_000
    # The same run in this process, one local worker: the same JSON, to the last digit.
    local = runner.invoke(app, ["simulate", "--config", str(scenario), *RUN, "--json"])
    assert local.exit_code == 0, local.output
    assert done.stdout == local.stdout
    # Both workers ran chunks (8 in all).
    after = _chunks_run(dask_cluster.address)
    ran = {w: after[w] - before.get(w, 0) for w in after}
    assert len(ran) == 2 and all(n > 0 for n in ran.values()) and sum(ran.values()) == 8, ran
    # The documented worker setting took effect.
    from distributed import Client

    with Client(dask_cluster.address, timeout=30) as client:
        trim = client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")
    assert set(trim.values()) == {None}


@pytest.mark.slow
def test_sweep_on_a_dask_scheduler_writes_what_a_local_sweep_writes(
    dask_cluster: DaskProcesses, tmp_path: Path, runner: CliRunner
) -> None:
    import pandas as pd

    sweep = ["sweep", "--grid", "num_phantom_bidders=0,15", "-n", "3000", "--seed", "5"]
    done = _phantom_auction(
        *sweep, "--scheduler", dask_cluster.address, "--out", str(tmp_path / "c"), "--no-plots"
    )
    assert done.returncode == 0, done.stderr
    local = runner.invoke(app, [*sweep, "--out", str(tmp_path / "l"), "--no-plots"])
    assert local.exit_code == 0, local.output
    on_cluster = pd.read_parquet(tmp_path / "c" / "sweep.parquet")
    expected = pd.read_parquet(tmp_path / "l" / "sweep.parquet")
    assert list(on_cluster["num_phantom_bidders"]) == [0, 15]
    pd.testing.assert_frame_equal(on_cluster, expected, check_exact=True)


def _cmdline(process: Any) -> str:
    import psutil

    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # it exited meanwhile
        return ""


@pytest.mark.slow
def test_cluster_local_n_starts_and_stops_a_local_cluster(runner: CliRunner) -> None:
    import psutil

    me = psutil.Process()
    children = {p.pid for p in me.children(recursive=True)}
    environment = dict(os.environ)
    args = ["simulate", "--simulations", "3000", "--seed", "5", "--json"]
    on_cluster = runner.invoke(app, [*args, "--cluster", "local:2"])
    assert on_cluster.exit_code == 0, on_cluster.output
    local = runner.invoke(app, args)
    assert local.exit_code == 0, local.output
    assert on_cluster.stdout == local.stdout
    # The cluster's worker processes are gone, and the nannies' variables with them
    # (multiprocessing's resource tracker stays for the life of this process, by design).
    left = [
        p
        for p in me.children(recursive=True)
        if p.pid not in children and "multiprocessing.resource_tracker" not in _cmdline(p)
    ]
    _, alive = psutil.wait_procs(left, timeout=10)
    assert alive == []
    assert dict(os.environ) == environment


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--scheduler", "localhost:8786"], "'--scheduler': 'localhost:8786'"),
        (["--scheduler", "tcp://127.0.0.1:99999"], "'--scheduler': 'tcp://127.0.0.1:99999'"),
        (["--cluster", "local:0"], "'--cluster': 'local:0'"),
        (["--cluster", "4"], "'--cluster': '4'"),
        (["--cluster", "local:2", "--scheduler", "tcp://127.0.0.1:8786"], "'--cluster'"),
        (["--cluster", "local:2", "--workers", "2"], "'--workers': 2"),
    ],
)
@pytest.mark.parametrize("command", ["simulate", "sweep"])
def test_bad_cluster_values_exit_2_naming_option_and_value(
    runner: CliRunner, tmp_path: Path, command: str, args: list[str], named: str
) -> None:
    extra = []
    if command == "sweep":
        extra = ["--grid", "num_phantom_bidders=0,5", "--out", str(tmp_path)]
    result = runner.invoke(app, [command, *extra, *args, "--simulations", "10"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr


def test_without_the_extra_the_cli_gives_the_install_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    result = runner.invoke(app, ["simulate", "--cluster", "local:2", "--simulations", "10"])
    assert result.exit_code == 1
    assert "pip install 'phantom-auction[distributed]'" in result.stderr
