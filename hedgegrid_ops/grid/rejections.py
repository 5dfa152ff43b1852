"""What a venue rejection means for the grid, read from the rejection's reason text.

NautilusTrader's Binance adapter turns a refused order into ``OrderRejected`` whose
reason is the venue's error payload as text, e.g.
``{'code': -2019, 'msg': 'Margin is insufficient.'}``. The strategy reacts to two
codes: post-only would take (-5022: re-priced on the next bar, never retried at
once) and insufficient margin (-2019: counted and logged once per bar). Pure: no
Nautilus, no I/O.
"""

from __future__ import annotations

import re

POST_ONLY_WOULD_TAKE = -5022
INSUFFICIENT_MARGIN = -2019

_CODE = re.compile(r"""['"]code['"]\s*:\s*(-?[0-9]+)""")


def rejection_code(reason: str | None) -> int | None:
    """The venue error code inside a rejection reason, or None when there is none."""
    if not reason:
        return None
    match = _CODE.search(reason)
    return int(match.group(1)) if match else None
