"""The stand-in's message methods and chat history: send*, edits, callback answers.

Results are real ``Message`` objects: ``message_id`` increasing per chat (the
user's and the bot's messages share the sequence), ``date``, ``chat``, ``from``
(the bot), ``text`` / ``photo`` / ``document`` / ``caption``, and
``reply_markup`` when it is an inline keyboard (Telegram echoes no other kind).

Order of checks, for every method: ``chat_id`` present, content (text, caption,
file), ``reply_markup``, the chat known to the bot (400 ``chat not found``), the
bot not blocked or kicked there (403), then — for sending only — the flood
limits (429). Descriptions are Telegram's (see ``telegram_standin_checks``).
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botkiln.infra import telegram_standin_checks as checks
from botkiln.infra.telegram_standin_checks import ApiRefusal, bad_request, flood
from botkiln.infra.telegram_standin_limits import RateLimiter
from botkiln.infra.telegram_standin_updates import Update

if TYPE_CHECKING:
    from botkiln.infra.telegram_standin import StandInBot

_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a current "
    "content and reply markup of the message"
)
_BAD_QUERY = "query is too old and response timeout expired or query ID is invalid"


@dataclass
class ChatState:
    """One chat as a bot sees it: the ``Chat`` object, its history, whether the bot was blocked or kicked."""

    chat: dict[str, Any]
    blocked: bool = False
    next_message_id: int = 1
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def group(self) -> bool:
        """Whether the chat is a group (the 20 messages per minute limit applies)."""
        return self.chat.get("type") in ("group", "supergroup")

    def add(self, message: dict[str, Any]) -> dict[str, Any]:
        """Store ``message`` under the chat's next id; the stored message."""
        message["message_id"] = self.next_message_id
        self.next_message_id += 1
        self.messages[message["message_id"]] = message
        return message


def open_chat(chats: dict[int, ChatState], chat: dict[str, Any]) -> ChatState:
    """The state of ``chat``, made on first sight."""
    state = chats.get(chat["id"])
    if state is None:
        state = chats[chat["id"]] = ChatState(dict(chat))
    return state


def complete_update(bot: StandInBot, update: Update) -> Update:
    """``update`` with Telegram's ids and dates filled in and recorded in the chat's history (lock held)."""
    done = copy.deepcopy(update)
    now = int(time.time())
    if "message" in done:
        message = done["message"]
        state = open_chat(bot.chats, message["chat"])
        message.setdefault("date", now)
        for size in message.get("photo", []):
            bot.files.add(size["file_id"])
        done["message"] = copy.deepcopy(state.add(message))
    elif "edited_message" in done:
        edit = done["edited_message"]
        state = open_chat(bot.chats, edit["chat"])
        original = state.messages.get(edit["message_id"], {})
        edit.setdefault("date", original.get("date", now))
        edit.setdefault("edit_date", now)
        state.messages[edit["message_id"]] = {**original, **edit}
    elif "callback_query" in done:
        query = done["callback_query"]
        query.setdefault("id", str(secrets.randbits(63)))
        bot.callbacks[query["id"]] = None
        shown = query.get("message", {})
        state = open_chat(bot.chats, shown["chat"])
        if shown.get("message_id") in state.messages:
            query["message"] = copy.deepcopy(state.messages[shown["message_id"]])
    return done


Handler = Callable[["StandInBot", dict[str, Any]], Any]


def handlers(limiter: RateLimiter, lock: threading.Lock) -> dict[str, Handler]:
    """The message methods' dispatch table."""
    methods = _Methods(limiter, lock)
    return {
        "sendMessage": methods.send_message,
        "sendPhoto": methods.send_photo,
        "sendDocument": methods.send_document,
        "editMessageText": methods.edit_message_text,
        "editMessageReplyMarkup": methods.edit_message_reply_markup,
        "answerCallbackQuery": methods.answer_callback_query,
    }


