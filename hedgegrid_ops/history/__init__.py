"""Fill and PnL history kept in the state directory (``GET /fills``, ``GET /pnl/daily``).

``store`` is the SQLite file and its writer thread (no Nautilus, no ops); ``recorder``
fills it from Nautilus's message bus; ``topics`` is what the strategy publishes for it.
"""
