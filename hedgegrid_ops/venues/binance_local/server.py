"""The local exchange process: one aiohttp app serving REST, market and user
WebSockets and the admin (fault-injection) routes, plus the task that moves the
simulated market forward.

Thin by design: requests are authenticated and dispatched here, everything that
decides an outcome lives in the pure :mod:`.engine`, :mod:`.market` and
:mod:`.faults` modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import WSMsgType, web

from hedgegrid_ops.venues.binance_local import state as state_file
from hedgegrid_ops.venues.binance_local.admin import add_admin_routes
from hedgegrid_ops.venues.binance_local.auth import (
    Credentials,
    Security,
    check_api_key,
    check_signed,
)
from hedgegrid_ops.venues.binance_local.clock import ListenKeys, SimClock
from hedgegrid_ops.venues.binance_local.engine import AccountConfig, Engine
from hedgegrid_ops.venues.binance_local.errors import BinanceError, error
from hedgegrid_ops.venues.binance_local.faults import Faults
from hedgegrid_ops.venues.binance_local.hub import Conn, StreamHub
from hedgegrid_ops.venues.binance_local.market import (
    INTERVAL_MINUTES,
    FundingDue,
    KlineClosed,
    KlineRow,
    Market,
    TickEvent,
    klines,
)
from hedgegrid_ops.venues.binance_local.rest import ROUTES, Route
from hedgegrid_ops.venues.binance_local.spec import BTCUSDT
from hedgegrid_ops.venues.binance_local.wire import (
    agg_trade,
    book_ticker,
    kline_event,
    mark_price_event,
)
from hedgegrid_ops.venues.sim.process import MINUTE_NS, MinuteSource, PriceProcess
from hedgegrid_ops.venues.sim.replay import ReplayProcess, load_binance_klines

log = logging.getLogger("hedgegrid_ops.exchange")

DEFAULT_API_KEY = "local-api-key"
DEFAULT_API_SECRET = "local-api-secret"
# Events processed before the pump yields to the loop, so a fast market never
# starves request handling.
_PUMP_BATCH = 2_000
# Falling further behind than this (wall seconds of market) drops the backlog.
_MAX_LAG_SECONDS = 1.0
_IDLE_SLEEP = 0.25


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    """Everything ``python -m hedgegrid_ops exchange`` can set.

    ``speed`` is simulated minutes per wall second, as in paper mode (1/60 = real
    time). ``start_ns`` pins the simulated start (default: the wall clock floored
    to the minute); ``history_minutes`` of market are generated before it so
    kline history requests have data.
    """

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 7
    speed: float = 1.0 / 60.0
    initial_price: float = 60000.0
    ticks_per_minute: int = 60
    history_minutes: int = 240
    replay: Path | None = None
    state: Path | None = None
    start_ns: int | None = None
    api_key: str = DEFAULT_API_KEY
    api_secret: str = DEFAULT_API_SECRET
    admin_token: str | None = None
    account: AccountConfig = field(default_factory=AccountConfig)
    state_interval: float = 0.2


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class LocalExchange:
    """A Binance USDT-M futures exchange on a local port; ``await start()`` / ``stop()``."""

    def __init__(self, config: ExchangeConfig) -> None:
        self.config = config
        self.spec = BTCUSDT
        self.stream_symbol = BTCUSDT.symbol.lower()
        self.engine = Engine({BTCUSDT.symbol: BTCUSDT}, config.account)
        self.creds = Credentials(config.api_key, config.api_secret)
        self.admin_token = config.admin_token or secrets.token_urlsafe(24)
        self.faults = Faults()
        self.hub = StreamHub()
        self.listen_keys = ListenKeys()
        self.market: Market
        self.clock: SimClock
        self.requests = 0
        self.market_events = 0
        self._routes: dict[tuple[str, str], Route] = {(r.method, r.path): r for r in ROUTES}
        self._paths = {r.path for r in ROUTES}
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty = False
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> LocalExchange:
        cfg = self.config
        restored: list[KlineRow] = []
        if cfg.state is not None:
            data = await asyncio.to_thread(state_file.load, cfg.state)
            if data is not None:
                state_file.validate(self.engine, data, cfg.state)
                restored = state_file.restored_klines(data)
                log.info("state_restored path=%s", cfg.state)
        self.market, start_ns = await self._build_market(restored)
        self.clock = SimClock(start_ns, cfg.speed)
        self._sync_quote()
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_get("/stream", self._ws_market)
        app.router.add_get("/ws", self._ws_user)
        app.router.add_get("/ws/{key}", self._ws_user)
        add_admin_routes(app, self)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._pump(), name="exchange_pump"),
            loop.create_task(self._every_second(), name="exchange_mark"),
        ]
        if cfg.state is not None:
            self._tasks.append(loop.create_task(self._saver(), name="exchange_state"))
        return self

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.config.state is not None:
            state_file.save(
                self.config.state, state_file.snapshot(self.engine, self.market.history())
            )

    async def __aenter__(self) -> LocalExchange:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    def describe(self) -> dict[str, Any]:
        """The start-up line's content (no secret in it)."""
        return {
            "event": "exchange_listening",
            "rest_url": self.rest_url,
            "ws_url": self.ws_url,
            "admin_url": f"{self.rest_url}/admin",
            "api_key": self.creds.api_key,
            "symbols": list(self.engine.symbols),
            "seed": self.config.seed,
            "speed": self.config.speed,
            "replay": str(self.config.replay) if self.config.replay else None,
            "state": str(self.config.state) if self.config.state else None,
        }

    async def _build_market(self, restored: list[KlineRow]) -> tuple[Market, int]:
        cfg = self.config
        source: MinuteSource
        if cfg.replay is not None:
            rows = await asyncio.to_thread(load_binance_klines, cfg.replay)
            source = ReplayProcess(rows, ticks_per_minute=cfg.ticks_per_minute, seed=cfg.seed)
            market = Market(source)
            start_ns = market.start_ns
        else:
            now = cfg.start_ns if cfg.start_ns is not None else time.time_ns()
            start_ns = now - now % MINUTE_NS
            last_mark = self.engine.symbols[self.spec.symbol].mark
            # A restored exchange resumes from its last mark with its saved klines as
            # history (no artificial gap for open positions and resting orders);
            # a fresh one generates history_minutes of past market first.
            resume = bool(restored) and last_mark > 1
            history = 0 if resume else cfg.history_minutes
            source = PriceProcess(
                seed=cfg.seed,
                initial_price=float(last_mark) if resume else cfg.initial_price,
                start_ns=start_ns - history * MINUTE_NS,
                ticks_per_minute=cfg.ticks_per_minute,
            )
            market = Market(source)
            market.warm_up(start_ns)
            market.prepend_history(restored)
        if market.quote is None:
            first = market.next_event_ns()
            if first is not None:
                market.warm_up(first)
                start_ns = max(start_ns, first)
        return market, start_ns

    def now_ms(self) -> int:
        """Server time for REST answers and user events (the wall clock, like Binance)."""
        return wall_ms()

    def market_update_id(self) -> int:
        return self.market_events

    def _sync_quote(self) -> None:
        quote = self.market.quote
        if quote is not None:
            self.engine.on_quote(self.spec.symbol, quote, self.market.mark_price)

    # -- user stream delivery ------------------------------------------------------------------

    def flush(self) -> None:
        """Send the engine's pending user events to the active listenKey's sockets."""
        events = self.engine.drain()
        if not events:
            return
        self._dirty = True
        key = self.listen_keys.active
        if key is not None:
            self.hub.send_user(key, events)

    def close_user_streams(self, key: str | None = None) -> None:
        for conn in self.hub.user_conns(key):
            self.hub.remove(conn)
            asyncio.get_running_loop().create_task(conn.close())

    def expire_listen_key(self) -> str | None:
        """Tell the user stream its key expired (Binance's ``listenKeyExpired``) and forget it."""
        key = self.listen_keys.active
        if key is None:
            return None
        now = self.now_ms()
        self.hub.send_user(key, [{"e": "listenKeyExpired", "E": now, "listenKey": key}])
        self.listen_keys.revoke()
        return key

    # -- REST ----------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        self.requests += 1
        path, method = request.path, request.method
        delay = self.faults.delay_for(path, method)
        if delay:
            await asyncio.sleep(delay)
        failure = self.faults.take_failure(method, path)
        if failure is not None:
            return _error_response(failure)
        route = self._routes.get((method, path))
        if route is None:
            if path in self._paths:
                return _json({"code": -1000, "msg": f"Method {method} not allowed."}, 405)
            return _json({"code": -1099, "msg": f"Not found: {path}"}, 404)
        raw_body = ""
        params: dict[str, str] = dict(request.query)
        if request.content_type == "application/x-www-form-urlencoded" and request.can_read_body:
            raw_body = await request.text()
            params.update(parse_qsl(raw_body, keep_blank_values=True))
        try:
            self._authenticate(route, request, raw_body, params)
            body = route.handler(self, params)
        except BinanceError as exc:
            return _error_response(exc)
        except Exception:
            log.exception("handler_failed %s %s", method, path)
            return _error_response(error(-1000, status=500))
        finally:
            if route.mutates:
                self._dirty = True
                self.flush()
        return _json(body, 200)

    def _authenticate(
        self, route: Route, request: web.Request, raw_body: str, params: dict[str, str]
    ) -> None:
        if route.security is Security.NONE:
            return
        check_api_key(self.creds, request.headers.get("X-MBX-APIKEY"))
        if route.security is Security.SIGNED:
            check_signed(
                self.creds, request.rel_url.raw_query_string, raw_body, params, self.now_ms()
            )

    # -- WebSockets ----------------------------------------------------------------------------

    async def _ws_market(self, request: web.Request) -> web.StreamResponse:
        failure = self.faults.take_failure("GET", request.path)
        if failure is not None:
            return _error_response(failure)
        streams = [s for s in request.query.get("streams", "").split("/") if s]
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Conn(ws, "market")
        self.hub.add(conn)
        self.hub.subscribe(conn, streams)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_market_message(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    log.warning("ws_message_ignored reason=binary frame")
        finally:
            self.hub.remove(conn)
            await conn.close()
        return ws

    def _on_market_message(self, conn: Conn, text: str) -> None:
        """Handle SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS; ignore anything else."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            log.warning("ws_message_ignored reason=not JSON text=%.200s", text)
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            log.warning("ws_message_ignored reason=no method text=%.200s", text)
            return
        method, params, msg_id = msg["method"], msg.get("params", []), msg.get("id")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                log.warning("ws_message_ignored reason=bad params text=%.200s", text)
                return
            if method == "SUBSCRIBE":
                self.hub.subscribe(conn, params)
            else:
                self.hub.unsubscribe(conn, params)
            conn.put(orjson.dumps({"result": None, "id": msg_id}).decode())
        elif method == "LIST_SUBSCRIPTIONS":
            reply = {"result": sorted(conn.streams), "id": msg_id}
            conn.put(orjson.dumps(reply).decode())
        else:
            log.warning("ws_message_ignored reason=unknown method text=%.200s", text)

    async def _ws_user(self, request: web.Request) -> web.StreamResponse:
        failure = self.faults.take_failure("GET", "/ws")
        if failure is not None:
            return _error_response(failure)
        key = request.match_info.get("key") or request.query.get("listenKey") or ""
        if not self.listen_keys.is_valid(key, self.now_ms()):
            return _error_response(error(-1125))
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Conn(ws, "user", listen_key=key)
        self.hub.add(conn)
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    log.warning("ws_message_ignored reason=user stream is send-only")
        finally:
            self.hub.remove(conn)
            await conn.close()
        return ws

    # -- market --------------------------------------------------------------------------------

    async def _pump(self) -> None:
        """Advance the market to the clock's time, publish, match; sleep until the next event."""
        while True:
            if self.clock.paused:
                await asyncio.sleep(0.05)
                continue
            target = self.clock.now()
            processed = self.process_market(target, _PUMP_BATCH)
            if processed >= _PUMP_BATCH:
                behind = self.clock.now() - (self.market.now_ns or target)
                if behind > _MAX_LAG_SECONDS * self.clock.rate * 1e9:
                    log.warning("market_lagging rebased by %.1f simulated s", behind / 1e9)
                    self.clock.rebase(self.market.now_ns or target)
                await asyncio.sleep(0)
                continue
            nxt = self.market.next_event_ns()
            delay = _IDLE_SLEEP if nxt is None else min(_IDLE_SLEEP, self.clock.wall_delay(nxt))
            await asyncio.sleep(delay)

    def process_market(self, target_ns: int, limit: int | None = None) -> int:
        """Apply market events up to ``target_ns``: match, publish, settle funding."""
        events = self.market.advance(target_ns, limit)
        if not events:
            return 0
        now = self.now_ms()
        symbol, spec, lsym, hub, engine = (
            self.spec.symbol,
            self.spec,
            self.stream_symbol,
            self.hub,
            self.engine,
        )
        book_stream, trade_stream = f"{lsym}@bookTicker", f"{lsym}@aggTrade"
        for ev in events:
            if isinstance(ev, TickEvent):
                self.market_events += 1
                engine.on_quote(symbol, ev.quote, self.market.mark_price)
                engine.on_trade(symbol, ev.trade, now)
                ts_ms = ev.ts_ns // 1_000_000
                if hub.has_subscribers(book_stream):
                    hub.publish(book_stream, book_ticker(spec, ev.quote, ev.update_id, ts_ms))
                if hub.has_subscribers(trade_stream):
                    hub.publish(trade_stream, agg_trade(spec, ev.trade))
            elif isinstance(ev, KlineClosed):
                self._publish_klines(ev)
            elif isinstance(ev, FundingDue):
                engine.settle_funding(symbol, ev.rate, ev.mark, ev.ts_ns // 1_000_000, now)
        engine.expire_due(now)
        self.flush()
        return len(events)

    def _publish_klines(self, ev: KlineClosed) -> None:
        lsym = self.stream_symbol
        close_ms = ev.kline.close_ms + 1
        for interval, minutes in INTERVAL_MINUTES.items():
            stream = f"{lsym}@kline_{interval}"
            if not self.hub.has_subscribers(stream):
                continue
            if minutes == 1:
                row = ev.kline
            else:
                if close_ms % (minutes * 60_000):
                    continue
                rows = klines(self.market.history(), interval, None, None, 1)
                if not rows or rows[-1].close_ms + 1 != close_ms:
                    continue
                row = rows[-1]
            self.hub.publish(stream, kline_event(self.spec, row, interval, ev.ts_ns // 1_000_000))

    async def _every_second(self) -> None:
        """Mark price + funding once a wall second; GTD and listenKey expiry."""
        lsym = self.stream_symbol
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            now = self.now_ms()
            expired = self.listen_keys.due_expiry(now)
            if expired is not None:
                self.hub.send_user(
                    expired, [{"e": "listenKeyExpired", "E": now, "listenKey": expired}]
                )
            self.engine.expire_due(now)
            self.flush()
            if self.clock.paused:
                continue
            self.publish_mark(f"{lsym}@markPrice@1s")
            if tick % 3 == 0:
                self.publish_mark(f"{lsym}@markPrice")

    def publish_mark(self, stream: str) -> None:
        if not self.hub.has_subscribers(stream):
            return
        mark = self.market.mark_price
        if mark is None:
            return
        data = mark_price_event(
            self.spec,
            mark,
            self.market.funding_rate,
            self.market.next_funding_ns // 1_000_000,
            (self.market.now_ns or 0) // 1_000_000,
        )
        self.hub.publish(stream, data)

    async def _saver(self) -> None:
        path = self.config.state
        assert path is not None
        while True:
            await asyncio.sleep(self.config.state_interval)
            if not self._dirty:
                continue
            self._dirty = False
            data = state_file.snapshot(self.engine, self.market.history())
            try:
                await asyncio.to_thread(state_file.save, path, data)
            except OSError as exc:
                self._dirty = True
                log.error("state_save_failed path=%s error=%s", path, exc)


def _json(body: Any, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error_response(exc: BinanceError) -> web.Response:
    return _json(exc.body(), exc.status)
