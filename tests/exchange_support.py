"""Helpers for tests that talk to the local Binance exchange over real sockets.

``ExchangeProcess`` runs ``python -m hedgegrid_ops exchange`` as a subprocess and
reads its start-up line; ``BinanceRest`` signs requests exactly like a Binance
client (HMAC-SHA256 over the query string) using only the standard library, so
the tests exercise the exchange's own authentication.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yarl

from tests.support.program import ROOT
from tests.tools import stop_process

API_KEY = "local-api-key"
API_SECRET = "local-api-secret"


def request_url(
    base_url: str,
    path: str,
    params: dict[str, Any] | None,
    secret: str | None,
    timestamp_ms: int | None = None,
) -> str:
    """The URL a Binance client sends: with ``secret``, ``timestamp`` added and the
    HMAC-SHA256 ``signature`` of the encoded query appended last."""
    query = dict(params or {})
    if secret is not None:
        query["timestamp"] = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    text = urllib.parse.urlencode(query)
    if secret is not None:
        sig = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
        text = f"{text}&signature={sig}" if text else f"signature={sig}"
    return f"{base_url}{path}" + (f"?{text}" if text else "")


class BinanceRest:
    """Minimal synchronous Binance REST client (signing, JSON errors as values)."""

    def __init__(self, base_url: str, api_key: str = API_KEY, api_secret: str = API_SECRET) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.api_secret = api_secret

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        signed: bool = True,
        timestamp_ms: int | None = None,
        secret: str | None = None,
    ) -> tuple[int, Any]:
        url = request_url(
            self.base_url, path, params, secret or self.api_secret if signed else None, timestamp_ms
        )
        req = urllib.request.Request(url, method=method, headers={"X-MBX-APIKEY": self.api_key})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def ok(self, method: str, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        status, body = self.call(method, path, params, **kw)
        assert status == 200, (status, body)
        return body


def admin(base_url: str, token: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """POST (or GET for /admin/status) an admin route with the admin token."""
    data = None if body is None else json.dumps(body).encode()
    method = "GET" if path == "/admin/status" else "POST"
    req = urllib.request.Request(
        f"{base_url}{path}", data=data, method=method, headers={"X-Admin-Token": token}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


class ExchangeProcess:
    """The exchange as a subprocess; ``info`` is its parsed start-up line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self.startup_seconds = 0.0
        self.final_log: str | None = None

    def start(self, timeout: float = 20.0) -> ExchangeProcess:
        started = time.monotonic()
        # stderr goes to a file, not a pipe: an undrained pipe would block the
        # exchange once its log filled the pipe buffer.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            mode="w+", prefix="exchange-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hedgegrid_ops", "exchange", *self.args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=self.env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise AssertionError(f"exchange did not start: {self.stderr()[-2000:]}")
        self.startup_seconds = time.monotonic() - started
        self.info = json.loads(line)
        return self

    @property
    def rest(self) -> BinanceRest:
        return BinanceRest(self.info["rest_url"])

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return admin(self.info["rest_url"], self.info["admin_token"], path, body)

    def stderr(self) -> str:
        """What the exchange logged so far (kept after it stopped)."""
        if self.final_log is not None:
            return self.final_log
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (SIGKILL after 10 s); the log is read and its file removed."""
        assert self.proc is not None
        stop_process(self.proc)
        self._forget_log()
        return self.proc.returncode

    def _forget_log(self) -> None:
        if self.final_log is None:
            self.final_log = self.stderr()
            self.log.close()
            os.unlink(self.log.name)

    def __enter__(self) -> ExchangeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        self._forget_log()


class AsyncBinanceRest:
    """The same signing as :class:`BinanceRest` over an aiohttp session (for in-process tests)."""

    def __init__(
        self, session: Any, base_url: str, api_key: str = API_KEY, api_secret: str = API_SECRET
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.api_key = api_key
        self.api_secret = api_secret

    async def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        signed: bool = True,
        timestamp_ms: int | None = None,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        url = request_url(
            self.base_url, path, params, secret or self.api_secret if signed else None, timestamp_ms
        )
        hdrs = {"X-MBX-APIKEY": self.api_key} if headers is None else headers
        # encoded=True: send the bytes that were signed (yarl would re-quote them).
        async with self.session.request(method, yarl.URL(url, encoded=True), headers=hdrs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def ok(
        self, method: str, path: str, params: dict[str, Any] | None = None, **kw: Any
    ) -> Any:
        status, body = await self.call(method, path, params, **kw)
        assert status == 200, (status, body)
        return body
