"""Telegram update -> normalised Event, and the Context for it (docs/botspec.md §3, §4).

This is host code shared by every engine: engines never see raw updates. It
decides what counts as a command (with ``@botname``), a callback, a caption, or
an update kind Botkiln does not handle.
"""

from __future__ import annotations

import re
from typing import Any

from botkiln.interpreter.canonical import fix_surrogates
from botkiln.interpreter.text import MESSAGE_LIMIT, trim
from botkiln.interpreter.types import Context, Event

_COMMAND = re.compile(r"/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?:[\t\n\r ]|$)")
_MEDIA_KINDS = (
    "photo", "document", "video", "audio", "voice", "sticker",
    "animation", "video_note", "location", "contact",
)  # fmt: skip
_MESSAGE_KEYS = ("message", "channel_post")
_EDITED_KEYS = ("edited_message", "edited_channel_post")


def _empty(update_id: int | None) -> Event:
    return {
        "kind": "ignored", "updateId": update_id, "chatId": None, "chatType": None,
        "userId": None, "firstName": None, "lastName": None, "username": None,
        "languageCode": None, "messageId": None, "text": None, "media": None,
        "command": None, "args": None, "callbackId": None, "data": None,
        "reason": "unsupported",
    }  # fmt: skip


def _str(value: Any) -> str | None:
    return fix_surrogates(value) if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _sender(event: Event, user: Any) -> None:
    if not isinstance(user, dict):
        return
    event["userId"] = _int(user.get("id"))
    event["firstName"] = _str(user.get("first_name"))
    event["lastName"] = _str(user.get("last_name"))
    event["username"] = _str(user.get("username"))
    event["languageCode"] = _str(user.get("language_code"))


def _chat(event: Event, message: dict[str, Any]) -> None:
    chat = message.get("chat")
    if isinstance(chat, dict):
        event["chatId"] = _int(chat.get("id"))
        event["chatType"] = _str(chat.get("type"))
    event["messageId"] = _int(message.get("message_id"))


def _message(event: Event, message: dict[str, Any], bot_username: str | None) -> Event:
    event["kind"] = "message"
    event["reason"] = None
    _chat(event, message)
    _sender(event, message.get("from"))
    text = _str(message.get("text"))
    caption = _str(message.get("caption"))
    body = text if text is not None else caption
    event["text"] = body[:MESSAGE_LIMIT] if body is not None else None
    event["media"] = next((k for k in _MEDIA_KINDS if k in message), None)
    if text is not None:
        match = _COMMAND.match(text)
        if match is not None:
            mention = match.group(2)
            if mention and bot_username and mention.lower() != bot_username.lower():
                event["kind"] = "ignored"
                event["reason"] = "other_bot"
                return event
            event["command"] = match.group(1).lower()
            event["args"] = trim(text[match.end() :])[:MESSAGE_LIMIT]
    return event


def _callback(event: Event, query: dict[str, Any]) -> Event:
    message = query.get("message")
    data = _str(query.get("data"))
    if not isinstance(message, dict) or data is None:
        return event
    event["kind"] = "callback"
    event["reason"] = None
    _chat(event, message)
    _sender(event, query.get("from"))
    event["callbackId"] = _str(query.get("id"))
    event["data"] = data
    return event


def normalize_update(update: Any, *, bot_username: str | None = None) -> Event:
    """The Event for a raw Telegram update (any JSON; unknown shapes are ignored)."""
    if not isinstance(update, dict):
        return _empty(None)
    event = _empty(_int(update.get("update_id")))
    for key in _MESSAGE_KEYS:
        if isinstance(update.get(key), dict):
            return _message(event, update[key], bot_username)
    if isinstance(update.get("callback_query"), dict):
        return _callback(event, update["callback_query"])
    if any(key in update for key in _EDITED_KEYS):
        event["reason"] = "edited"
    return event


def resolve_locale(language_code: str | None, locales: list[str], default: str) -> str:
    """§10.1: the sender's language if the bot speaks it, else the default."""
    if language_code:
        primary = language_code.split("-", 1)[0].lower()
        if primary in locales:
            return primary
    return default


def build_context(event: Event, spec: dict[str, Any], *, now: int, revision: str = "reference") -> Context:
    """The Context the host passes with ``event`` (§3)."""
    meta = spec["meta"]
    return {
        "botId": meta["botId"],
        "revision": revision,
        "now": now,
        "locale": resolve_locale(event["languageCode"], meta["locales"], meta["defaultLocale"]),
        "chatId": event["chatId"],
        "userId": event["userId"],
        "firstName": event["firstName"],
        "lastName": event["lastName"],
        "username": event["username"],
    }
