"""OpsService lifecycle: binding, real ports, clear start errors, idempotent stop; settings."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from hedgegrid_ops.api import EmptyRequest
from hedgegrid_ops.commands import Action, Actor, CommandUnavailable
from hedgegrid_ops.ops.server import build_api_app
from hedgegrid_ops.ops.service import OpsService, OpsStartError
from hedgegrid_ops.ops.settings import OpsSettings
from hedgegrid_ops.snapshot import SnapshotStore
from tests.support.inprocess import API_KEY, StateTarget, make_snapshot, serve_ops


def _service(settings: OpsSettings) -> OpsService:
    return OpsService(settings, SnapshotStore(), lambda: True)


async def test_busy_api_port_raises_one_clear_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = _service(OpsSettings(api_port=port, prometheus_port=0))
        with pytest.raises(OpsStartError) as err:
            await service.start()
    assert str(err.value) == f"cannot listen on 127.0.0.1:{port}: address already in use"
    await service.stop()  # harmless after a failed start


async def test_busy_metrics_port_releases_the_api_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            api_port = probe.getsockname()[1]
        service = _service(OpsSettings(api_port=api_port, prometheus_port=busy))
        with pytest.raises(OpsStartError, match=f"127.0.0.1:{busy}: address already in use"):
            await service.start()
    # The API listener opened first must have been closed again.
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", api_port))


async def test_unknown_host_is_a_start_error() -> None:
    service = _service(
        OpsSettings(host="192.0.2.123", api_port=0, prometheus_port=0, api_key="k" * 32)
    )
    with pytest.raises(OpsStartError, match=r"^cannot listen on 192\.0\.2\.123:0: "):
        await service.start()


async def test_reports_bound_ports_and_stops_idempotently(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, snapshot=make_snapshot()) as ops:
        service = ops.service
        port = service.api_port
        assert port > 0
        assert service.api_url == f"http://127.0.0.1:{port}"
        assert service.metrics_url == f"http://127.0.0.1:{port}/metrics"  # listener disabled
        await service.start()  # a second start changes nothing
        assert service.api_port == port
        async with ops.http.get(service.api_url + "/health") as resp:
            assert resp.status == 200
    await service.stop()  # already stopped by the context manager
    with pytest.raises(RuntimeError):
        _ = service.api_url
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"http://127.0.0.1:{port}/health")


async def test_service_can_restart_after_stop(tmp_path: Path) -> None:
    target = StateTarget()
    async with serve_ops(tmp_path, target=target) as ops:
        await ops.service.stop()
        await ops.service.start()
        status, body, _ = await ops.call("POST", "/set-throttle", body={"throttle": 0.4})
        assert (status, body["new_throttle"]) == (200, 0.4)


async def test_bus_is_started_by_the_service_and_closed_on_stop(tmp_path: Path) -> None:
    target = StateTarget()
    async with serve_ops(tmp_path, target=target) as ops:
        status, _, _ = await ops.call("POST", "/stop")
        assert status == 200
    with pytest.raises(CommandUnavailable):
        await ops.bus.submit(Action.STOP, EmptyRequest(), Actor("test"))


def test_settings_repr_never_shows_the_key() -> None:
    settings = OpsSettings(api_key=API_KEY)
    for text in (repr(settings), str(settings), f"{settings}", repr([settings])):
        assert API_KEY not in text
    assert "api_key='<set>'" in repr(settings)
    assert "api_key=None" in repr(OpsSettings())
    assert settings.auth_enabled and not OpsSettings().auth_enabled


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_port": -1},
        {"api_port": 70000},
        {"prometheus_port": True},
        {"api_port": 9000, "prometheus_port": 9000},
        {"max_bar_age": 0},
        {"command_timeout": -1.0},
        {"command_timeout": float("nan")},
        {"api_key": "  "},
        {"host": ""},
    ],
)
def test_settings_reject_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        OpsSettings(**kwargs)  # type: ignore[arg-type]


def test_settings_are_frozen() -> None:
    settings = OpsSettings()
    with pytest.raises(AttributeError):
        settings.api_key = "x"  # type: ignore[misc]


async def test_the_api_app_runs_its_background_tasks_for_its_lifetime() -> None:
    settings = OpsSettings(api_port=0)
    service = OpsService(settings, SnapshotStore(), lambda: True)
    target = StateTarget()
    service.bus.attach(target)
    runner = aiohttp.web.AppRunner(build_api_app(service.context))

    def lag_probes() -> float:  # probes run so far (the histogram's count)
        try:
            return float(service.metrics.loop_lag_probe.get({})["count"])
        except KeyError:
            return 0.0

    await asyncio.sleep(0.05)
    assert lag_probes() == 0
    await runner.setup()  # no socket: the app's lifecycle alone starts the tasks
    try:
        await asyncio.sleep(0.05)
        assert lag_probes() >= 2  # a probe every 5 ms
        result = await service.bus.submit(Action.STOP, EmptyRequest(), Actor("test"))
        assert result.status == "stopped" and [c[0] for c in target.calls] == ["stop"]
    finally:
        await runner.cleanup()
    stopped_at = lag_probes()
    await asyncio.sleep(0.05)
    assert lag_probes() == stopped_at  # the probe stopped with the app
    with pytest.raises(CommandUnavailable):
        await service.bus.submit(Action.STOP, EmptyRequest(), Actor("test"))
