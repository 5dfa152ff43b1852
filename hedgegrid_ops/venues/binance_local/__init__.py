"""A local Binance USDT-M futures exchange (REST + WebSocket) for rehearsals and tests.

``engine``, ``market``, ``spec``, ``wire``, ``auth``, ``faults`` and ``state`` are
pure (no aiohttp, no asyncio); ``server``, ``hub``, ``rest`` and ``admin`` are the
thin HTTP/WebSocket layer; ``cli`` is ``python -m hedgegrid_ops exchange``.
Nothing here imports Nautilus: the exchange starts in well under a second.
"""