class _Methods:
    def __init__(self, limiter: RateLimiter, lock: threading.Lock) -> None:
        self.limiter = limiter
        self.lock = lock

    def send_message(self, bot: StandInBot, params: dict[str, Any]) -> dict[str, Any]:
        checks.chat_id(params)
        return self._send(bot, params, {"text": checks.message_text(params)})

    def send_photo(self, bot: StandInBot, params: dict[str, Any]) -> dict[str, Any]:
        checks.chat_id(params)
        file_id = self._file(bot, params, "photo")
        unique = secrets.token_urlsafe(6)
        sizes = [{"file_id": file_id if n else f"{file_id}-s", "file_unique_id": f"AQAD{unique}{n}", "width": w,
                  "height": h, "file_size": w * h // 8} for n, (w, h) in enumerate([(90, 67), (800, 600)])]  # fmt: skip
        with self.lock:
            bot.files.add(f"{file_id}-s")
        return self._send(bot, params, {"photo": sizes}, caption=checks.caption(params))

    def send_document(self, bot: StandInBot, params: dict[str, Any]) -> dict[str, Any]:
        checks.chat_id(params)
        file_id = self._file(bot, params, "document")
        document = {"file_id": file_id, "file_unique_id": f"AgAD{secrets.token_urlsafe(6)}", "file_size": 1024}
        return self._send(bot, params, {"document": document}, caption=checks.caption(params))

    def edit_message_text(self, bot: StandInBot, params: dict[str, Any]) -> dict[str, Any]:
        checks.chat_id(params)
        text = checks.message_text(params)
        markup = checks.reply_markup(params, inline_only=True)
        with self.lock:
            message = self._editable(bot, params)
            if "text" not in message:
                raise bad_request("there is no text in the message to edit")
            if message["text"] == text and message.get("reply_markup") == markup:
                raise bad_request(_NOT_MODIFIED)
            message["text"] = text
            return self._edited(message, markup)

    def edit_message_reply_markup(self, bot: StandInBot, params: dict[str, Any]) -> dict[str, Any]:
        checks.chat_id(params)
        markup = checks.reply_markup(params, inline_only=True)
        with self.lock:
            message = self._editable(bot, params)
            if message.get("reply_markup") == markup:
                raise bad_request(_NOT_MODIFIED)
            return self._edited(message, markup)

    def answer_callback_query(self, bot: StandInBot, params: dict[str, Any]) -> bool:
        query_id = checks.string(params, "callback_query_id")
        text = checks.callback_answer_text(params)
        with self.lock:
            if not query_id or query_id not in bot.callbacks or bot.callbacks[query_id] is not None:
                raise bad_request(_BAD_QUERY)
            bot.callbacks[query_id] = {"text": text, "show_alert": checks.boolean(params, "show_alert"),
                                       "url": params.get("url"), "cache_time": params.get("cache_time")}  # fmt: skip
        return True

    def _send(
        self, bot: StandInBot, params: dict[str, Any], content: dict[str, Any], *, caption: str | None = None
    ) -> dict[str, Any]:
        markup = checks.reply_markup(params)
        with self.lock:
            state = _chat(bot, params)
            retry_after = self.limiter.acquire(bot.id, state.chat["id"], group=state.group)
            if retry_after is not None:
                raise flood(retry_after)
            message: dict[str, Any] = {"from": bot.user(), "chat": state.chat, "date": int(time.time()), **content}
            if caption is not None:
                message["caption"] = caption
            if markup is not None and "inline_keyboard" in markup:
                message["reply_markup"] = markup
            return copy.deepcopy(state.add(message))

    def _file(self, bot: StandInBot, params: dict[str, Any], kind: str) -> str:
        """A file_id for the ``kind`` parameter: a known file_id, or a new one for an HTTP URL."""
        given = params.get(kind)
        if not isinstance(given, str) or not given:
            raise bad_request(f"there is no {kind} in the request")
        with self.lock:
            if given.startswith(("http://", "https://")):
                given = f"{kind[:2].upper()}AC-{secrets.token_urlsafe(12)}"
                bot.files.add(given)
            elif given not in bot.files:
                raise bad_request("wrong file identifier/HTTP URL specified")
        return given

    def _editable(self, bot: StandInBot, params: dict[str, Any]) -> dict[str, Any]:
        state = _chat(bot, params)
        message = state.messages.get(checks.message_id(params))
        if message is None:
            raise bad_request("message to edit not found")
        if message["from"]["id"] != bot.id:
            raise bad_request("message can't be edited")
        return message

    def _edited(self, message: dict[str, Any], markup: dict[str, Any] | None) -> dict[str, Any]:
        message["edit_date"] = int(time.time())
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        return copy.deepcopy(message)


def _chat(bot: StandInBot, params: dict[str, Any]) -> ChatState:
    """The known, writable chat ``params`` name (lock held)."""
    target = checks.chat_id(params)
    state = bot.chats.get(target) if isinstance(target, int) else None
    if state is None:
        raise bad_request("chat not found")
    if state.blocked:
        if state.group:
            raise ApiRefusal(403, "Forbidden: bot was kicked from the group chat")
        raise ApiRefusal(403, "Forbidden: bot was blocked by the user")
    return state
