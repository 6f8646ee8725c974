"""``botkiln simulate`` (scripted, one JSON line per update) and ``botkiln chat``.

simulate prints, for each event, one canonical JSON line
``{"update": n, "chat": id, "actions": [...], "events": [...], "requests": [...], "state": {...}}``;
exit 0 done, 1 the spec is invalid, 2 unusable input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from botkiln.infra.chat_terminal import ChatTerminal
from botkiln.infra.files import load_json, parse_json, read_text
from botkiln.infra.http_api import HttpApi
from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.canonical import canonical_text
from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.engine import Interpreter
from botkiln.interpreter.errors import UnusableInput
from botkiln.interpreter.host import ApiPerformer, Engine
from botkiln.interpreter.quickjs import SandboxError
from botkiln.interpreter.validation import validate_spec

SHORT_FORMS = """\
EVENTS holds one JSON object per line (blank lines and lines starting with # are skipped):
  a raw Telegram update (anything with "update_id"), or a short form:
  {"text": "hello", "chat": 1}            a text message (/cmd args for commands)
  {"callback": "yes", "chat": 1}          an inline button press with that data
  {"media": "sticker", "chat": 1}         a message without text (photo: add "caption")
  optional: "user" (id), "name", "lang" (language_code, default en), "wait" (seconds)
Simulated time starts at 2026-01-01T00:00:00Z and advances 1 s per update (+ wait).
API fixture (--api): {"POST https://host/path": {"status": 200, "body": {...}},
  "GET https://host/*": [{"error": "timeout"}, {"status": 200, "body": []}]}
  (a list is used in turn, the last entry repeats; unmatched requests fail as network errors).
"""


def _load_spec(path: str) -> dict[str, Any]:
    spec, size = load_json(path)
    errors = validate_spec(spec, size=size)
    if errors:
        lines = "\n".join(f"  {e}" for e in errors)
        raise _Invalid(f"{path}: the spec is invalid ({len(errors)} errors):\n{lines}")
    assert isinstance(spec, dict)
    return spec


class _Invalid(Exception):
    pass


def _api(args: argparse.Namespace, spec: dict[str, Any], *, real_ok: bool) -> ApiPerformer:
    if args.api:
        fixture, _ = load_json(args.api)
        if not isinstance(fixture, dict):
            raise UnusableInput(f"{args.api}: an API fixture must be a JSON object")
        return FixtureApi.for_spec(fixture, spec)
    if real_ok:
        prefix = "BOTKILN_SECRET_"
        secrets = {k[len(prefix) :]: v for k, v in os.environ.items() if k.startswith(prefix)}
        return HttpApi.for_spec(spec, secrets=secrets)
    return FixtureApi.for_spec({}, spec)


def _quickjs(spec: dict[str, Any], args: argparse.Namespace) -> Engine:
    from botkiln.generator.compiler import compile_spec
    from botkiln.interpreter.quickjs import QuickJsEngine

    source = read_text(args.js) if getattr(args, "js", None) else compile_spec(spec)
    return QuickJsEngine(source)


ENGINES: dict[str, Callable[[dict[str, Any], argparse.Namespace], Engine]] = {
    "reference": lambda spec, _args: Interpreter(spec).step,
    "quickjs": _quickjs,
}
"""Engine name -> factory: the reference interpreter, or bot.js in QuickJS."""


def _events(path: str) -> list[Any]:
    items: list[Any] = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            items.append(parse_json(line, f"{path}:{number}"))
    return items


def _simulate(args: argparse.Namespace) -> int:
    try:
        spec = _load_spec(args.file)
        events = _events(args.events)
        engine = ENGINES[args.engine](spec, args)
        conversation = Conversation(engine, spec, _api(args, spec, real_ok=False), bot_username=args.bot_username)
        for number, item in enumerate(events, start=1):
            try:
                chat, result = conversation.send(item)
            except UnusableInput as exc:
                raise UnusableInput(f"{args.events}: event {number}: {exc}") from None
            print(canonical_text({"update": number, "chat": chat, **result.as_json()}), flush=True)
    except _Invalid as exc:
        print(exc, file=sys.stderr)
        return 1
    except UnusableInput as exc:
        print(exc, file=sys.stderr)
        return 2
    except SandboxError as exc:
        print(f"bot.js failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _chat(args: argparse.Namespace) -> int:
    try:
        spec = _load_spec(args.file)
        engine = ENGINES["reference"](spec, args)
        conversation = Conversation(engine, spec, _api(args, spec, real_ok=True), bot_username=args.bot_username)
    except _Invalid as exc:
        print(exc, file=sys.stderr)
        return 1
    except UnusableInput as exc:
        print(exc, file=sys.stderr)
        return 2
    terminal = ChatTerminal(conversation, chat=args.chat, lang=args.lang, name=args.name)
    return terminal.loop(sys.stdin, sys.stdout)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``simulate`` and ``chat``."""
    simulate = sub.add_parser(
        "simulate",
        help="run a scripted conversation, one output JSON line per update",
        description="Exit codes: 0 done, 1 invalid spec, 2 unusable input.",
        epilog=SHORT_FORMS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument("file", metavar="FILE", help="the BotSpec")
    simulate.add_argument("--events", required=True, metavar="EVENTS.jsonl")
    simulate.add_argument("--api", metavar="FIXTURE.json", help="scripted apiCall results")
    simulate.add_argument("--engine", choices=sorted(ENGINES), default="reference")
    simulate.add_argument(
        "--js", metavar="BOT.js", help="with --engine quickjs: run this bot.js (default: compile FILE)"
    )
    simulate.add_argument("--bot-username", default=None, help="for /cmd@name addressing")
    simulate.set_defaults(handler=_simulate)

    chat = sub.add_parser(
        "chat",
        help="talk to a bot in the terminal",
        description="Type messages or /commands; a number presses that button; :help lists more.",
        epilog=SHORT_FORMS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat.add_argument("file", metavar="FILE", help="the BotSpec")
    chat.add_argument("--api", metavar="FIXTURE.json", help="scripted apiCall results (default: real HTTP)")
    chat.add_argument("--lang", default="en", help="your language_code (default en)")
    chat.add_argument("--name", default="Tester", help="your first name")
    chat.add_argument("--chat", type=int, default=1, help="chat id (default 1)")
    chat.add_argument("--bot-username", default=None)
    chat.set_defaults(handler=_chat)
