"""The OpenAPI document matches the app: same routes, and real responses fit its schemas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from jsonschema import Draft202012Validator, ValidationError

from hedgegrid_ops.api import ERROR_CODES
from hedgegrid_ops.ops.bus import CommandBus
from hedgegrid_ops.ops.context import OpsContext
from hedgegrid_ops.ops.metrics import OpsMetrics
from hedgegrid_ops.ops.openapi import build_openapi
from hedgegrid_ops.ops.server import build_api_app
from hedgegrid_ops.ops.settings import OpsSettings
from hedgegrid_ops.ops.views import status_view
from hedgegrid_ops.snapshot import SnapshotStore, TradingState
from tests.support.inprocess import (
    API_KEY,
    NeverAnswers,
    Running,
    StateTarget,
    make_snapshot,
    serve_ops,
)

HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


def _routes(auth: bool) -> set[tuple[str, str]]:
    settings = OpsSettings(api_key=API_KEY if auth else None)
    ctx = OpsContext(
        settings, SnapshotStore(), CommandBus(), OpsMetrics("X"), lambda: True, swagger_dir=None
    )
    app = build_api_app(ctx)
    return {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


@pytest.mark.parametrize("auth", [False, True])
def test_spec_paths_are_exactly_the_registered_routes(auth: bool) -> None:
    assert _documented(build_openapi(auth_enabled=auth)) == _routes(auth)


def test_security_follows_the_key() -> None:
    open_doc = build_openapi(auth_enabled=False)
    assert "securitySchemes" not in open_doc["components"]
    for item in open_doc["paths"].values():
        for op in item.values():
            assert "401" not in op["responses"] and "security" not in op

    keyed = build_openapi(auth_enabled=True)
    scheme = keyed["components"]["securitySchemes"]["ApiKeyAuth"]
    assert (scheme["in"], scheme["name"]) == ("header", "X-API-Key")
    for path in ("/health", "/metrics", "/openapi.json", "/docs"):
        assert keyed["paths"][path]["get"]["security"] == []
        assert "401" not in keyed["paths"][path]["get"]["responses"]
    for path, method in (("/status", "get"), ("/flatten", "post")):
        op = keyed["paths"][path][method]
        assert op["security"] == [{"ApiKeyAuth": []}]
        assert "401" in op["responses"]


def test_document_is_openapi_31_and_all_refs_resolve() -> None:
    doc = build_openapi(auth_enabled=True)
    assert doc["openapi"] == "3.1.0"
    text = repr(doc)
    for ref in set(re.findall(r"'\$ref': '#/components/(\w+)/([\w-]+)'", text)):
        assert ref[1] in doc["components"][ref[0]], ref
    error_enum = doc["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
    assert sorted(error_enum) == sorted(c for codes in ERROR_CODES.values() for c in codes)


# ---- responses against schemas -----------------------------------------------------


def validate(doc: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    """Validate ``value`` against a schema of the document (its ``$ref``s resolve in ``doc``)."""
    root = {**schema, "components": doc["components"]}
    Draft202012Validator(root).validate(value)


def test_every_component_is_a_valid_closed_schema() -> None:
    doc = build_openapi(auth_enabled=True)
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        if schema.get("type") == "object":
            assert schema.get("additionalProperties") is False, name


def test_an_undeclared_response_field_fails_the_schema() -> None:
    doc = build_openapi(auth_enabled=False)
    status = msgspec.to_builtins(status_view(make_snapshot()))
    validate(doc, {"$ref": "#/components/schemas/Status"}, status)
    with pytest.raises(ValidationError, match="'surprise' was unexpected"):
        validate(doc, {"$ref": "#/components/schemas/Status"}, {**status, "surprise": 1})
    nested = {**status, "pnl": {**status["pnl"], "fees": 0.0}}
    with pytest.raises(ValidationError, match="'fees' was unexpected"):
        validate(doc, {"$ref": "#/components/schemas/Status"}, nested)
    with pytest.raises(ValidationError):
        validate(doc, {"$ref": "#/components/schemas/Ladders"}, {"timestamp": 1.0})
    with pytest.raises(ValidationError):
        validate(
            doc,
            {"$ref": "#/components/schemas/Error"},
            {"error": "nope", "detail": "", "request_id": ""},
        )


def test_error_responses_name_the_codes_of_their_status() -> None:
    doc = build_openapi(auth_enabled=True)
    for item in doc["paths"].values():
        for op in item.values():
            for status, response in op["responses"].items():
                media = response.get("content", {}).get("application/json", {})
                if "example" not in media:
                    continue
                assert media["example"]["error"] in ERROR_CODES[int(status)], (status, media)
                validate(doc, media["schema"], media["example"])
    unauthorized = doc["paths"]["/status"]["get"]["responses"]["401"]["content"]
    assert unauthorized["application/json"]["example"]["error"] == "unauthorized"
    with pytest.raises(ValidationError):
        body = {"error": "invalid_json", "detail": "x", "request_id": "r"}
        validate(doc, unauthorized["application/json"]["schema"], body)


async def _exchange(
    ops: Running, method: str, path: str, body: Any = None, key: str | None = API_KEY
) -> tuple[int, str, Any, Any]:
    headers = {"X-API-Key": key} if key else {}
    async with ops.http.request(method, ops.url + path, json=body, headers=headers) as resp:
        ctype = resp.content_type
        payload = await resp.json() if ctype == "application/json" else await resp.read()
        assert resp.headers.get("X-Request-ID")
        return resp.status, ctype, payload, resp.headers


async def _check(
    doc: dict[str, Any], ops: Running, method: str, path: str, template: str, **kw: Any
) -> int:
    status, ctype, payload, _ = await _exchange(ops, method, path, **kw)
    op = doc["paths"][template][method.lower()]
    assert str(status) in op["responses"], f"{method} {path} answered undocumented {status}"
    content = op["responses"][str(status)]["content"]
    assert ctype in content, f"{method} {path} {status}: {ctype} not in {list(content)}"
    if ctype == "application/json":
        validate(doc, content[ctype]["schema"], payload)
    return status


async def test_real_responses_match_the_document(tmp_path: Path) -> None:
    target = StateTarget(positions={"LONG": 0.1, "SHORT": 0.2})
    async with serve_ops(tmp_path, api_key=API_KEY, target=target) as ops:
        async with ops.http.get(ops.url + "/openapi.json") as resp:
            doc = await resp.json()
        assert doc == build_openapi(auth_enabled=True)  # served == built, round-tripped
        seen: set[tuple[str, str, int]] = set()

        async def check(method: str, path: str, template: str | None = None, **kw: Any) -> None:
            status = await _check(doc, ops, method, path, template or path, **kw)
            seen.add((method, template or path, status))

        for path in ("/status", "/ladders", "/orders", "/health"):
            await check("GET", path)  # no snapshot yet: 503
        ops.store.publish(make_snapshot())
        for path in ("/status", "/ladders", "/orders", "/health", "/metrics", "/openapi.json"):
            await check("GET", path)
        await check("GET", "/status", key=None)
        await check("GET", "/docs")
        await check("GET", "/docs/static/swagger-ui-bundle.js", "/docs/static/{filename}")
        await check("GET", "/docs/static/favicon-32x32.png", "/docs/static/{filename}")
        await check("GET", "/docs/static/../../etc/passwd", "/docs/static/{filename}")
        await check("GET", "/docs/static/secrets.txt", "/docs/static/{filename}")
        await check("POST", "/set-throttle", body={"throttle": 0.3})
        await check("POST", "/set-throttle", body={"throttle": 3})
        await check("POST", "/flatten", body={"side": "both"})
        await check("POST", "/flatten", body={"side": "sideways"})
        await check("POST", "/stop")
        await check("POST", "/stop", key="wrong")
        await check("POST", "/start")
        target.state = TradingState.HALTED
        await check("POST", "/start")
        await check("POST", "/flatten", body={"side": "long"})
        target.state = TradingState.RUNNING
        target.fail_with = RuntimeError("boom")
        await check("POST", "/stop")
        target.fail_with = None
        await check("POST", "/flatten", body={"side": "x" * 70_000})
        ops.store.publish(make_snapshot(trading_state=TradingState.HALTED))
        await check("GET", "/health")

    assert {s for m, p, s in seen if p == "/status"} == {200, 401, 503}
    assert {s for m, p, s in seen if p == "/flatten"} == {200, 400, 409, 413}
    assert {s for m, p, s in seen if p == "/docs/static/{filename}"} == {200, 404}


async def test_timeout_and_unavailable_match_the_document(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, target=None) as ops:
        doc = build_openapi(auth_enabled=False)
        assert await _check(doc, ops, "POST", "/start", "/start", key=None) == 503
    target = StateTarget(fail_with=NeverAnswers())
    async with serve_ops(tmp_path, target=target, command_timeout=0.1) as ops:
        assert await _check(doc, ops, "POST", "/stop", "/stop", key=None) == 504


# ---- Swagger UI ----------------------------------------------------------------------


async def test_docs_page_uses_only_local_assets(tmp_path: Path) -> None:
    async with serve_ops(tmp_path, api_key=API_KEY) as ops:
        async with ops.http.get(ops.url + "/docs") as resp:
            assert resp.status == 200
            html = await resp.text()
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert refs and all(r.startswith("/docs/static/") for r in refs), refs
        assert "http://" not in html and "https://" not in html
        assert 'url: "/openapi.json"' in html
        for ref in refs:
            async with ops.http.get(ops.url + ref) as resp:
                assert resp.status == 200, ref
                assert len(await resp.read()) > 0
        async with ops.http.get(ops.url + "/docs/static/swagger-ui-bundle.js") as resp:
            assert resp.content_type == "application/javascript"
            assert b"SwaggerUIBundle" in await resp.read()


async def test_docs_answer_503_when_swagger_ui_is_missing(tmp_path: Path) -> None:
    settings = OpsSettings(api_port=0)
    ctx = OpsContext(
        settings, SnapshotStore(), CommandBus(), OpsMetrics("X"), lambda: True, swagger_dir=None
    )
    app = build_api_app(ctx)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            for path in ("/docs", "/docs/static/swagger-ui.css"):
                async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
                    assert resp.status == 503
                    assert (await resp.json())["error"] == "unavailable"
    finally:
        await runner.cleanup()
