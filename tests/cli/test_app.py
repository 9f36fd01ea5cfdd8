"""The root command: help, one-line errors, install hints, the lazily mounted service."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from phantom_auction.cli import COMMANDS, app, commands, load_command
from phantom_auction.cli.commands import serve
from phantom_auction.cli.commands import simulate as simulate_command


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    for name in ("demo", "simulate", "sweep", "clear", "config", "bench"):
        assert name in result.stdout


def test_no_arguments_prints_help(runner: CliRunner) -> None:
    result = runner.invoke(app, [])
    assert "simulate" in result.output


def test_unknown_command_and_option_exit_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["frobnicate"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["Error: No such command 'frobnicate'."]
    result = runner.invoke(app, ["clear", "--frob"])
    assert result.exit_code == 2 and "--frob" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_service_commands_are_mounted_when_present(runner: CliRunner) -> None:
    if not serve.service_available():
        pytest.skip("phantom_auction.service.commands is not in this checkout")
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    assert "--port" in result.stdout


def test_serve_without_the_service_extra_prints_the_install_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")

    monkeypatch.setattr(serve, "service_available", lambda: True)
    monkeypatch.setattr(serve, "_load_service_register", missing)
    result = runner.invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "fastapi" in line and "pip install 'phantom-auction[service]'" in line


def test_missing_reports_extra_prints_the_install_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes `import pandas` fail as if not installed.
    monkeypatch.setitem(sys.modules, "pandas", None)
    result = runner.invoke(app, ["sweep", "--grid", "num_phantom_bidders=0,5", "-n", "10"])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "pip install 'phantom-auction[reports]'" in line


def test_console_script_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from phantom_auction.cli import main; main()", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "simulate" in done.stdout


def test_unhandled_ctrl_c_exits_130_with_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(simulate_command, "analyze", interrupted)
    result = runner.invoke(app, ["simulate", "-n", "50", "--seed", "1", "--workers", "1"])
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1] == "Interrupted."


def test_simulate_table_needs_no_reports_extra(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for module in ("pandas", "matplotlib", "pyarrow"):
        monkeypatch.setitem(sys.modules, module, None)
    result = runner.invoke(app, ["simulate", "-n", "200", "--seed", "1", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "improvement_bps" in result.stdout
    # Writing files needs pandas: the install line, exit 1.
    out = tmp_path / "run"
    result = runner.invoke(app, ["simulate", "-n", "200", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 1 and not out.exists()
    assert "pip install 'phantom-auction[reports]'" in result.stderr


def test_help_lists_service_commands_by_their_own_summaries() -> None:
    """``--help`` shows the lazy commands without loading them: the lines it shows are
    the commands' own."""
    if not serve.service_available():
        pytest.skip("phantom_auction.service.commands is not in this checkout")
    for name, summary in serve.SERVICE_COMMANDS.items():
        command = serve.service_command(name)
        assert (command.help or "").strip().splitlines()[0] == summary


def test_help_does_not_load_the_service_or_numpy() -> None:
    heavy = (
        "numpy",
        "pydantic",
        "phantom_auction.service.commands",
        # Nor rich (typer's rich help pulls in markdown and pygments), nor any command.
        "rich",
        "typer.rich_utils",
        *(f"phantom_auction.cli.commands.{module}" for module, _ in COMMANDS.values()),
    )
    code = (
        "import sys\n"
        "sys.argv = ['phantom-auction', '--help']\n"
        "from phantom_auction.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "serve" in out.stdout
    assert out.stderr.strip() == "[]"
    # Yet every command is listed, in the researcher's order, with its whole summary.
    listed = [
        line.split()[0]
        for line in out.stdout.split("Commands:")[1].splitlines()
        if line[2:3].strip()
    ]
    assert listed[: len(COMMANDS)] == list(COMMANDS)
    assert "\n  demo " in out.stdout


def test_every_command_module_is_listed_by_its_own_summary() -> None:
    """The lazy table names every module in ``commands/`` (but the service's mount), and
    the line ``--help`` shows for each is the command's own first line."""
    found = {m.name for m in pkgutil.iter_modules(commands.__path__)} - {"serve"}
    assert found == {module for module, _ in COMMANDS.values()}
    for name, (_, summary) in COMMANDS.items():
        command = load_command(name)
        assert command is not None, name
        assert (command.help or "").strip().splitlines()[0] == summary, name


def test_a_mistyped_command_is_matched_against_every_command() -> None:
    # In a fresh process no command module is loaded yet: the suggestion still comes.
    out = subprocess.run(
        [sys.executable, "-c", "from phantom_auction.cli import main; main()", "calibrat"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == "Error: No such command 'calibrat'. Did you mean 'calibrate'?"


def test_dash_h_is_help(runner: CliRunner) -> None:
    """The CLI audit: -h was an unknown option."""
    for args in (["-h"], ["simulate", "-h"], ["config", "show", "-h"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage:" in result.output, args
