"""Live venue configs, key loading and the venue monitor: pure rules, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from hedgegrid_ops.config import (
    BinanceVenueConfig,
    ConfigError,
    VenueConfig,
    load_any_venue_config,
)
from hedgegrid_ops.venue_events import ConnectivityEvent
from hedgegrid_ops.venues.binance_live.credentials import (
    KEY_VARIABLES,
    MissingCredentials,
    load_credentials,
)
from hedgegrid_ops.venues.monitor import VenueMonitor
from tests.support.program import ROOT

VENUES = ROOT / "configs" / "venues"


@pytest.mark.parametrize(
    ("name", "environment"),
    [
        ("binance_testnet.yaml", "testnet"),
        ("binance_demo.yaml", "demo"),
        ("binance_futures.yaml", "live"),
        ("binance_local.yaml", "local"),
    ],
)
def test_shipped_live_configs_load(name: str, environment: str) -> None:
    venue = load_any_venue_config(VENUES / name)
    assert isinstance(venue, BinanceVenueConfig)
    assert venue.environment == environment
    assert venue.instruments == ["BTCUSDT-PERP.BINANCE"]
    assert not venue.confirm_live  # shipped files never pre-confirm mainnet
    text = (VENUES / name).read_text().lower()
    assert "api_key:" not in text and "secret:" not in text


def test_sim_config_still_loads_as_sim() -> None:
    assert isinstance(load_any_venue_config(VENUES / "sim.yaml"), VenueConfig)


def _variant(tmp_path: Path, old: str, new: str, name: str = "binance_local.yaml") -> Path:
    text = (VENUES / name).read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("environment: local", "environment: mainnet", "environment: Invalid enum value"),
        ("  leverage: 10", "  leverage: 200", "account.leverage: Expected `int` <= 125"),
        ("  margin_type: cross", "  margin_type: crossed", "account.margin_type"),
        ("  - BTCUSDT-PERP.BINANCE", "  - BTCUSDT.BINANCE", "instruments[0]"),
        ("http: http://127.0.0.1:18765", "http: ftp://x", "urls.http must start with"),
        ("ws_user: ws://127.0.0.1:18765", "ws_user: ws://h/", "no trailing slash"),
        ("on_stop: keep_exits", "on_stop: flatten", "on_stop"),
        ("kind: binance", "kind: binance\napi_key: abc", "unknown field `api_key`"),
        ("on_stop: keep_exits", "on_stop: keep_exits\nconfirm_live: true", "confirm_live only"),
    ],
)
def test_bad_live_config_names_the_field(tmp_path: Path, old: str, new: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_any_venue_config(_variant(tmp_path, old, new))
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_local_environment_needs_urls(tmp_path: Path) -> None:
    text = (VENUES / "binance_local.yaml").read_text()
    start, end = text.index("urls:"), text.index("account:")
    path = tmp_path / "v.yaml"
    path.write_text(text[:start] + text[end:])
    with pytest.raises(ConfigError, match="environment local needs urls"):
        load_any_venue_config(path)


@pytest.mark.parametrize("environment", sorted(KEY_VARIABLES))
def test_missing_key_names_the_variable(environment: str) -> None:
    key_var, secret_var = KEY_VARIABLES[environment]
    with pytest.raises(MissingCredentials, match=key_var):
        load_credentials(environment, env={})
    with pytest.raises(MissingCredentials, match=secret_var):
        load_credentials(environment, env={key_var: "k"})
    with pytest.raises(MissingCredentials, match=key_var):
        load_credentials(environment, env={key_var: "  ", secret_var: "s"})


def test_nautilus_variable_names() -> None:
    # The names NautilusTrader's Binance adapter reads for USDT-M futures.
    assert KEY_VARIABLES["live"] == ("BINANCE_API_KEY", "BINANCE_API_SECRET")
    assert KEY_VARIABLES["testnet"] == (
        "BINANCE_FUTURES_TESTNET_API_KEY",
        "BINANCE_FUTURES_TESTNET_API_SECRET",
    )
    assert KEY_VARIABLES["demo"] == ("BINANCE_DEMO_API_KEY", "BINANCE_DEMO_API_SECRET")


def test_credentials_never_format_their_values() -> None:
    creds = load_credentials(
        "testnet",
        env={
            "BINANCE_FUTURES_TESTNET_API_KEY": "KEY-0123456789",
            "BINANCE_FUTURES_TESTNET_API_SECRET": "SECRET-9876543210",
        },
    )
    assert creds.secrets() == ("KEY-0123456789", "SECRET-9876543210")
    for shown in (repr(creds), str(creds), f"{creds}", f"{creds!r}", repr([creds])):
        assert "KEY-0123456789" not in shown and "SECRET-9876543210" not in shown
        assert "BINANCE_FUTURES_TESTNET_API_KEY" in shown


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_monitor_market_data_gap() -> None:
    clock = FakeClock()
    monitor = VenueMonitor(max_data_gap=10.0, clock=clock)
    assert monitor.problem() is None  # just started
    clock.now += 11
    assert "since start-up" in (monitor.problem() or "")
    monitor.on_market_data()
    assert monitor.problem() is None
    clock.now += 10.5
    assert "no market data from the venue for 10s" in (monitor.problem() or "")
    monitor.on_market_data()
    assert monitor.problem() is None


def test_monitor_channel_down_then_up() -> None:
    clock = FakeClock()
    monitor = VenueMonitor(max_data_gap=10.0, clock=clock)
    monitor.on_market_data()
    monitor.on_connectivity(ConnectivityEvent("rest", True, "answering", 0))
    assert monitor.problem() is None
    monitor.on_connectivity(ConnectivityEvent("rest", False, "POST /fapi/v1/order 503", 0))
    clock.now += 3
    monitor.on_market_data()
    problem = monitor.problem() or ""
    assert problem.startswith("venue rest down for 3s") and "503" in problem
    monitor.on_connectivity(ConnectivityEvent("rest", True, "answering", 0))
    # Answering again, but a failure 3 s ago still shows for the hold (5 s).
    assert "venue rest failing (3s ago)" in (monitor.problem() or "")
    clock.now += 2.5
    monitor.on_market_data()
    assert monitor.problem() is None
    assert monitor.outages("rest") == 1
    monitor.on_connectivity(ConnectivityEvent("user_stream", False, "reconciling", 0))
    assert "user stream" in (monitor.problem() or "")
    monitor.on_connectivity(ConnectivityEvent("user_stream", True, "reconciled", 0))
    assert "venue user stream failing" in (monitor.problem() or "")
    clock.now += 5.1
    monitor.on_market_data()
    assert monitor.problem() is None
    assert monitor.outages("user_stream") == 1


@pytest.mark.parametrize(
    ("name", "legs_cannot_flip"),
    [("binance_local.yaml", True), ("binance_futures.yaml", True), ("sim.yaml", False)],
)
def test_only_a_hedge_mode_venue_keeps_legs_apart(name: str, legs_cannot_flip: bool) -> None:
    # Live, a leg that looks flipped halts trading; on the simulated venue it is closed.
    from hedgegrid_ops.node import _venue_behaviour

    behaviour = _venue_behaviour(load_any_venue_config(VENUES / name))
    assert behaviour.legs_cannot_flip is legs_cannot_flip
    assert behaviour.books_funding is legs_cannot_flip  # the same live/paper split
