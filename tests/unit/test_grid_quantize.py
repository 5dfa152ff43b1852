"""Quantisation and placeability: the last check before an order reaches the venue."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hedgegrid_ops.grid.quantize import is_placeable, quantize_price, quantize_qty, to_decimal
from hedgegrid_ops.grid.types import InstrumentRules

D = Decimal
RULES = InstrumentRules(
    tick_size=D("0.05"), step_size=D("0.001"), min_qty=D("0.002"), min_notional=D("5")
)


def test_quantize_price_directions() -> None:
    # 100.07 / 0.05 = 2001.4 ticks.
    assert quantize_price(D("100.07"), D("0.05")) == D("100.05")
    assert quantize_price(D("100.07"), D("0.05"), ROUND_FLOOR) == D("100.05")
    assert quantize_price(D("100.07"), D("0.05"), ROUND_CEILING) == D("100.10")


def test_quantize_price_default_is_half_even() -> None:
    # 2001.5 ticks -> 2002 (even); 2000.5 ticks -> 2000 (even).
    assert quantize_price(D("100.075"), D("0.05")) == D("100.10")
    assert quantize_price(D("100.025"), D("0.05")) == D("100.00")


def test_quantize_price_keeps_exact_multiples() -> None:
    assert quantize_price(D("29925.0"), D("0.1"), ROUND_FLOOR) == D("29925.0")
    assert quantize_price(D("29925.0"), D("0.1"), ROUND_CEILING) == D("29925.0")


@pytest.mark.parametrize("tick", [D(0), D("-0.1")])
def test_quantize_rejects_non_positive_units(tick: Decimal) -> None:
    with pytest.raises(ValueError):
        quantize_price(D(100), tick)
    with pytest.raises(ValueError):
        quantize_qty(D(1), tick)


def test_quantize_qty_rounds_down() -> None:
    assert quantize_qty(D("0.0129"), D("0.001")) == D("0.012")
    assert quantize_qty(D("0.012"), D("0.001")) == D("0.012")
    assert quantize_qty(D("0.0009"), D("0.001")) == D(0)
    assert quantize_qty(D("7.9"), D("2")) == D("6")


def test_to_decimal_uses_the_typed_value() -> None:
    assert to_decimal(0.1) == D("0.1")
    assert to_decimal(12.5) == D("12.5")
    with pytest.raises(ValueError):
        to_decimal(float("nan"))


def test_is_placeable_accepts_valid_order() -> None:
    # 100.05 * 0.050 = 5.0025 >= 5
    assert is_placeable(D("100.05"), D("0.050"), RULES)


@pytest.mark.parametrize(
    ("price", "qty", "why"),
    [
        (D("100.07"), D("0.050"), "price off tick"),
        (D("100.05"), D("0.0505"), "qty off step"),
        (D("100.05"), D("0.001"), "below min qty"),
        (D("100.00"), D("0.049"), "notional 4.9 below 5"),
        (D(0), D("0.050"), "zero price"),
        (D("-100.05"), D("0.050"), "negative price"),
        (D("100.05"), D(0), "zero qty"),
    ],
)
def test_is_placeable_rejects(price: Decimal, qty: Decimal, why: str) -> None:
    assert not is_placeable(price, qty, RULES), why


def test_is_placeable_max_qty() -> None:
    rules = InstrumentRules(D("0.1"), D("0.1"), D("0.1"), D(0), max_qty=D("2.0"))
    assert is_placeable(D(10), D("2.0"), rules)
    assert not is_placeable(D(10), D("2.1"), rules)


def test_is_placeable_exact_min_notional_boundary() -> None:
    # 100.00 * 0.050 = 5.000 exactly: the filter is ">=", so this is placeable.
    assert is_placeable(D("100.00"), D("0.050"), RULES)


def test_rules_validate() -> None:
    with pytest.raises(ValueError):
        InstrumentRules(D(0), D("0.1"), D(0), D(0))
    with pytest.raises(ValueError):
        InstrumentRules(D("0.1"), D(0), D(0), D(0))


TICKS = st.sampled_from([D("0.0001"), D("0.01"), D("0.05"), D("0.1"), D("1"), D("5")])
PRICES = st.decimals(min_value=D("0.0001"), max_value=D("1000000"), places=6)


@given(PRICES, TICKS)
def test_quantized_prices_are_multiples_within_one_tick(price: Decimal, tick: Decimal) -> None:
    down = quantize_price(price, tick, ROUND_FLOOR)
    up = quantize_price(price, tick, ROUND_CEILING)
    nearest = quantize_price(price, tick)
    for value in (down, up, nearest):
        assert value % tick == 0
    assert down <= price <= up
    assert up - down in (D(0), tick)
    assert down <= nearest <= up
    assert abs(nearest - price) <= tick / 2


@given(st.decimals(min_value=D(0), max_value=D(10000), places=8), TICKS)
def test_quantized_qty_is_largest_multiple_not_above(qty: Decimal, step: Decimal) -> None:
    result = quantize_qty(qty, step)
    assert result % step == 0
    assert result <= qty < result + step
