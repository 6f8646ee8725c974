"""A local OpenAI-compatible chat-completions server that plays a scripted model.

Concept: :class:`LlmStandin` serves ``POST /v1/chat/completions`` and ``GET /v1/models``
on ``127.0.0.1`` (stdlib ``http.server``, one thread per request) with OpenAI's
response and error shapes, so the real ``openai`` client talks to it unchanged. A test
queues one :class:`Behaviour` per expected completion request:

| kind | answer |
|---|---|
| ``correct`` | the compiler's bot.js for the spec found in the prompt, in a ```js block |
| ``subtle_bug`` | the bot.js of a slightly changed spec (one reply text): passes the AST policy, diverges |
| ``hostile`` | a program using ``Date.now()``, ``new Function`` and ``eval`` (AST policy violations) |
| ``malformed`` | prose without code |
| ``truncated`` | the start of a program, ``finish_reason: "length"`` |
| ``http_error`` | ``status`` (500 by default, or 429) with OpenAI's error JSON |
| ``timeout`` | waits ``delay_s`` before answering, longer than the client's timeout |

Every request is recorded (:attr:`LlmStandin.requests`), authorised or not, so a test
can read the prompt of attempt N+1. A wrong or missing ``Authorization: Bearer`` key
gets 401; the message quotes the rejected key in full (harsher than OpenAI, which
masks it) so tests prove Botkiln scrubs it. A request with nothing queued gets 500
saying so, and every connection is closed after one response.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botkiln.generator.compiler import compile_spec

KINDS = ("correct", "subtle_bug", "hostile", "malformed", "truncated", "http_error", "timeout")
DEFAULT_KEY = "sk-standin-0123456789abcdef"

HOSTILE_BOT = """\
"use strict";
// A model that cut corners: reads the clock and builds code from strings.
function step(input) {
  const startedAt = Date.now();
  const reply = new Function("input", "return input.state;");
  return eval("({actions: [], state: reply(input) || {}, events: [], startedAt: startedAt})");
}
"""

MALFORMED_REPLY = (
    "I'm sorry, but I can't write the whole program right now. In short, the bot should greet "
    "the user on /start and answer questions about opening hours, wifi and prices."
)

_SPEC_BLOCK = re.compile(r"# The BotSpec to implement\s*```json\n(.*?)\n```", re.DOTALL)
_ERROR_BODIES = {
    429: ("Rate limit reached for requests. Please try again in 20s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
}


@dataclass(frozen=True)
class Behaviour:
    """What the stand-in does with one completion request."""

    kind: str
    status: int = 500
    delay_s: float = 5.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown behaviour {self.kind!r}; expected one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class Recorded:
    """One request as received; ``behaviour`` is None when it was not served one."""

    method: str
    path: str
    authorized: bool
    body: Any
    behaviour: str | None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages sent."""
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def last_user_message(self) -> str:
        """The content of the last ``user`` turn."""
        users = [m for m in self.messages if m.get("role") == "user"]
        return str(users[-1]["content"]) if users else ""

    @property
    def text(self) -> str:
        """Every message's content, joined."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


def spec_in_prompt(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The spec the prompt asks for (the JSON block under "The BotSpec to implement")."""
    for message in messages:
        match = _SPEC_BLOCK.search(str(message.get("content", "")))
        if match:
            spec: dict[str, Any] = json.loads(match.group(1))
            return spec
    return None


