"""A scripted or interactive conversation with a bot: chats, time, update ids.

Host code around ``handle_update``: it keeps each chat's state, a deterministic
clock (``now`` advances one second per update unless the update says otherwise),
and expands the short event forms of ``botkiln simulate`` into real Telegram
updates:

- ``{"text": "hi", "chat": 1}`` — a private text message (``/cmd args`` is a command);
- ``{"callback": "data", "chat": 1}`` — a press of an inline button with that data;
- ``{"media": "sticker", "chat": 1}`` / ``{"media": "photo", "caption": "…"}`` — media;
- optional in every short form: ``"user"`` (id, default = chat), ``"name"``
  (first name, default "Tester"), ``"lang"`` (language_code, default "en"),
  ``"wait"`` (seconds to let pass before this update).
Anything with an ``update_id`` is a raw Telegram update and is used as is; its
``message.date`` (seconds), if present, sets the clock.
"""

from __future__ import annotations

from typing import Any

from botkiln.interpreter.errors import UnusableInput
from botkiln.interpreter.host import ApiPerformer, Engine, UpdateResult, handle_update
from botkiln.interpreter.types import State

EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: simulated time starts here
_SHORT_KEYS = frozenset({"text", "callback", "media", "caption", "chat", "user", "name", "lang", "wait"})


def _sender(item: dict[str, Any], chat: int) -> dict[str, Any]:
    user = item.get("user", chat)
    return {
        "id": user,
        "is_bot": False,
        "first_name": item.get("name", "Tester"),
        "language_code": item.get("lang", "en"),
    }


class Conversation:
    """Feeds updates to an engine, keeping per-chat state and the clock."""

    def __init__(
        self,
        engine: Engine,
        spec: dict[str, Any],
        api: ApiPerformer,
        *,
        bot_username: str | None = None,
        revision: str = "reference",
    ) -> None:
        self.engine = engine
        self.spec = spec
        self.api = api
        self.bot_username = bot_username
        self.revision = revision
        self.states: dict[int | None, State | None] = {}
        self.now = EPOCH_MS
        self.update_id = 0
        self.message_id = 0

    def expand(self, item: Any) -> dict[str, Any]:
        """A raw Telegram update for a short form (or the raw update itself).

        Raises:
            UnusableInput: neither a raw update nor a valid short form.
        """
        if not isinstance(item, dict):
            raise UnusableInput("an event must be a JSON object")
        if "update_id" in item:
            return item
        unknown = set(item) - _SHORT_KEYS
        if unknown:
            raise UnusableInput(f"unknown short-form field(s): {', '.join(sorted(unknown))}")
        chat = item.get("chat", 1)
        if not isinstance(chat, int) or isinstance(chat, bool):
            raise UnusableInput('"chat" must be an integer')
        self.update_id += 1
        self.message_id += 1
        sender = _sender(item, chat)
        chat_obj = {"id": chat, "type": "private" if chat > 0 else "group"}
        if "callback" in item:
            message = {"message_id": self.message_id, "date": 0, "chat": chat_obj, "text": "…"}
            query = {
                "id": f"cb{self.update_id}",
                "from": sender,
                "message": message,
                "data": item["callback"],
            }
            return {"update_id": self.update_id, "callback_query": query}
        message = {"message_id": self.message_id, "date": 0, "chat": chat_obj, "from": sender}
        if "text" in item:
            message["text"] = item["text"]
        elif "media" in item:
            media = item["media"]
            message[media] = [{"file_id": "f1", "width": 1, "height": 1}] if media == "photo" else {"file_id": "f1"}
            if "caption" in item:
                message["caption"] = item["caption"]
        else:
            raise UnusableInput('a short-form event needs "text", "callback" or "media"')
        return {"update_id": self.update_id, "message": message}

    def _advance(self, item: Any, update: dict[str, Any]) -> None:
        wait = item.get("wait", 0) if isinstance(item, dict) and "update_id" not in item else 0
        if not isinstance(wait, int | float) or wait < 0:
            raise UnusableInput('"wait" must be a non-negative number of seconds')
        message = update.get("message") or update.get("edited_message") or {}
        date = message.get("date") if isinstance(message, dict) else None
        if "update_id" in item and isinstance(date, int) and date > 0:
            self.now = date * 1000
        else:
            self.now += 1000 + int(wait * 1000)

    def send(self, item: Any) -> tuple[int | None, UpdateResult]:
        """Deliver one event; returns (chat id, what the update produced)."""
        update = self.expand(item)
        self._advance(item, update)
        chat = _chat_of(update)
        result = handle_update(
            self.engine,
            self.spec,
            update,
            self.states.get(chat),
            now=self.now,
            api=self.api,
            bot_username=self.bot_username,
            revision=self.revision,
        )
        if chat is not None:
            self.states[chat] = result.state
        return chat, result


def _chat_of(update: dict[str, Any]) -> int | None:
    for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
        if isinstance(update.get(key), dict):
            chat = update[key].get("chat", {})
            return chat.get("id") if isinstance(chat, dict) else None
    query = update.get("callback_query")
    if isinstance(query, dict) and isinstance(query.get("message"), dict):
        chat = query["message"].get("chat", {})
        return chat.get("id") if isinstance(chat, dict) else None
    return None
