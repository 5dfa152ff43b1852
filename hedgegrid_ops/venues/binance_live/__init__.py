"""Live trading on Binance USDT-M futures through NautilusTrader's own Binance adapter.

Laid out like a Nautilus adapter: ``credentials`` (keys from the environment),
``config`` (venue YAML -> adapter client configs), ``data`` / ``execution`` (thin
subclasses of the adapter's futures clients that add funding and connection
facts), ``factories`` (register them with a TradingNode), ``preflight`` (account
checks before anything trades) and ``monitor`` (venue connectivity for /health).

This init stays import-light: ``credentials`` is usable without Nautilus.
"""
