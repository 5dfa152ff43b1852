"""Typed, frozen configuration loaded from YAML, with one-line errors.

Every field declared here is used by the program; an unknown key, a wrong type,
an out-of-range value or a missing file raises ``ConfigError`` naming the file
and the field, and the CLI turns that into exit code 2 before anything trades.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from hedgegrid_ops.grid.breakers import RiskLimits

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
UnitFloat = Annotated[float, msgspec.Meta(ge=0, le=1)]
Levels = Annotated[int, msgspec.Meta(ge=0, le=99)]


class ConfigError(Exception):
    """A configuration problem, already phrased as one line for the operator."""


class _Frozen(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every config section.

    msgspec passes ``frozen`` on to subclasses, but type checkers read each class's
    own keywords (dataclass_transform), so every subclass says ``frozen=True`` too.
    """


class GridSection(_Frozen, frozen=True):
    grid_step_bps: Annotated[float, msgspec.Meta(gt=0, le=1000)]
    grid_levels_long: Levels
    grid_levels_short: Levels
    base_qty: Annotated[str, msgspec.Meta(pattern=r"^\d+(\.\d+)?$")]
    qty_scale: Annotated[float, msgspec.Meta(ge=1.0, le=3.0)]
    recenter_trigger_bps: Annotated[float, msgspec.Meta(gt=0, le=5000)]

    def __post_init__(self) -> None:
        if Decimal(self.base_qty) <= 0:
            raise ValueError("base_qty must be > 0")
        if self.grid_levels_long + self.grid_levels_short == 0:
            raise ValueError("grid_levels_long and grid_levels_short cannot both be 0")


class ExitsSection(_Frozen, frozen=True):
    tp_steps: Annotated[int, msgspec.Meta(ge=1, le=50)]
    sl_steps: Annotated[int, msgspec.Meta(ge=1, le=200)] | None = None


class RegimeSection(_Frozen, frozen=True):
    ema_fast: Annotated[int, msgspec.Meta(ge=2, le=500)]
    ema_slow: Annotated[int, msgspec.Meta(ge=3, le=2000)]
    adx_period: Annotated[int, msgspec.Meta(ge=2, le=500)]
    adx_trend_on: Annotated[float, msgspec.Meta(gt=0, lt=100)]
    adx_trend_off: Annotated[float, msgspec.Meta(gt=0, lt=100)]
    counter_trend_level_fraction: UnitFloat

    def __post_init__(self) -> None:
        if self.ema_fast >= self.ema_slow:
            raise ValueError("ema_fast must be smaller than ema_slow")
        if self.adx_trend_off > self.adx_trend_on:
            raise ValueError("adx_trend_off must not exceed adx_trend_on (hysteresis)")


class FundingSection(_Frozen, frozen=True):
    window_minutes: Annotated[float, msgspec.Meta(gt=0, le=480)]
    threshold_bps: PositiveFloat
    scale_steps: Annotated[list[UnitFloat], msgspec.Meta(min_length=1, max_length=8)]

    def __post_init__(self) -> None:
        if any(b >= a for a, b in zip(self.scale_steps, self.scale_steps[1:], strict=False)):
            raise ValueError("scale_steps must be strictly decreasing")


class ThrottleSection(_Frozen, frozen=True):
    initial: UnitFloat
    passive_level_fraction: UnitFloat
    passive_step_multiplier: Annotated[float, msgspec.Meta(ge=1.0, le=10.0)]


Fraction = Annotated[float, msgspec.Meta(gt=0, le=1)]


class StaleDataSection(_Frozen, frozen=True):
    """What to do when no market data (quote, trade or bar) arrives for a while."""

    max_age_seconds: Annotated[float, msgspec.Meta(gt=0, le=86_400)]
    cancel_exits: bool  # also cancel take-profits/stop-losses (default keeps them working)
    resume_when_fresh: bool  # go back to running by itself once data flows again


