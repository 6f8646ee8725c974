"""A local stand-in for the Telegram Bot API, for tests and the one-command mode.

A Starlette app (``BotApiStandIn().app``) served by uvicorn on a loopback port.
It answers ``/bot<token>/<method>`` the way Telegram does — status codes, the
``{"ok": false, "error_code", "description", "parameters"}`` body, parameter
checks, flood limits — so the real client and its one response checker
(``infra/telegram_api.py``) are what the tests exercise. Nothing here reaches
the network except the webhook URLs tests register.

Invariants:

- a token is known only once a test registered it (``register``); an unknown
  well-formed token gets 401 ``Unauthorized``, a malformed one 404 ``Not Found``;
- methods are a dispatch table (``BotApiStandIn.methods``): a handler takes the
  bot and its parameters and returns the ``result`` or raises ``ApiRefusal``;
  the message methods live in ``telegram_standin_messages``, the checks and
  their exact descriptions in ``telegram_standin_checks``;
- every call of a registered bot is recorded (``calls(bot)``), faults included;
- faults (``bot.faults``: dropped connections, delays, 5xx, 429 storms) are
  applied after the parameters are read and before the handler runs;
- a chat exists for a bot only once its user wrote (``send_update``) or a test
  opened it (``open_chat``); message ids increase per chat, shared by the
  user's and the bot's messages, as in Telegram;
- ``setWebhook`` enforces HTTPS on ports 80/88/443/8443, except for loopback
  hosts when ``allow_local_webhooks`` (the test mode), and a ``secret_token`` of
  1-256 characters from ``A-Za-z0-9_-``;
- the user side (``send_update``) POSTs to the webhook with
  ``X-Telegram-Bot-Api-Secret-Token`` and retries non-2xx answers and network
  failures with exponential backoff (``DeliveryPolicy``); an update never
  delivered stays pending (``getWebhookInfo.pending_update_count``).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from botkiln.infra import telegram_standin_messages as messages
from botkiln.infra.telegram_api import TOKEN
from botkiln.infra.telegram_standin_checks import (
    ApiRefusal,
    bad_request,
    flood,
    integer,
    json_param,
    read_params,
    string,
)
from botkiln.infra.telegram_standin_limits import Clock, Faults, RateLimiter, RateLimits
from botkiln.infra.telegram_standin_messages import ChatState
from botkiln.infra.telegram_standin_updates import Update, update_kind

__all__ = [
    "ApiRefusal", "BotApiStandIn", "CallRecord", "ChatState", "Delivery", "DeliveryPolicy", "Faults", "RateLimits",
    "StandInBot", "Webhook", "bad_request",
]  # fmt: skip

_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_WEBHOOK_PORTS = {80, 88, 443, 8443}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 -- a header name, not a secret


@dataclass
class Webhook:
    """A bot's webhook registration as the stand-in holds it."""

    url: str = ""
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(frozen=True)
class CallRecord:
    """One call as the stand-in saw it: ``result`` when it succeeded, else ``error_code`` and ``description``."""

    method: str
    params: dict[str, Any]
    at: float
    result: Any = None
    error_code: int | None = None
    description: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the call was answered ``{"ok": true}``."""
        return self.error_code is None and self.description is None


@dataclass(frozen=True)
class DeliveryPolicy:
    """How the user side retries a webhook: ``attempts`` in all, waiting ``first_delay_s`` × ``factor``ⁿ between."""

    attempts: int = 5
    first_delay_s: float = 0.05
    factor: float = 2.0
    timeout_s: float = 5.0


@dataclass
class Delivery:
    """What became of one update: each attempt's HTTP status (or network error name), and whether it arrived."""

    update: Update
    attempts: list[int | str] = field(default_factory=list)
    delivered: bool = False


@dataclass
class StandInBot:
    """A registered bot: its identity, token, webhook, chats and what happened to it."""

    id: int
    username: str
    first_name: str
    token: str = field(repr=False)
    webhook: Webhook = field(default_factory=Webhook)
    faults: Faults = field(default_factory=Faults, repr=False)
    records: list[CallRecord] = field(default_factory=list, repr=False)
    chats: dict[int, ChatState] = field(default_factory=dict, repr=False)
    files: set[str] = field(default_factory=set, repr=False)
    callbacks: dict[str, dict[str, Any] | None] = field(default_factory=dict, repr=False)
    """Callback query ids sent to the bot → the bot's answer (None until answered)."""
    pending: list[Update] = field(default_factory=list, repr=False)
    deliveries: list[Delivery] = field(default_factory=list, repr=False)
    next_update_id: int = field(default_factory=lambda: 100_000_000 + secrets.randbelow(100_000_000), repr=False)

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """``(method, params)`` of every call, oldest first."""
        return [(record.method, record.params) for record in self.records]

    def user(self) -> dict[str, Any]:
        """The bot as a Telegram ``User`` (``from`` of its messages)."""
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}


