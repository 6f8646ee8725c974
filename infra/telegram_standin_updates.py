"""The user side's update payloads, shaped like the ones Telegram delivers.

Builders return an update without ``update_id``; ``BotApiStandIn.send_update``
completes it (``update_id``, ``message_id``, ``date``, callback ids, the
callback's message from the chat's history) and delivers it to the webhook.

Chats follow Telegram's ids: a positive ``chat_id`` is the private chat with
the user of that id; a negative one is a group (``title``) and the sender is
``from_id`` (default 1).
"""

from __future__ import annotations

import secrets
from typing import Any

DEFAULT_CHAT = 1001
"""The private chat (and user id) the helpers use unless told otherwise."""

Update = dict[str, Any]


def user(user_id: int) -> dict[str, Any]:
    """A Telegram ``User`` for ``user_id`` (a person, not a bot)."""
    return {"id": user_id, "is_bot": False, "first_name": f"User {user_id}", "username": f"user{user_id}",
            "language_code": "en"}  # fmt: skip


def chat(chat_id: int, *, title: str = "Test group") -> dict[str, Any]:
    """A ``Chat``: private for a positive id, a group for a negative one."""
    if chat_id < 0:
        return {"id": chat_id, "type": "group", "title": title}
    person = user(chat_id)
    return {"id": chat_id, "type": "private", "first_name": person["first_name"], "username": person["username"]}


def _sender(chat_id: int, from_id: int | None) -> dict[str, Any]:
    return user(from_id if from_id is not None else (chat_id if chat_id > 0 else 1))


def user_message(chat_id: int, text: str, *, from_id: int | None = None, title: str = "Test group") -> Update:
    """A text message a user sends in ``chat_id``."""
    return {"message": {"from": _sender(chat_id, from_id), "chat": chat(chat_id, title=title), "text": text}}


def user_command(
    command: str, *, chat_id: int = DEFAULT_CHAT, from_id: int | None = None, title: str = "Test group"
) -> Update:
    """A command such as ``/start``, ``/start@botname`` or ``/start payload``, with its ``bot_command`` entity."""
    update = user_message(chat_id, command, from_id=from_id, title=title)
    word = command.split(" ", 1)[0]
    update["message"]["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(word)}]
    return update


def user_callback(data: str, message_id: int, *, chat_id: int = DEFAULT_CHAT, from_id: int | None = None) -> Update:
    """A press on an inline button with ``data`` under the bot's message ``message_id``."""
    return {"callback_query": {"from": _sender(chat_id, from_id), "chat_instance": str(abs(chat_id) * 7919),
                               "data": data, "message": {"message_id": message_id, "chat": chat(chat_id)}}}  # fmt: skip


def user_photo(
    caption: str | None = None, *, chat_id: int = DEFAULT_CHAT, from_id: int | None = None, title: str = "Test group"
) -> Update:
    """A photo (two sizes) with an optional caption."""
    unique = secrets.token_urlsafe(8)
    sizes = [{"file_id": f"AgAC-{unique}-{n}", "file_unique_id": f"AQAD{unique}{n}", "width": w, "height": h,
              "file_size": w * h // 8} for n, (w, h) in enumerate([(90, 67), (1280, 960)])]  # fmt: skip
    message: dict[str, Any] = {"from": _sender(chat_id, from_id), "chat": chat(chat_id, title=title), "photo": sizes}
    if caption is not None:
        message["caption"] = caption
    return {"message": message}


def user_edit(message_id: int, text: str, *, chat_id: int = DEFAULT_CHAT, from_id: int | None = None) -> Update:
    """The user edits their earlier message ``message_id`` to ``text``."""
    return {"edited_message": {"message_id": message_id, "from": _sender(chat_id, from_id), "chat": chat(chat_id),
                               "text": text}}  # fmt: skip


def update_kind(update: Update) -> str:
    """The update's type as ``allowed_updates`` names it (``message``, ``callback_query``, …)."""
    return next((key for key in update if key != "update_id"), "")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