class RiskSection(_Frozen, frozen=True):
    """Kill switch: each limit trips a flatten + halt; ``null`` switches that breaker off."""

    max_drawdown_fraction: Fraction | None  # equity below its session peak, 0.1 = 10 %
    max_session_loss_fraction: Fraction | None  # equity below the session start
    max_position_qty: Annotated[str, msgspec.Meta(pattern=r"^\d+(\.\d+)?$")] | None  # per side
    max_position_notional_usdt: Annotated[float, msgspec.Meta(gt=0, le=1e12)] | None  # per side
    max_margin_ratio: Annotated[float, msgspec.Meta(gt=0, le=100)] | None
    stale_data: StaleDataSection | None

    def __post_init__(self) -> None:
        if self.max_position_qty is not None and Decimal(self.max_position_qty) <= 0:
            raise ValueError("max_position_qty must be > 0")

    def limits(self) -> RiskLimits:
        """The section as the pure breaker module's ``RiskLimits``."""
        return RiskLimits(
            max_drawdown_fraction=self.max_drawdown_fraction,
            max_session_loss_fraction=self.max_session_loss_fraction,
            max_position_qty=(
                Decimal(self.max_position_qty) if self.max_position_qty is not None else None
            ),
            max_position_notional_usdt=self.max_position_notional_usdt,
            max_margin_ratio=self.max_margin_ratio,
            max_data_age_seconds=(
                self.stale_data.max_age_seconds if self.stale_data is not None else None
            ),
        )


class StrategyConfig(_Frozen, frozen=True):
    """configs/strategies/hedge_grid_v1.yaml"""

    strategy_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]+-[A-Za-z0-9]+$")]
    instrument_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]+-PERP\.[A-Z]+$")]
    bar_type: str
    grid: GridSection
    exits: ExitsSection
    regime: RegimeSection
    funding: FundingSection
    throttle: ThrottleSection
    risk: RiskSection

    def __post_init__(self) -> None:
        if not self.bar_type.startswith(f"{self.instrument_id}-1-MINUTE-"):
            raise ValueError("bar_type must be a 1-minute bar type of instrument_id")


# Upper bounds keep `.inf`, `1e400` and 20-digit seeds out: each would pass "> 0" and
# then crash deep inside Nautilus (Money overflow, a 64-bit seed) with a traceback.
MAX_BALANCE_USDT = 1e12
MAX_PRICE = 1e9
MAX_SEED = 2**63 - 1


class AccountSection(_Frozen, frozen=True):
    starting_balance_usdt: Annotated[float, msgspec.Meta(gt=0, le=MAX_BALANCE_USDT)]
    leverage: Annotated[int, msgspec.Meta(ge=1, le=125)]


class MarketSection(_Frozen, frozen=True):
    seed: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEED)]
    speed: Annotated[float, msgspec.Meta(gt=0, le=3600)]
    initial_price: Annotated[float, msgspec.Meta(gt=0, le=MAX_PRICE)]
    ticks_per_minute: Annotated[int, msgspec.Meta(ge=2, le=600)]
    # Optional: range of the quoted top-of-book sizes in BTC (min, max).
    book_top_btc: tuple[PositiveFloat, PositiveFloat] = (0.2, 8.0)

    def __post_init__(self) -> None:
        low, high = self.book_top_btc
        if low > high:
            raise ValueError("book_top_btc: min must not exceed max")


class VenueConfig(_Frozen, frozen=True):
    """configs/venues/sim.yaml: the embedded offline market with Nautilus's Sandbox execution."""

    kind: Literal["sim"]
    venue: Literal["BINANCE"]
    account: AccountSection
    market: MarketSection


BinanceEnvironment = Literal["live", "testnet", "demo", "local"]
_URL_SCHEMES = {"http": ("http://", "https://"), "ws": ("ws://", "wss://")}


def _check_url(field: str, value: str, kind: str) -> None:
    if not value.startswith(_URL_SCHEMES[kind]) or value.endswith("/"):
        schemes = " or ".join(_URL_SCHEMES[kind])
        raise ValueError(f"{field} must start with {schemes} and have no trailing slash")