def subtly_wrong(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with one reply text changed: the first reply of the ``start`` flow (or any)."""
    wrong = copy.deepcopy(spec)
    start = next((c["flow"] for c in wrong.get("commands", []) if c["command"] == "start"), None)
    flows = sorted(wrong["flows"], key=lambda f: f["id"] != start)
    key = next(s["text"] for f in flows for s in f["steps"] if s["type"] == "reply" and "text" in s)
    texts = wrong["localization"]["strings"][key]
    locale = wrong["meta"]["defaultLocale"]
    texts[locale] = texts[locale] + "!"
    return wrong


def _fenced(source: str) -> str:
    return f"Here is the program.\n\n```js\n{source}```\n"


class LlmStandin:
    """The server; use as a context manager. ``base_url`` ends in ``/v1``."""

    def __init__(self, api_key: str = DEFAULT_KEY) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self._queue: list[Behaviour] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="llm-standin", daemon=True
        )

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL to give the client."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def script(self, *behaviours: str | Behaviour) -> None:
        """Queue behaviours, one per coming completion request."""
        with self._lock:
            self._queue.extend(b if isinstance(b, Behaviour) else Behaviour(b) for b in behaviours)

    @property
    def pending(self) -> int:
        """Behaviours not yet used."""
        with self._lock:
            return len(self._queue)

    def completions(self) -> list[Recorded]:
        """The authorised completion requests, in order."""
        return [r for r in self.requests if r.path == "/v1/chat/completions" and r.authorized]

    def __enter__(self) -> LlmStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- serving -----------------------------------------------------------------

    def _next(self) -> Behaviour | None:
        with self._lock:
            return self._queue.pop(0) if self._queue else None

    def _record(self, entry: Recorded) -> None:
        with self._lock:
            self.requests.append(entry)

    def _completion(self, model: str, content: str, finish_reason: str, prompt_chars: int) -> dict[str, Any]:
        prompt_tokens, completion_tokens = prompt_chars // 4, len(content) // 4
        return {
            "id": f"chatcmpl-standin{len(self.requests):04d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_standin",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _answer(self, behaviour: Behaviour, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for one completion request."""
        if behaviour.kind == "http_error":
            message, kind, code = _ERROR_BODIES.get(behaviour.status, _ERROR_BODIES[500])
            return behaviour.status, _error(message, kind, code)
        messages = body.get("messages", [])
        spec = spec_in_prompt(messages)
        if behaviour.kind == "hostile":
            content = _fenced(HOSTILE_BOT)
        elif behaviour.kind == "malformed" or spec is None:
            content = MALFORMED_REPLY
        elif behaviour.kind == "subtle_bug":
            content = _fenced(compile_spec(subtly_wrong(spec)))
        else:
            content = _fenced(compile_spec(spec))
        finish = "stop"
        if behaviour.kind == "truncated":
            content, finish = content[: len(content) // 2], "length"
        prompt_chars = sum(len(str(m.get("content", ""))) for m in messages)
        return 200, self._completion(str(body.get("model", "")), content, finish, prompt_chars)


def _error(message: str, kind: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _handler_for(standin: LlmStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.close_connection = True
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.send_header("x-request-id", f"req_standin{len(standin.requests):04d}")
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout behaviour)

        def _authorized(self) -> tuple[bool, dict[str, Any] | None]:
            given = self.headers.get("Authorization", "")
            if given == f"Bearer {standin.api_key}":
                return True, None
            if not given.startswith("Bearer "):
                return False, _error("You didn't provide an API key.", "invalid_request_error", None)
            message = f"Incorrect API key provided: {given.removeprefix('Bearer ')}."
            return False, _error(message, "invalid_request_error", "invalid_api_key")

        def do_GET(self) -> None:
            ok, error = self._authorized()
            standin._record(Recorded("GET", self.path, ok, None, None))
            if error is not None:
                self._send(401, error)
            elif self.path == "/v1/models":
                model = {"id": "standin", "object": "model", "created": 0, "owned_by": "botkiln"}
                self._send(200, {"object": "list", "data": [model]})
            else:
                self._send(404, _error(f"Unknown request URL: GET {self.path}.", "invalid_request_error", None))

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = None
            ok, error = self._authorized()
            if self.path != "/v1/chat/completions" or error is not None or not isinstance(body, dict):
                standin._record(Recorded("POST", self.path, ok, body, None))
                if error is not None:
                    self._send(401, error)
                elif not isinstance(body, dict):
                    self._send(
                        400, _error("We could not parse the JSON body of your request.", "invalid_request_error", None)
                    )
                else:
                    self._send(404, _error(f"Unknown request URL: POST {self.path}.", "invalid_request_error", None))
                return
            behaviour = standin._next()
            standin._record(Recorded("POST", self.path, True, body, behaviour.kind if behaviour else None))
            if behaviour is None:
                self._send(
                    500, _error("llm stand-in: no behaviour was scripted for this request", "server_error", None)
                )
                return
            if behaviour.kind == "timeout" and standin._closing.wait(behaviour.delay_s):
                return  # shutting down; the client has long given up
            self._send(*standin._answer(behaviour, body))

    return Handler