Handler = Callable[[StandInBot, dict[str, Any]], Any]


class _NoAnswer(Response):
    """The response of a dropped connection: nothing is sent."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


class BotApiStandIn:
    """The stand-in: registered bots plus a method table, served by ``app``."""

    def __init__(
        self,
        *,
        allow_local_webhooks: bool = True,
        limits: RateLimits | None = None,
        clock: Clock = time.monotonic,
        delivery: DeliveryPolicy | None = None,
    ) -> None:
        self.allow_local_webhooks = allow_local_webhooks
        self.url = ""
        """Where the app is served, once whoever serves it says so (e.g. ``http://127.0.0.1:PORT``)."""
        self.bots: dict[str, StandInBot] = {}
        self.limiter = RateLimiter(limits, clock=clock)
        self.delivery = delivery or DeliveryPolicy()
        self.lock = threading.Lock()
        """Guards bots' chats, files and callbacks: the app's thread and the test's thread both change them."""
        self.methods: dict[str, Handler] = {
            "getMe": self._get_me,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            **messages.handlers(self.limiter, self.lock),
        }
        self._next_id = 7_000_000_000 + secrets.randbelow(1_000_000)
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])

    def register(self, *, username: str | None = None, first_name: str = "Test bot") -> StandInBot:
        """A new bot with a fresh, valid token."""
        with self.lock:
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

    def calls(self, bot: StandInBot | str, method: str | None = None) -> list[CallRecord]:
        """Every call of ``bot`` (or its token), oldest first; only ``method``'s when given."""
        found = bot if isinstance(bot, StandInBot) else self.bots[bot]
        return [record for record in list(found.records) if method is None or record.method == method]

    def open_chat(self, bot: StandInBot, chat: dict[str, Any]) -> ChatState:
        """Make ``chat`` (a Telegram ``Chat``) known to ``bot``, as a first message from it would."""
        with self.lock:
            return messages.open_chat(bot.chats, chat)

    def block(self, bot: StandInBot, chat_id: int, *, blocked: bool = True) -> None:
        """The user blocks the bot (or, for a group, kicks it): sending there is then 403."""
        with self.lock:
            bot.chats[chat_id].blocked = blocked

    def send_update(self, bot: StandInBot, update: Update) -> Delivery:
        """Complete ``update`` (ids, dates, chat history) and POST it to the webhook, retrying like Telegram."""
        delivery, to_webhook = self._prepare(bot, update)
        if not to_webhook:
            return delivery
        delay = self.delivery.first_delay_s
        with httpx.Client(timeout=self.delivery.timeout_s) as http:
            for attempt in range(self.delivery.attempts):
                if attempt:
                    time.sleep(delay)
                    delay *= self.delivery.factor
                try:
                    response = http.post(bot.webhook.url, json=delivery.update, headers=self._headers(bot))
                except httpx.HTTPError as exc:
                    self._attempted(bot, delivery, type(exc).__name__)
                    continue
                if self._attempted(bot, delivery, response.status_code):
                    break
        return delivery

    async def asend_update(self, bot: StandInBot, update: Update) -> Delivery:
        """``send_update`` for async callers."""
        delivery, to_webhook = self._prepare(bot, update)
        if not to_webhook:
            return delivery
        delay = self.delivery.first_delay_s
        async with httpx.AsyncClient(timeout=self.delivery.timeout_s) as http:
            for attempt in range(self.delivery.attempts):
                if attempt:
                    await asyncio.sleep(delay)
                    delay *= self.delivery.factor
                try:
                    response = await http.post(bot.webhook.url, json=delivery.update, headers=self._headers(bot))
                except httpx.HTTPError as exc:
                    self._attempted(bot, delivery, type(exc).__name__)
                    continue
                if self._attempted(bot, delivery, response.status_code):
                    break
        return delivery

    def _prepare(self, bot: StandInBot, update: Update) -> tuple[Delivery, bool]:
        """The completed update's delivery, and whether it goes to a webhook (not filtered out, a webhook set)."""
        with self.lock:
            completed = messages.complete_update(bot, update)
            completed = {"update_id": bot.next_update_id, **completed}
            bot.next_update_id += 1
            delivery = Delivery(completed)
            allowed = bot.webhook.allowed_updates
            if allowed and update_kind(completed) not in allowed:
                return delivery, False
            bot.pending.append(completed)
            bot.deliveries.append(delivery)
            return delivery, bool(bot.webhook.url)

    def _headers(self, bot: StandInBot) -> dict[str, str]:
        return {SECRET_HEADER: bot.webhook.secret_token} if bot.webhook.secret_token else {}

    def _attempted(self, bot: StandInBot, delivery: Delivery, outcome: int | str) -> bool:
        """Note one attempt's ``outcome``; whether the update is now delivered."""
        delivery.attempts.append(outcome)
        if isinstance(outcome, int) and 200 <= outcome < 300:
            delivery.delivered = True
            with self.lock:
                bot.pending = [u for u in bot.pending if u["update_id"] != delivery.update["update_id"]]
            return True
        bot.webhook.last_error_date = int(time.time())
        if isinstance(outcome, int):
            phrase = HTTPStatus(outcome).phrase if outcome in HTTPStatus._value2member_map_ else ""
            bot.webhook.last_error_message = f"Wrong response from the webhook: {outcome} {phrase}".rstrip()
        else:
            bot.webhook.last_error_message = f"Connection failed: {outcome}"
        return False

    async def _endpoint(self, request: Request) -> Response:
        token = request.path_params["token"]
        method = request.path_params["method"]
        if not TOKEN.match(token):
            return _error(ApiRefusal(404, "Not Found"))
        bot = self.bots.get(token)
        if bot is None:
            return _error(ApiRefusal(401, "Unauthorized"))
        at = time.time()
        params: dict[str, Any] = {}
        try:
            handler = self.methods.get(method)
            if handler is None:
                raise ApiRefusal(404, "Not Found")
            params = await read_params(request)
            if bot.faults.delay_ms and bot.faults.applies(method):
                await asyncio.sleep(bot.faults.delay_ms / 1000)
            fault = bot.faults.take(method)
            if fault == "drop":
                bot.records.append(CallRecord(method, params, at, description="connection dropped"))
                return await _drop(request)
            if fault == "fail":
                raise ApiRefusal(bot.faults.fail_status, bot.faults.fail_description)
            if fault == "storm":
                raise flood(bot.faults.storm_retry_after)
            result = handler(bot, params)
            if isinstance(result, Awaitable):
                result = await result
        except ApiRefusal as refusal:
            bot.records.append(CallRecord(method, params, at, None, refusal.error_code, refusal.description))
            return _error(refusal)
        bot.records.append(CallRecord(method, params, at, result))
        return JSONResponse({"ok": True, "result": result})

    def _get_me(self, bot: StandInBot, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **bot.user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _set_webhook(self, bot: StandInBot, params: dict[str, Any]) -> bool:
        url = string(params, "url")
        if not url:
            bot.webhook = Webhook()
            return True
        self._check_webhook_url(url)
        secret = params.get("secret_token")
        if secret is not None and (not isinstance(secret, str) or not _SECRET_TOKEN.match(secret)):
            raise bad_request("secret token contains unallowed characters or has a wrong length")
        max_connections = integer(params, "max_connections", 40)
        if not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        allowed = json_param(params, "allowed_updates")
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
        if params.get("drop_pending_updates") in (True, "true", "True", "1"):
            with self.lock:
                bot.pending.clear()
        return True

    def _get_webhook_info(self, bot: StandInBot, params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": bot.webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(bot.pending),
        }
        if bot.webhook.url:
            info["max_connections"] = bot.webhook.max_connections
            if bot.webhook.allowed_updates is not None:
                info["allowed_updates"] = bot.webhook.allowed_updates
            if bot.webhook.last_error_date is not None:
                info["last_error_date"] = bot.webhook.last_error_date
                info["last_error_message"] = bot.webhook.last_error_message
        return info


def _error(refusal: ApiRefusal) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": refusal.error_code, "description": refusal.description}
    if refusal.parameters:
        body["parameters"] = refusal.parameters
    return JSONResponse(body, status_code=refusal.error_code)


async def _drop(request: Request) -> Response:
    """Close the client's connection without a byte of answer (uvicorn's h11 protocol; else a 500)."""
    cycle = getattr(request.receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("the stand-in drops this connection")
    transport.close()
    for _ in range(200):  # uvicorn must see the disconnect before the app returns, or it answers 500
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0.001)
    return _NoAnswer()