class BinanceUrls(_Frozen, frozen=True):
    """Endpoint overrides; the adapter's defaults for the environment apply when unset.

    ``ws_user`` is the user-data stream base (the adapter appends ``/ws?listenKey=``);
    it is separate from ``ws_market`` because Binance routes them differently.
    """

    http: str
    ws_market: str
    ws_user: str

    def __post_init__(self) -> None:
        _check_url("urls.http", self.http, "http")
        _check_url("urls.ws_market", self.ws_market, "ws")
        _check_url("urls.ws_user", self.ws_user, "ws")


class LiveAccountSection(_Frozen, frozen=True):
    leverage: Annotated[int, msgspec.Meta(ge=1, le=125)]
    margin_type: Literal["cross", "isolated"]


class BinanceVenueConfig(_Frozen, frozen=True):
    """configs/venues/binance_*.yaml: live trading through NautilusTrader's Binance adapter.

    Holds where to connect and how the account is set up, never credentials: keys
    come from environment variables named after ``environment`` (see
    ``hedgegrid_ops.venues.binance_live.credentials``).
    """

    kind: Literal["binance"]
    venue: Literal["BINANCE"]
    environment: BinanceEnvironment
    account: LiveAccountSection
    instruments: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]+-PERP\.BINANCE$")]],
        msgspec.Meta(min_length=1, max_length=10),
    ]
    urls: BinanceUrls | None = None
    # Mainnet only: true has the same effect as --confirm-live. Leave false in shared
    # files so that trading real money always takes a deliberate step.
    confirm_live: bool = False
    # What a stop (SIGTERM/Ctrl-C) leaves at the exchange: grid orders are always
    # cancelled; "keep_exits" leaves take-profit/stop orders working on the open
    # positions, "cancel_all" cancels them too. Positions are never closed by a stop.
    on_stop: Literal["keep_exits", "cancel_all"] = "keep_exits"
    # /health turns degraded when no market data arrived from the venue for this long.
    max_data_gap_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 15.0
    # A REST call with no answer after this long is abandoned (the adapter has no timeout);
    # an order sent by it stays in flight until Nautilus's in-flight check resolves it.
    rest_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0

    def __post_init__(self) -> None:
        if self.environment == "local" and self.urls is None:
            raise ValueError("environment local needs urls (http, ws_market, ws_user)")
        if len(set(self.instruments)) != len(self.instruments):
            raise ValueError("instruments must not repeat")
        if self.confirm_live and self.environment != "live":
            raise ValueError("confirm_live only applies to environment live (mainnet)")

    @property
    def is_mainnet(self) -> bool:
        return self.environment == "live"


AnyVenueConfig = VenueConfig | BinanceVenueConfig


def _load[C: msgspec.Struct](path: Path, kind: type[C]) -> C:
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"{path}: invalid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return msgspec.convert(raw, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {_field_message(str(exc))}") from None


def _field_message(message: str) -> str:
    """Turn msgspec's "problem - at `$.a.b`" into "a.b: problem"."""
    problem, sep, where = message.rpartition(" - at `")
    if not sep:
        return message
    field = where.rstrip("`").removeprefix("$").lstrip(".")
    return f"{field}: {problem}" if field else problem


def load_strategy_config(path: Path) -> StrategyConfig:
    return _load(path, StrategyConfig)


def load_venue_config(path: Path) -> VenueConfig:
    return _load(path, VenueConfig)


def load_any_venue_config(path: Path) -> AnyVenueConfig:
    """Load a sim or a live venue config, chosen by its ``kind`` key."""
    kind = _load(path, _VenueKind).kind
    if kind == "binance":
        return _load(path, BinanceVenueConfig)
    return _load(path, VenueConfig)


class _VenueKind(msgspec.Struct, frozen=True):
    kind: Literal["sim", "binance"]
