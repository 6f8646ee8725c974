"""The apiCall performer against a real local HTTP server: allow-list, private hosts, deadline, caps, retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from botkiln.infra.http_api import HttpApi
from botkiln.interpreter.types import ApiRequest
from tests.graphql.support import ServerThread

HITS: dict[str, int] = {}
SEEN_HEADERS: dict[str, str] = {}


async def ok(request: Request) -> Response:
    SEEN_HEADERS.update(request.headers)
    return JSONResponse({"n": 1, "q": request.query_params.get("q")})


async def flaky(request: Request) -> Response:
    HITS["flaky"] = HITS.get("flaky", 0) + 1
    return PlainTextResponse("busy", status_code=503) if HITS["flaky"] < 3 else JSONResponse({"ok": True})


async def drip(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"a": "'
        for _ in range(40):
            await asyncio.sleep(0.1)
            yield b"x"
        yield b'"}'

    return StreamingResponse(body(), media_type="application/json")


async def big(request: Request) -> Response:
    return JSONResponse({"pad": "x" * 5000})


async def text(request: Request) -> Response:
    return PlainTextResponse("not json")


async def moved(request: Request) -> Response:
    return RedirectResponse("/ok", status_code=302)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    app = Starlette(routes=[Route(f"/{f.__name__}", f) for f in (ok, flaky, drip, big, text, moved)])
    thread = ServerThread()
    thread.start(app)
    yield thread.url
    thread.stop()


def _request(url: str, **overrides: Any) -> ApiRequest:
    request: ApiRequest = {
        "method": "GET", "url": url, "headers": {}, "body": None, "timeoutMs": 2000, "retries": 0,
        "backoffMs": 10, "maxResponseBytes": 65536,
    }  # fmt: skip
    request.update(overrides)  # type: ignore[typeddict-item]
    return request


def _api(**kwargs: Any) -> HttpApi:
    return HttpApi(allowed_domains=["127.0.0.1"], insecure_ok=True, **kwargs)


def test_an_allowed_json_answer_is_ok_and_secrets_fill_headers(server: str) -> None:
    api = _api(secrets={"KEY": "s3cr3t"})
    result = api.perform(_request(f"{server}/ok?q=1", headers={"X-Key": "Bearer {{secret.KEY}}"}))
    assert result == {"ok": True, "status": 200, "body": {"n": 1, "q": "1"}}
    assert SEEN_HEADERS["x-key"] == "Bearer s3cr3t"


def test_a_host_outside_the_allow_list_or_a_plain_http_url_is_forbidden(server: str) -> None:
    assert HttpApi(allowed_domains=["api.example.com"], insecure_ok=True).perform(_request(f"{server}/ok")) == {
        "ok": False, "error": "forbidden", "status": None,
    }  # fmt: skip
    assert HttpApi(allowed_domains=["127.0.0.1"]).perform(_request(f"{server}/ok"))["error"] == "forbidden"


def test_the_runtime_refuses_loopback_and_private_addresses_even_when_allow_listed(server: str) -> None:
    result = _api(private_ok=False).perform(_request(f"{server}/ok"))
    assert result == {"ok": False, "error": "forbidden", "status": None}
    for url in ("http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data", "http://[::1]/x"):
        guarded = HttpApi(allowed_domains=["10.0.0.1", "169.254.169.254", "::1"], insecure_ok=True, private_ok=False)
        assert guarded.perform(_request(url))["error"] == "forbidden", url


def test_a_server_dripping_bytes_cannot_hold_the_call_past_its_timeout(server: str) -> None:
    started = time.monotonic()
    result = _api().perform(_request(f"{server}/drip", timeoutMs=500))
    elapsed = time.monotonic() - started
    assert result == {"ok": False, "error": "timeout", "status": None}
    assert elapsed < 1.5  # the drip lasts 4 s; per-read timeouts alone would never fire


def test_size_cap_json_only_and_no_redirects(server: str) -> None:
    api = _api()
    assert api.perform(_request(f"{server}/big", maxResponseBytes=1024)) == {
        "ok": False, "error": "too_large", "status": 200,
    }  # fmt: skip
    assert api.perform(_request(f"{server}/text"))["error"] == "not_json"
    assert api.perform(_request(f"{server}/moved")) == {"ok": False, "error": "http", "status": 302}


def test_5xx_is_retried_with_backoff_up_to_the_requests_retries(server: str) -> None:
    HITS.clear()
    sleeps: list[float] = []
    api = _api(sleep=sleeps.append)
    assert api.perform(_request(f"{server}/flaky", retries=1)) == {"ok": False, "error": "http", "status": 503}
    assert HITS["flaky"] == 2 and sleeps == [0.01]
    HITS.clear()
    sleeps.clear()
    assert api.perform(_request(f"{server}/flaky", retries=3))["ok"] is True
    assert HITS["flaky"] == 3 and sleeps == [0.01, 0.02]
