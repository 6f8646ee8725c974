"""A local stand-in for the Telegram Bot API, for tests and the one-command mode.

A Starlette app (``BotApiStandIn().app``) served by uvicorn on a loopback port.
It answers ``/bot<token>/<method>`` the way Telegram does — status codes, the
``{"ok": false, "error_code", "description"}`` body, parameter checks — so the
real client and its one response checker (``infra/telegram_api.py``) are what
the tests exercise. Nothing here reaches the network.

Invariants:

- a token is known only once a test registered it (``register``); an unknown
  well-formed token gets 401 ``Unauthorized``, a malformed one 404 ``Not Found``;
- methods are a dispatch table (``BotApiStandIn.methods``): a handler takes the
  bot and its parameters and returns the ``result`` or raises ``ApiRefusal``.
  Later issues add messages, rate limits and fault injection as more entries and
  hooks, not as branches here;
- parameters arrive as a JSON body, an urlencoded form, or the query string, as
  Telegram accepts (multipart uploads come with the media methods); non-JSON
  transports carry arrays as JSON text;
- ``setWebhook`` enforces HTTPS on ports 80/88/443/8443, except for loopback
  hosts when ``allow_local_webhooks`` (the test mode), and a ``secret_token`` of
  1-256 characters from ``A-Za-z0-9_-``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from botkiln.infra.telegram_api import TOKEN

_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_WEBHOOK_PORTS = {80, 88, 443, 8443}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ApiRefusal(Exception):
    """A handler's refusal, answered as Telegram's error body."""

    def __init__(self, error_code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters


def bad_request(detail: str) -> ApiRefusal:
    """A 400 with Telegram's ``Bad Request: …`` wording."""
    return ApiRefusal(400, f"Bad Request: {detail}")


@dataclass
class Webhook:
    """A bot's webhook registration as the stand-in holds it."""

    url: str = ""
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None


@dataclass
class StandInBot:
    """A registered bot: its identity, token and webhook."""

    id: int
    username: str
    first_name: str
    token: str = field(repr=False)
    webhook: Webhook = field(default_factory=Webhook)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list, repr=False)


Handler = Callable[[StandInBot, dict[str, Any]], Any]


class BotApiStandIn:
    """The stand-in: registered bots plus a method table, served by ``app``."""

    def __init__(self, *, allow_local_webhooks: bool = True) -> None:
        self.allow_local_webhooks = allow_local_webhooks
        self.url = ""
        """Where the app is served, once whoever serves it says so (e.g. ``http://127.0.0.1:PORT``)."""
        self.bots: dict[str, StandInBot] = {}
        self.methods: dict[str, Handler] = {
            "getMe": self._get_me,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
        }
        self._lock = threading.Lock()
        self._next_id = 7_000_000_000 + secrets.randbelow(1_000_000)
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])

    def register(self, *, username: str | None = None, first_name: str = "Test bot") -> StandInBot:
        """A new bot with a fresh, valid token."""
        with self._lock:
            self._next_id += 1
            bot_id = self._next_id
        bot = StandInBot(
            id=bot_id,
            username=username or f"standin_{bot_id}_bot",
            first_name=first_name,
            token=f"{bot_id}:{secrets.token_urlsafe(27)[:35]}",
        )
        self.bots[bot.token] = bot
        return bot

    def revoke(self, token: str) -> None:
        """Forget a token, as @BotFather's /revoke does: later calls get 401."""
        self.bots.pop(token, None)

    async def _endpoint(self, request: Request) -> JSONResponse:
        token = request.path_params["token"]
        method = request.path_params["method"]
        if not TOKEN.match(token):
            return _error(ApiRefusal(404, "Not Found"))
        bot = self.bots.get(token)
        if bot is None:
            return _error(ApiRefusal(401, "Unauthorized"))
        handler = self.methods.get(method)
        if handler is None:
            return _error(ApiRefusal(404, "Not Found"))
        try:
            params = await _params(request)
            bot.calls.append((method, params))
            result = handler(bot, params)
            if isinstance(result, Awaitable):
                result = await result
        except ApiRefusal as refusal:
            return _error(refusal)
        return JSONResponse({"ok": True, "result": result})

    def _get_me(self, bot: StandInBot, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": bot.id,
            "is_bot": True,
            "first_name": bot.first_name,
            "username": bot.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _set_webhook(self, bot: StandInBot, params: dict[str, Any]) -> bool:
        url = _string(params, "url")
        if not url:
            bot.webhook = Webhook()
            return True
        self._check_webhook_url(url)
        secret = params.get("secret_token")
        if secret is not None and (not isinstance(secret, str) or not _SECRET_TOKEN.match(secret)):
            raise bad_request("secret token contains unallowed characters or has a wrong length")
        max_connections = _integer(params, "max_connections", 40)
        if not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        allowed = _json_param(params, "allowed_updates")
        if allowed is not None and not (isinstance(allowed, list) and all(isinstance(a, str) for a in allowed)):
            raise bad_request("can't parse allowed updates: an array of strings expected")
        bot.webhook = Webhook(url, secret, max_connections, allowed)
        return True

    def _check_webhook_url(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise bad_request("bad webhook: invalid URL") from None
        if not parts.hostname:
            raise bad_request("bad webhook: invalid URL")
        if self.allow_local_webhooks and parts.hostname in _LOOPBACK and parts.scheme in ("http", "https"):
            return
        if parts.scheme != "https":
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if (port or 443) not in _WEBHOOK_PORTS:
            raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")

    def _delete_webhook(self, bot: StandInBot, params: dict[str, Any]) -> bool:
        bot.webhook = Webhook()
        return True

    def _get_webhook_info(self, bot: StandInBot, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {"url": bot.webhook.url, "has_custom_certificate": False, "pending_update_count": 0}
        if bot.webhook.url:
            info["max_connections"] = bot.webhook.max_connections
            if bot.webhook.allowed_updates is not None:
                info["allowed_updates"] = bot.webhook.allowed_updates
        return info


def _error(refusal: ApiRefusal) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": refusal.error_code, "description": refusal.description}
    if refusal.parameters:
        body["parameters"] = refusal.parameters
    return JSONResponse(body, status_code=refusal.error_code)


async def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == "application/json":
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise bad_request("can't parse JSON object")
        params.update(body)
    elif request.method == "POST" and content_type == "application/x-www-form-urlencoded":
        params.update(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _string(params: dict[str, Any], name: str) -> str:
    value = params.get(name, "")
    if not isinstance(value, str):
        raise bad_request(f'field "{name}" must be of type String')
    return value


def _integer(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool):
        raise bad_request(f'field "{name}" must be of type Integer')
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise bad_request(f'field "{name}" must be of type Integer') from None


def _json_param(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON") from None
    return value
