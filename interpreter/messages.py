"""Outgoing messages: texts, media and buttons as exact Bot API calls (§11).

Telegram's own limits are applied here: 4096 code points per message (split),
1024 per caption (sent as text when longer), plain text only (no parse_mode),
and the reply markup on the last message a step sends.
"""

from __future__ import annotations

from typing import Any

from botkiln.interpreter.run import Run
from botkiln.interpreter.text import CAPTION_LIMIT, is_blank, split_message
from botkiln.interpreter.types import JSON

BLANK_BUTTON = "·"


def _button_text(run: Run, key: str) -> str:
    text = run.text(key)
    return BLANK_BUTTON if is_blank(text) else text


def reply_markup(run: Run, buttons: dict[str, Any]) -> dict[str, JSON]:
    """The ``reply_markup`` parameter for a step's ``buttons`` (§11.2)."""
    if "keyboard" in buttons:
        return {
            "keyboard": [[{"text": _button_text(run, k)} for k in row] for row in buttons["keyboard"]],
            "resize_keyboard": True,
            "one_time_keyboard": bool(buttons.get("oneTime", True)),
        }
    if "inline" in buttons:
        rows: list[list[dict[str, JSON]]] = []
        for row in buttons["inline"]:
            out_row: list[dict[str, JSON]] = []
            for button in row:
                item: dict[str, JSON] = {"text": _button_text(run, button["text"])}
                if "data" in button:
                    item["callback_data"] = button["data"]
                else:
                    item["url"] = button["url"]
                out_row.append(item)
            rows.append(out_row)
        return {"inline_keyboard": rows}
    return {"remove_keyboard": True}


def _text_messages(run: Run, flow: str, step: str, text: str) -> list[tuple[str, dict[str, JSON]]]:
    chunks = split_message(text)
    if not chunks:
        run.emit("empty_text", flow=flow, step=step)
    chat = run.context.get("chatId")
    return [("sendMessage", {"chat_id": chat, "text": chunk}) for chunk in chunks]


def _media_messages(run: Run, flow: str, step: str, media: dict[str, Any]) -> list[tuple[str, dict[str, JSON]]]:
    kind = media["kind"]
    method = "sendPhoto" if kind == "photo" else "sendDocument"
    params: dict[str, JSON] = {"chat_id": run.context.get("chatId"), kind: media["source"]}
    messages = [(method, params)]
    if "caption" in media:
        caption = run.text(media["caption"])
        if len(caption) > CAPTION_LIMIT:
            messages.extend(_text_messages(run, flow, step, caption))
        elif not is_blank(caption):
            params["caption"] = caption
    return messages


def send_reply(
    run: Run,
    flow: str,
    step: str,
    *,
    text_key: str | None,
    media: dict[str, Any] | None = None,
    buttons: dict[str, Any] | None = None,
) -> None:
    """Send a step's media, then its text, with the markup on the last message."""
    messages: list[tuple[str, dict[str, JSON]]] = []
    if media is not None:
        messages.extend(_media_messages(run, flow, step, media))
    if text_key is not None:
        messages.extend(_text_messages(run, flow, step, run.text(text_key)))
    if buttons is not None and messages:
        messages[-1][1]["reply_markup"] = reply_markup(run, buttons)
    for method, params in messages:
        run.send(flow, method, params)
