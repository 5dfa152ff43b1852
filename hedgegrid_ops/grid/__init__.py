"""Pure grid maths: ladder, quantisation, throttle, regime, funding, exits, order diff,
kill-switch breakers.

Nothing in this package may import Nautilus: it works on ``Decimal`` prices and
quantities and ``float`` indicators only, so that every trading decision can be
unit and property tested without an engine. The strategy is a thin shell that
feeds events in and turns the results into orders.
"""
