"""The terminal chat of ``botkiln chat``: prints what the bot sends, numbers its buttons.

Input lines are messages (``/cmd`` for commands). A bare number presses that
button of the bot's latest keyboard: an inline button sends its callback data, a
reply-keyboard button sends its text. ``:state`` shows the chat's state with PII
variables redacted, ``:wait N`` lets N seconds pass, ``:reset`` forgets the chat,
``:quit`` (or end of input) leaves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TextIO

from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.host import UpdateResult

HELP = "type a message or /command; N presses button N; :state :wait N :reset :help :quit"


@dataclass(frozen=True)
class Button:
    """A pressable button: what pressing it sends."""

    label: str
    callback: str | None = None
    url: str | None = None


def _buttons(markup: dict[str, Any]) -> list[Button]:
    if "inline_keyboard" in markup:
        return [
            Button(b["text"], callback=b.get("callback_data"), url=b.get("url"))
            for row in markup["inline_keyboard"]
            for b in row
        ]
    if "keyboard" in markup:
        return [Button(b["text"]) for row in markup["keyboard"] for b in row]
    return []


def redact(state: Any, spec: dict[str, Any]) -> Any:
    """``state`` with every PII variable's value replaced (docs/botspec.md §5.4)."""
    if not isinstance(state, dict):
        return state
    declared = spec.get("state", {}).get("vars", {})
    vars_ = {k: "[redacted]" if declared.get(k, {}).get("pii") else v for k, v in state.get("vars", {}).items()}
    return {**state, "vars": vars_}


class ChatTerminal:
    """A line-based chat over a ``Conversation``."""

    def __init__(self, conversation: Conversation, *, chat: int = 1, lang: str = "en", name: str = "Tester") -> None:
        self.conversation = conversation
        self.chat = chat
        self.lang = lang
        self.name = name
        self.buttons: list[Button] = []

    def _show(self, result: UpdateResult, out: TextIO) -> None:
        for action in result.actions:
            params = action["params"]
            method = action["method"]
            if method == "sendMessage":
                out.write(f"bot> {params['text']}\n")
            elif method in ("sendPhoto", "sendDocument"):
                kind = "photo" if method == "sendPhoto" else "document"
                caption = f" {params['caption']}" if "caption" in params else ""
                out.write(f"bot> [{kind}: {params[kind]}]{caption}\n")
            elif method == "answerCallbackQuery" and "text" in params:
                out.write(f"bot> ({params['text']})\n")
            markup = params.get("reply_markup")
            if isinstance(markup, dict):
                self.buttons = _buttons(markup)
                if self.buttons:
                    out.write("     " + "  ".join(f"[{i}] {b.label}" for i, b in enumerate(self.buttons, 1)) + "\n")
        for request in result.requests:
            out.write(f"  ({request['method']} {request['url']})\n")

    def _event(self, line: str) -> dict[str, Any] | None:
        base = {"chat": self.chat, "lang": self.lang, "name": self.name}
        if line.isdigit() and 1 <= int(line) <= len(self.buttons):
            button = self.buttons[int(line) - 1]
            if button.callback is not None:
                return {**base, "callback": button.callback}
            if button.url is not None:
                return None
            return {**base, "text": button.label}
        return {**base, "text": line}

    def _command(self, line: str, out: TextIO) -> bool:
        """Handle a ``:command``; False means quit."""
        word, _, arg = line[1:].partition(" ")
        if word == "quit":
            return False
        if word == "state":
            state = redact(self.conversation.states.get(self.chat), self.conversation.spec)
            out.write(json.dumps(state, ensure_ascii=False, indent=2) + "\n")
        elif word == "wait" and arg.strip().isdigit():
            self.conversation.now += int(arg) * 1000
            out.write(f"  ({arg} s later)\n")
        elif word == "reset":
            self.conversation.states.pop(self.chat, None)
            self.buttons = []
            out.write("  (chat forgotten)\n")
        else:
            out.write(HELP + "\n")
        return True

    def loop(self, source: TextIO, out: TextIO) -> int:
        """Read lines until ``:quit`` or end of input."""
        spec = self.conversation.spec
        out.write(f"Chatting with {spec['meta']['name']} ({HELP})\n")
        out.flush()
        for raw in source:
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            if line.startswith(":"):
                if not self._command(line, out):
                    break
                out.flush()
                continue
            event = self._event(line)
            if event is None:
                out.write("  (that button opens a link)\n")
                continue
            _chat, result = self.conversation.send(event)
            self._show(result, out)
            out.flush()
        return 0
