"""Venue error codes read from Nautilus rejection reasons."""

from __future__ import annotations

import pytest

from hedgegrid_ops.grid.rejections import INSUFFICIENT_MARGIN, POST_ONLY_WOULD_TAKE, rejection_code


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("{'code': -2019, 'msg': 'Margin is insufficient.'}", INSUFFICIENT_MARGIN),
        ('{"code":-5022,"msg":"Due to the order could not be executed as maker"}', -5022),
        ("{'code': -1003, 'msg': 'Too many requests.'}", -1003),
        ("REJECTED", None),
        ("", None),
        (None, None),
        ("insufficient balance", None),
    ],
)
def test_rejection_code(reason: str | None, code: int | None) -> None:
    assert rejection_code(reason) == code


def test_constants_are_binance_codes() -> None:
    assert (POST_ONLY_WOULD_TAKE, INSUFFICIENT_MARGIN) == (-5022, -2019)
