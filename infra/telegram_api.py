"""An async Telegram Bot API client (httpx) for the control plane's calls.

Covers what the control plane needs — ``getMe``, ``setWebhook``,
``deleteWebhook``, ``getWebhookInfo`` — and what the runtime sends —
``sendMessage``, ``sendPhoto``, ``sendDocument``, ``editMessageText``,
``editMessageReplyMarkup``, ``answerCallbackQuery`` — through one generic
``call``. Message methods return Telegram's ``Message`` object as a dict.

Invariants:

- every answer goes through ``check_response``, the one place Telegram's
  ``{"ok": false, "error_code", "description", "parameters"}`` becomes a
  Botkiln exception (STYLE rule 6). The local stand-in answers in the same format,
  so its answers are checked by the same function::

      BotApiError                  any refusal or failure of a Bot API call
      ├── BotApiUnauthorized       401: the token is wrong or was revoked
      ├── BotApiForbidden          403: e.g. the bot was blocked by the user
      ├── BotApiRetryAfter         429: flood control; ``retry_after`` seconds
      └── BotApiUnreachable        no usable answer (network, timeout, not JSON)

- the token travels in the URL path (``/bot<token>/<method>``) and nowhere else:
  it never appears in an exception message, a ``repr`` or a log line. httpx logs
  each request's URL at INFO, so the client installs ``TokenRedactingFilter`` on
  the ``httpx`` logger when it is built.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, cast

import httpx

from botkiln.interpreter.errors import BotkilnError

DEFAULT_API_URL = "https://api.telegram.org"
TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$")
"""The shape of a Bot API token: ``<bot id>:<secret>``."""

_TOKEN_ANYWHERE = re.compile(r"bot[0-9]{1,20}:[A-Za-z0-9_-]+")
_TIMEOUT_S = 10.0


class BotApiError(BotkilnError):
    """A Bot API call was refused or failed; ``error_code`` is Telegram's (None without an answer)."""

    def __init__(self, method: str, description: str, error_code: int | None = None) -> None:
        self.method = method
        self.description = redact(description)
        self.error_code = error_code
        code = "" if error_code is None else f" ({error_code})"
        super().__init__(f"{method}{code}: {self.description}")


class BotApiUnauthorized(BotApiError):
    """The token is not (or no longer) valid."""


class BotApiForbidden(BotApiError):
    """Telegram refused the action for this bot (blocked by the user, kicked from the chat, …)."""


class BotApiRetryAfter(BotApiError):
    """Flood control: wait ``retry_after`` seconds before calling again."""

    def __init__(self, method: str, description: str, retry_after: int) -> None:
        super().__init__(method, description, 429)
        self.retry_after = retry_after


class BotApiUnreachable(BotApiError):
    """No usable answer: network failure, timeout, or a body that is not Bot API JSON."""


def redact(text: str) -> str:
    """``text`` with any ``bot<id>:<secret>`` replaced by ``bot<redacted>``."""
    return _TOKEN_ANYWHERE.sub("bot<redacted>", text)


class TokenRedactingFilter(logging.Filter):
    """Rewrites log records so that no Bot API token survives in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(redact(str(a)) if _TOKEN_ANYWHERE.search(str(a)) else a for a in args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_log_redaction(logger_name: str = "httpx") -> None:
    """Attach one ``TokenRedactingFilter`` to ``logger_name`` (idempotent)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, TokenRedactingFilter) for f in logger.filters):
        logger.addFilter(TokenRedactingFilter())


