"""The Bot API client against the local stand-in (real HTTP), and the one response checker."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from botkiln.infra.telegram_api import (
    BotApiClient,
    BotApiError,
    BotApiForbidden,
    BotApiRetryAfter,
    BotApiUnauthorized,
    BotApiUnreachable,
    check_response,
    redact,
)
from botkiln.infra.telegram_standin import BotApiStandIn
from tests.graphql.support import ServerThread

T = TypeVar("T")


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandIn]:
    made = BotApiStandIn(allow_local_webhooks=True)
    server = ServerThread()
    server.start(made.app)
    made.url = server.url
    yield made
    server.stop()


def call(base_url: str, token: str, work: Callable[[BotApiClient], Awaitable[T]]) -> T:
    async def run() -> T:
        async with httpx.AsyncClient() as http:
            return await work(BotApiClient(http, token, base_url=base_url))

    return asyncio.run(run())


def test_get_me_names_the_bot_behind_a_registered_token(standin: BotApiStandIn) -> None:
    bot = standin.register(username="me_bot", first_name="Me")
    me = call(standin.url, bot.token, lambda api: api.get_me())
    assert (me.id, me.username, me.first_name) == (bot.id, "me_bot", "Me")


def test_an_unknown_token_is_unauthorized_and_never_echoed(standin: BotApiStandIn) -> None:
    token = "123456789:" + "A" * 35
    with pytest.raises(BotApiUnauthorized) as caught:
        call(standin.url, token, lambda api: api.get_me())
    assert caught.value.error_code == 401 and str(caught.value) == "getMe (401): Unauthorized"
    assert token not in repr(caught.value)


def test_a_malformed_token_is_not_found(standin: BotApiStandIn) -> None:
    with pytest.raises(BotApiError) as caught:
        call(standin.url, "not-a-token", lambda api: api.get_me())
    assert caught.value.error_code == 404


def test_webhooks_are_set_read_and_deleted(standin: BotApiStandIn) -> None:
    bot = standin.register()

    async def work(api: BotApiClient) -> tuple[Any, Any]:
        await api.set_webhook("http://127.0.0.1:8000/wh/x", secret_token="s3cret_-token")
        set_ = await api.get_webhook_info()
        await api.delete_webhook()
        return set_, await api.get_webhook_info()

    after_set, after_delete = call(standin.url, bot.token, work)
    assert after_set.url == "http://127.0.0.1:8000/wh/x" and after_set.max_connections == 40
    assert bot.webhook.url == "" and after_delete.url == ""
    assert [name for name, _ in bot.calls] == ["setWebhook", "getWebhookInfo", "deleteWebhook", "getWebhookInfo"]


@pytest.mark.parametrize(
    ("url", "secret", "description"),
    [
        ("http://bots.example.com/wh/x", "ok", "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"),
        ("https://bots.example.com:9999/wh/x", "ok", "Bad Request: bad webhook: Webhook can be set up only on ports"),
        ("https://bots.example.com/wh/x", "no spaces allowed", "Bad Request: secret token contains unallowed"),
        ("https://bots.example.com/wh/x", "x" * 257, "Bad Request: secret token contains unallowed"),
    ],
    ids=["http", "port", "secret-characters", "secret-length"],
)
def test_set_webhook_checks_parameters_as_telegram_does(
    standin: BotApiStandIn, url: str, secret: str, description: str
) -> None:
    bot = standin.register()
    with pytest.raises(BotApiError) as caught:
        call(standin.url, bot.token, lambda api: api.set_webhook(url, secret_token=secret))
    assert caught.value.error_code == 400 and caught.value.description.startswith(description)
    assert bot.webhook.url == ""


def test_loopback_webhooks_are_refused_outside_test_mode() -> None:
    strict = BotApiStandIn(allow_local_webhooks=False)
    server = ServerThread()
    server.start(strict.app)
    try:
        bot = strict.register()
        with pytest.raises(BotApiError, match="HTTPS URL must be provided"):
            call(server.url, bot.token, lambda api: api.set_webhook("http://127.0.0.1/wh/x", secret_token="ok"))
    finally:
        server.stop()


def test_the_stand_in_reads_form_and_query_parameters(standin: BotApiStandIn) -> None:
    bot = standin.register()
    with httpx.Client(base_url=standin.url) as client:
        form = client.post(f"/bot{bot.token}/setWebhook", data={"url": "https://a.example/wh", "max_connections": "7",
                                                                "allowed_updates": '["message"]'})  # fmt: skip
        assert form.json() == {"ok": True, "result": True}
        info = client.get(f"/bot{bot.token}/getWebhookInfo").json()["result"]
        assert info["max_connections"] == 7 and info["allowed_updates"] == ["message"]
        unknown = client.get(f"/bot{bot.token}/sendSticker")
        assert unknown.status_code == 404 and unknown.json() == {"ok": False, "error_code": 404,
                                                                  "description": "Not Found"}  # fmt: skip


def test_a_revoked_token_stops_working(standin: BotApiStandIn) -> None:
    bot = standin.register()
    standin.revoke(bot.token)
    with pytest.raises(BotApiUnauthorized):
        call(standin.url, bot.token, lambda api: api.get_me())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_api_is_reported_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    token = "42:" + "B" * 35
    with pytest.raises(BotApiUnreachable) as caught:
        call(f"http://127.0.0.1:{_free_port()}", token, lambda api: api.get_me())
    assert token not in str(caught.value) and caught.value.__cause__ is None
    assert token not in caplog.text


def test_request_logs_are_redacted(standin: BotApiStandIn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    bot = standin.register()
    call(standin.url, bot.token, lambda api: api.get_me())
    assert "/bot<redacted>/getMe" in caplog.text and bot.token not in caplog.text


def _body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def test_check_response_translates_every_refusal() -> None:
    assert check_response("getMe", 200, _body({"ok": True, "result": {"id": 1}})) == {"id": 1}
    flood = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 5",
             "parameters": {"retry_after": 5}}  # fmt: skip
    with pytest.raises(BotApiRetryAfter) as retry:
        check_response("sendMessage", 429, _body(flood))
    assert retry.value.retry_after == 5
    with pytest.raises(BotApiForbidden):
        check_response("sendMessage", 403, _body({"ok": False, "error_code": 403, "description": "Forbidden: blocked"}))
    with pytest.raises(BotApiError) as bad:
        check_response("setWebhook", 400, _body({"ok": False, "error_code": 400, "description": "Bad Request: x"}))
    assert type(bad.value) is BotApiError and bad.value.error_code == 400
    with pytest.raises(BotApiUnreachable):
        check_response("getMe", 502, b"<html>Bad Gateway</html>")
    with pytest.raises(BotApiUnreachable):
        check_response("getMe", 200, _body([1, 2]))


def test_redact_hides_tokens_anywhere_in_a_text() -> None:
    assert (
        redact("POST https://api.telegram.org/bot123:AbC-_x/getMe")
        == "POST https://api.telegram.org/bot<redacted>/getMe"
    )
