"""load_config: packaged defaults, a TOML file, AUCTION_<SECTION>_<KEY> overrides, errors.

Every error must name the key, the value and where the value came from (the default,
the file, or the environment variable).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from phantom_auction import AuctionConfig, ConfigError, load_config
from phantom_auction.config import MECHANISM_NAMES, default_config_text

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_auction_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("AUCTION_"):
            monkeypatch.delenv(var)


def _write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "over.toml"
    file.write_text(text, "utf-8")
    return file


def test_defaults_are_the_seed_table() -> None:
    config = load_config()
    assert isinstance(config, AuctionConfig)
    pa = config.phantom_auction
    assert (pa.bid_probability, pa.duration_ms, pa.reveal_delay_ms) == (0.3, 100, 20)
    assert (pa.min_improvement_bps, pa.max_improvement_bps) == (10, 50)
    assert (pa.min_participants, pa.max_phantom_bidders) == (2, 20)
    assert (pa.enable_vickrey, pa.enable_uniform, pa.enable_discriminatory) == (True, True, False)
    assert pa.mechanism in MECHANISM_NAMES
    assert getattr(pa, f"enable_{pa.mechanism}")
    assert set(config.sources.values()) == {"default"}
    assert set(config.flat()) == set(config.sources)


def test_repository_copy_matches_the_packaged_defaults() -> None:
    assert (REPO / "config" / "default.toml").read_text("utf-8") == default_config_text()


def test_environment_overrides_file_overrides_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = _write(tmp_path, "[phantom_auction]\nmax_phantom_bidders = 25\nduration_ms = 90\n")
    monkeypatch.setenv("AUCTION_PHANTOM_AUCTION_MAX_PHANTOM_BIDDERS", "30")
    config = load_config(file)
    assert config.phantom_auction.max_phantom_bidders == 30
    assert config.phantom_auction.duration_ms == 90
    assert config.sources["phantom_auction.max_phantom_bidders"] == (
        "environment variable AUCTION_PHANTOM_AUCTION_MAX_PHANTOM_BIDDERS"
    )
    assert config.sources["phantom_auction.duration_ms"] == f"file {file}"
    assert config.sources["phantom_auction.bid_probability"] == "default"


@pytest.mark.parametrize(
    ("var", "text", "attribute", "expected"),
    [
        ("AUCTION_PHANTOM_AUCTION_BID_PROBABILITY", "0.4", "phantom_auction.bid_probability", 0.4),
        ("AUCTION_PHANTOM_AUCTION_DURATION_MS", "80", "phantom_auction.duration_ms", 80),
        ("AUCTION_PHANTOM_AUCTION_ENABLE_VCG", "false", "phantom_auction.enable_vcg", False),
        ("AUCTION_PHANTOM_AUCTION_MECHANISM", "uniform", "phantom_auction.mechanism", "uniform"),
        ("AUCTION_AUCTION_MECHANICS_FEE_WEIGHT", "0.5", "auction_mechanics.fee_weight", 0.5),
        ("AUCTION_SECURITY_BLOCK_BASE_S", "30", "security.block_base_s", 30.0),
        ("AUCTION_RESOURCES_WORKERS", "2", "resources.workers", 2),
        ("AUCTION_SERVICE_HOST", "0.0.0.0", "service.host", "0.0.0.0"),
    ],
)
def test_each_section_is_overridden_by_its_variable(
    var: str, text: str, attribute: str, expected: object
) -> None:
    config = load_config(env={var: text})
    section, key = attribute.split(".")
    assert getattr(getattr(config, section), key) == expected
    assert config.sources[attribute] == f"environment variable {var}"


def test_env_argument_replaces_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUCTION_PHANTOM_AUCTION_DURATION_MS", "80")
    assert load_config().phantom_auction.duration_ms == 80
    assert load_config(env={}).phantom_auction.duration_ms == 100


def _error(**kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load_config(**kwargs)  # type: ignore[arg-type]
    return err.value


def _assert_names(err: ConfigError, key: str, value: object, source: str) -> None:
    assert (err.key, err.source) == (key, source)
    if isinstance(value, float) and math.isnan(value):
        assert isinstance(err.value, float) and math.isnan(err.value)
    else:
        assert err.value == value
    assert key in str(err) and repr(value) in str(err) and source in str(err)


def test_unknown_key_in_file_and_in_environment(tmp_path: Path) -> None:
    file = _write(tmp_path, "[phantom_auction]\nduration = 80\n")
    _assert_names(_error(path=file, env={}), "phantom_auction.duration", 80, f"file {file}")
    var = "AUCTION_PHANTOM_AUCTION_DURATON_MS"
    err = _error(env={var: "80"})
    _assert_names(err, "phantom_auction.duraton_ms", 80, f"environment variable {var}")
    assert "unknown key" in str(err)


def test_unknown_section(tmp_path: Path) -> None:
    file = _write(tmp_path, "[auction]\nduration_ms = 80\n")
    err = _error(path=file, env={})
    assert (err.key, err.source) == ("auction", f"file {file}")
    err = _error(env={"AUCTION_NOPE_KEY": "1"})
    _assert_names(err, "AUCTION_NOPE_KEY", "1", "environment variable AUCTION_NOPE_KEY")


@pytest.mark.parametrize(
    ("var", "text", "key", "value"),
    [
        ("AUCTION_PHANTOM_AUCTION_DURATION_MS", "fast", "phantom_auction.duration_ms", "fast"),
        ("AUCTION_PHANTOM_AUCTION_DURATION_MS", "80.5", "phantom_auction.duration_ms", 80.5),
        ("AUCTION_PHANTOM_AUCTION_ENABLE_VCG", "1", "phantom_auction.enable_vcg", 1),
        ("AUCTION_SERVICE_HOST", "8080", "service.host", 8080),
        ("AUCTION_PHANTOM_AUCTION_MECHANISM", "dutch", "phantom_auction.mechanism", "dutch"),
    ],
)
def test_wrong_type_names_key_value_and_variable(
    var: str, text: str, key: str, value: object
) -> None:
    _assert_names(_error(env={var: text}), key, value, f"environment variable {var}")


def test_wrong_type_in_file(tmp_path: Path) -> None:
    file = _write(tmp_path, '[resources]\nworkers = "two"\n')
    _assert_names(_error(path=file, env={}), "resources.workers", "two", f"file {file}")


@pytest.mark.parametrize(
    ("var", "text", "key", "value"),
    [
        ("AUCTION_PHANTOM_AUCTION_BID_PROBABILITY", "1.5", "phantom_auction.bid_probability", 1.5),
        (
            "AUCTION_PHANTOM_AUCTION_BID_PROBABILITY",
            "nan",
            "phantom_auction.bid_probability",
            math.nan,
        ),
        ("AUCTION_PHANTOM_AUCTION_DURATION_MS", "0", "phantom_auction.duration_ms", 0),
        (
            "AUCTION_PHANTOM_AUCTION_MAX_PHANTOM_BIDDERS",
            "-1",
            "phantom_auction.max_phantom_bidders",
            -1,
        ),
        ("AUCTION_SERVICE_PORT", "70000", "service.port", 70000),
        ("AUCTION_SERVICE_RETENTION_DAYS", "-1.0", "service.retention_days", -1.0),
        ("AUCTION_RESOURCES_WORKERS", "0", "resources.workers", 0),
        ("AUCTION_SECURITY_NO_REVEAL_THRESHOLD", "0", "security.no_reveal_threshold", 0),
    ],
)
def test_out_of_range_names_key_value_and_variable(
    var: str, text: str, key: str, value: object
) -> None:
    _assert_names(_error(env={var: text}), key, value, f"environment variable {var}")


def test_inconsistent_values_name_the_offending_key() -> None:
    var = "AUCTION_PHANTOM_AUCTION_MIN_IMPROVEMENT_BPS"
    err = _error(env={var: "60"})
    _assert_names(err, "phantom_auction.min_improvement_bps", 60, f"environment variable {var}")
    assert "max_improvement_bps" in str(err)
    var = "AUCTION_PHANTOM_AUCTION_REVEAL_DELAY_MS"
    _assert_names(
        _error(env={var: "100"}),
        "phantom_auction.reveal_delay_ms",
        100,
        f"environment variable {var}",
    )


def test_mechanism_not_enabled(tmp_path: Path) -> None:
    var = "AUCTION_PHANTOM_AUCTION_MECHANISM"
    err = _error(env={var: "discriminatory"})
    _assert_names(err, "phantom_auction.mechanism", "discriminatory", f"environment variable {var}")
    assert "enable_discriminatory" in str(err)
    file = _write(tmp_path, '[phantom_auction]\nmechanism = "vcg"\nenable_vcg = false\n')
    err = _error(path=file, env={})
    assert err.source == f"file {file}" and "not enabled" in str(err)
    # Enabling it makes the same choice valid.
    file = _write(tmp_path, '[phantom_auction]\nmechanism = "discriminatory"\n')
    config = load_config(file, env={"AUCTION_PHANTOM_AUCTION_ENABLE_DISCRIMINATORY": "true"})
    assert config.phantom_auction.mechanism == "discriminatory"


def test_mechanism_not_enabled_is_blamed_with_other_overrides() -> None:
    var = "AUCTION_PHANTOM_AUCTION_MECHANISM"
    err = _error(env={"AUCTION_PHANTOM_AUCTION_DURATION_MS": "80", var: "discriminatory"})
    assert (err.key, err.value, err.source) == (
        "phantom_auction.mechanism",
        "discriminatory",
        f"environment variable {var}",
    )


def test_bad_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    err = _error(path=missing, env={})
    assert (err.key, err.value) == ("path", str(missing)) and "not found" in str(err)
    broken = _write(tmp_path, "[phantom_auction\nduration_ms = 80\n")
    err = _error(path=broken, env={})
    assert (err.key, err.value) == ("path", str(broken)) and "invalid TOML" in str(err)
    not_a_table = _write(tmp_path, "phantom_auction = 3\n")
    err = _error(path=not_a_table, env={})
    assert (err.key, err.value, err.source) == ("phantom_auction", 3, f"file {not_a_table}")


@pytest.mark.parametrize("kind", ["directory", "binary"])
def test_unreadable_file_is_a_config_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "conf.toml"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"\xff\xfe[phantom_auction]\n")
    err = _error(path=path, env={})
    assert err.key == "path"


@pytest.mark.parametrize(
    ("var", "text"),
    [
        ("AUCTION_PHANTOM_AUCTION_PHANTOM_IMPROVEMENT_MEAN_BPS", "nan"),
        ("AUCTION_AUCTION_MECHANICS_MAX_BID_VALUE_MULTIPLIER", "inf"),
        ("AUCTION_SECURITY_BLOCK_MAX_S", "inf"),
    ],
)
def test_non_finite_numbers_are_rejected(var: str, text: str) -> None:
    _error(env={var: text})


def test_mechanism_aliases_are_accepted() -> None:
    env = {"AUCTION_PHANTOM_AUCTION_MECHANISM": "second_price"}
    assert load_config(env=env).phantom_auction.mechanism == "vickrey"
    err = _error(env={"AUCTION_PHANTOM_AUCTION_MECHANISM": "dutch"})
    assert (err.key, err.value) == ("phantom_auction.mechanism", "dutch")


def test_engine_default_ignores_the_environment_drivers_honour_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sans-IO Auction falls back to the packaged defaults; run_auction (a driver)
    loads the user's configuration, AUCTION_* variables included."""
    from datetime import UTC, datetime, timedelta

    from phantom_auction import Auction, SettlementRequest, run_auction
    from phantom_auction.config import default_config

    monkeypatch.setenv("AUCTION_PHANTOM_AUCTION_MAX_PHANTOM_BIDDERS", "0")
    assert default_config() == load_config(env={})
    request = SettlementRequest(token_in=1, token_out=2, amount=1000.0)
    auction = Auction(request, 100.0, 1000.0, datetime.now(UTC) + timedelta(seconds=5))
    assert auction.config.phantom_auction.max_phantom_bidders == 20
    assert set(auction.config.sources.values()) == {"default"}
    # 20 phantom slots at probability 0.3 leave none in 0.08% of auctions: 0 slots, always.
    result = run_auction(request, 100.0, 1000.0, datetime.now(UTC) + timedelta(milliseconds=150))
    assert result.phantom_bids == ()