def check_response(method: str, status: int, body: bytes) -> Any:
    """The ``result`` of a Bot API answer, or the Botkiln exception it means.

    Raises:
        BotApiUnauthorized: 401.
        BotApiForbidden: 403.
        BotApiRetryAfter: 429, or any refusal carrying ``parameters.retry_after``.
        BotApiUnreachable: the body is not a Bot API answer.
        BotApiError: any other refusal (``error_code`` and ``description`` from Telegram).
    """
    try:
        payload = json.loads(body)
    except ValueError:
        raise BotApiUnreachable(method, f"HTTP {status} with a body that is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("ok"), bool):
        raise BotApiUnreachable(method, f"HTTP {status} with a body that is not a Bot API answer")
    if payload["ok"]:
        return payload.get("result")
    code = payload.get("error_code")
    error_code = code if isinstance(code, int) else status
    description = str(payload.get("description") or f"HTTP {status}")
    parameters = payload.get("parameters")
    retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if isinstance(retry_after, int):
        raise BotApiRetryAfter(method, description, retry_after)
    if error_code == 401:
        raise BotApiUnauthorized(method, description, error_code)
    if error_code == 403:
        raise BotApiForbidden(method, description, error_code)
    raise BotApiError(method, description, error_code)


@dataclass(frozen=True)
class BotIdentity:
    """What ``getMe`` says about a bot."""

    id: int
    username: str
    first_name: str


@dataclass(frozen=True)
class WebhookInfo:
    """What ``getWebhookInfo`` says (the fields the console shows)."""

    url: str
    pending_update_count: int
    last_error_date: int | None = None
    last_error_message: str | None = None
    max_connections: int | None = None


class BotApiClient:
    """Bot API calls for one token over a shared ``httpx.AsyncClient``.

    ``http`` is owned by the caller (one per process, made in the app's lifespan);
    ``base_url`` is ``Settings.telegram_api_url``.
    """

    def __init__(self, http: httpx.AsyncClient, token: str, *, base_url: str = DEFAULT_API_URL) -> None:
        install_log_redaction()
        self._http = http
        self._token = token
        self._base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"BotApiClient(base_url={self._base_url!r}, token=<redacted>)"

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """POST ``params`` as JSON to ``method``; the answer's ``result``.

        Raises:
            BotApiError: see ``check_response``; network failures are ``BotApiUnreachable``.
        """
        url = f"{self._base_url}/bot{self._token}/{method}"
        try:
            response = await self._http.post(url, json=params or {}, timeout=_TIMEOUT_S)
        except httpx.HTTPError as exc:
            reason = redact(str(exc)) or type(exc).__name__
            raise BotApiUnreachable(method, f"{type(exc).__name__}: {reason}") from None
        return check_response(method, response.status_code, response.content)

    async def get_me(self) -> BotIdentity:
        """The bot behind the token (the token's validity check)."""
        me = await self.call("getMe")
        return BotIdentity(int(me["id"]), str(me.get("username", "")), str(me.get("first_name", "")))

    async def set_webhook(
        self, url: str, *, secret_token: str, allowed_updates: list[str] | None = None, max_connections: int = 40
    ) -> None:
        """Deliver updates to ``url`` with ``X-Telegram-Bot-Api-Secret-Token: secret_token``."""
        params: dict[str, Any] = {"url": url, "secret_token": secret_token, "max_connections": max_connections}
        if allowed_updates is not None:
            params["allowed_updates"] = allowed_updates
        await self.call("setWebhook", params)

    async def delete_webhook(self, *, drop_pending_updates: bool = False) -> None:
        """Stop webhook delivery."""
        await self.call("deleteWebhook", {"drop_pending_updates": drop_pending_updates})

    async def get_webhook_info(self) -> WebhookInfo:
        """The webhook's current state as Telegram sees it."""
        info = cast(dict[str, Any], await self.call("getWebhookInfo"))
        return WebhookInfo(
            url=str(info.get("url", "")),
            pending_update_count=int(info.get("pending_update_count", 0)),
            last_error_date=info.get("last_error_date"),
            last_error_message=info.get("last_error_message"),
            max_connections=info.get("max_connections"),
        )

    async def send_message(
        self, chat_id: int | str, text: str, *, parse_mode: str | None = None,
        reply_markup: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Send ``text`` to ``chat_id``; the sent ``Message``."""
        params = _present(chat_id=chat_id, text=text, parse_mode=parse_mode, reply_markup=reply_markup)
        return cast(dict[str, Any], await self.call("sendMessage", params))

    async def send_photo(
        self, chat_id: int | str, photo: str, *, caption: str | None = None, reply_markup: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send the photo ``photo`` (a file_id or an HTTP URL); the sent ``Message``."""
        params = _present(chat_id=chat_id, photo=photo, caption=caption, reply_markup=reply_markup)
        return cast(dict[str, Any], await self.call("sendPhoto", params))

    async def send_document(
        self, chat_id: int | str, document: str, *, caption: str | None = None,
        reply_markup: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Send the file ``document`` (a file_id or an HTTP URL); the sent ``Message``."""
        params = _present(chat_id=chat_id, document=document, caption=caption, reply_markup=reply_markup)
        return cast(dict[str, Any], await self.call("sendDocument", params))

    async def edit_message_text(
        self, chat_id: int | str, message_id: int, text: str, *, parse_mode: str | None = None,
        reply_markup: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Replace the text (and inline keyboard: none unless given) of the bot's message; the edited ``Message``."""
        params = _present(chat_id=chat_id, message_id=message_id, text=text, parse_mode=parse_mode,
                          reply_markup=reply_markup)  # fmt: skip
        return cast(dict[str, Any], await self.call("editMessageText", params))

    async def edit_message_reply_markup(
        self, chat_id: int | str, message_id: int, reply_markup: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Replace (or, with None, remove) the inline keyboard of the bot's message; the edited ``Message``."""
        params = _present(chat_id=chat_id, message_id=message_id, reply_markup=reply_markup)
        return cast(dict[str, Any], await self.call("editMessageReplyMarkup", params))

    async def answer_callback_query(
        self, callback_query_id: str, *, text: str | None = None, show_alert: bool = False
    ) -> None:
        """Answer a button press (stops the client's progress indicator), optionally with a notification."""
        params = _present(callback_query_id=callback_query_id, text=text, show_alert=show_alert or None)
        await self.call("answerCallbackQuery", params)


def _present(**params: Any) -> dict[str, Any]:
    """``params`` without the ones left out (None)."""
    return {name: value for name, value in params.items() if value is not None}
