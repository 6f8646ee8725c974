"""The stand-in's parameter reading and Telegram's parameter checks, with Telegram's exact descriptions.

Parameters arrive as a JSON body, an urlencoded form or the query string; the
non-JSON transports carry objects and arrays as JSON text (``reply_markup``,
``allowed_updates``), as Telegram accepts them.

Text length: the Bot API documents "1-4096 characters after entities parsing";
the stand-in counts Unicode code points (Python ``len``), not UTF-16 code units
(which is what ``MessageEntity`` offsets use): Telegram accepts 4096 emoji
(8192 UTF-16 units) and refuses 4097. Leading and trailing whitespace is
trimmed first, as Telegram does, so a blank text is empty. For
``parse_mode=HTML`` the tags are removed and entities unescaped before
counting; Markdown modes are counted as sent (their markup is not parsed).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_ANSWER = 200
MAX_CALLBACK_DATA_BYTES = 64
PARSE_MODES = {"HTML", "Markdown", "MarkdownV2"}

_TAG = re.compile(r"<[^>]*>")
_BUTTON_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query", "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat", "copy_text", "callback_game", "pay",
)  # fmt: skip


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


def flood(retry_after: int) -> ApiRefusal:
    """Telegram's 429 with ``parameters.retry_after``."""
    return ApiRefusal(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


async def read_params(request: Request) -> dict[str, Any]:
    """The call's parameters from the query string and a JSON or urlencoded body."""
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
    elif request.method == "POST" and content_type == "multipart/form-data":
        raise bad_request("multipart uploads are not supported by the stand-in; send a file_id or an HTTP URL")
    return params


def string(params: dict[str, Any], name: str) -> str:
    """``params[name]`` as a string ("" when absent)."""
    value = params.get(name, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise bad_request(f'field "{name}" must be of type String')
    return value


def integer(params: dict[str, Any], name: str, default: int) -> int:
    """``params[name]`` as an integer, accepting its decimal text."""
    value = params.get(name, default)
    if isinstance(value, bool):
        raise bad_request(f'field "{name}" must be of type Integer')
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise bad_request(f'field "{name}" must be of type Integer') from None


def boolean(params: dict[str, Any], name: str) -> bool:
    """``params[name]`` as a boolean (``true``/``1`` in forms)."""
    value = params.get(name, False)
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def json_param(params: dict[str, Any], name: str) -> Any:
    """``params[name]``, decoded when it travelled as JSON text."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON") from None
    return value


def chat_id(params: dict[str, Any]) -> int | str:
    """The target chat: an integer id, or an ``@username`` string (never found by the stand-in)."""
    value = params.get("chat_id")
    if value is None or value == "":
        raise bad_request("chat_id is empty")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    raise bad_request("chat not found")


def message_id(params: dict[str, Any]) -> int:
    """``message_id`` of an edit; only chat messages are edited here (no ``inline_message_id``)."""
    if params.get("message_id") in (None, "", 0):
        raise bad_request("message identifier is not specified")
    return integer(params, "message_id", 0)


def visible_text(text: str, parse_mode: str | None) -> str:
    """``text`` after entities parsing (HTML only), trimmed."""
    if parse_mode is not None and parse_mode not in PARSE_MODES:
        raise bad_request("unsupported parse_mode")
    if parse_mode == "HTML":
        text = html.unescape(_TAG.sub("", text))
    return text.strip()


def message_text(params: dict[str, Any]) -> str:
    """The checked ``text`` of sendMessage / editMessageText."""
    text = visible_text(string(params, "text"), _parse_mode(params))
    if not text:
        raise bad_request("message text is empty")
    if len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return text


def caption(params: dict[str, Any]) -> str | None:
    """The checked ``caption`` of a media message (None when absent or blank)."""
    text = visible_text(string(params, "caption"), _parse_mode(params))
    if len(text) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    return text or None


def callback_answer_text(params: dict[str, Any]) -> str | None:
    """The checked ``text`` of answerCallbackQuery (0-200 characters)."""
    text = string(params, "text")
    if len(text) > MAX_CALLBACK_ANSWER:
        raise bad_request("MESSAGE_TOO_LONG")
    return text or None


def _parse_mode(params: dict[str, Any]) -> str | None:
    mode = params.get("parse_mode")
    return str(mode) if mode not in (None, "") else None


def reply_markup(params: dict[str, Any], *, inline_only: bool = False) -> dict[str, Any] | None:
    """The checked ``reply_markup`` (None when absent)."""
    if params.get("reply_markup") in (None, ""):
        return None
    try:
        markup = json_param(params, "reply_markup")
    except ApiRefusal:
        raise bad_request("can't parse reply keyboard markup JSON object") from None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _check_inline_keyboard(markup["inline_keyboard"])
    elif inline_only:
        raise bad_request("inline keyboard expected")
    elif "keyboard" in markup:
        _check_keyboard(markup["keyboard"])
    elif markup.get("remove_keyboard") is not True and markup.get("force_reply") is not True:
        raise bad_request("can't parse reply keyboard markup JSON object")
    return markup


def _rows(rows: Any, field: str, kind: str) -> list[list[Any]]:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(f'field "{field}" of the {kind} should be an Array of Arrays')
    return rows


def _check_inline_keyboard(rows: Any) -> None:
    for row in _rows(rows, "inline_keyboard", "InlineKeyboardMarkup"):
        for button in row:
            if not isinstance(button, dict):
                raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            if not isinstance(button.get("text"), str):
                raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
            if not any(action in button for action in _BUTTON_ACTIONS):
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                    raise bad_request("BUTTON_DATA_INVALID")
            if "url" in button and not (isinstance(button["url"], str) and button["url"].strip()):
                raise bad_request("BUTTON_URL_INVALID")


def _check_keyboard(rows: Any) -> None:
    for row in _rows(rows, "keyboard", "ReplyKeyboardMarkup"):
        for button in row:
            if not isinstance(button, str) and not (isinstance(button, dict) and isinstance(button.get("text"), str)):
                raise bad_request('can\'t parse keyboard button: Field "text" must be of type String')
