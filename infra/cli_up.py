"""``botkiln up [--example NAME] [--state DIR] [--port N] [--no-chat]``: the whole platform in one process.

Starts ``EmbeddedPlatform`` (infra/platform.py: embedded PostgreSQL and Redis, the API and
webhook ingress, workers, analytics, a local Telegram stand-in, the example bot deployed),
prints a banner, then chats: each stdin line goes to the bot as the user of chat 1001 and
its replies are printed (``bot> ``, buttons as ``[label]`` rows; typing a button's label
presses it). ``/quit``, ``:quit`` or the end of input stops everything; ``--no-chat``
serves until SIGTERM or SIGINT instead. Logs go to ``<state>/botkiln.log`` (errors also to
stderr), formatted as ``BOTKILN_LOG_FORMAT`` says; ``/metrics`` is served by the API
(docs/observability.md).

Exit codes: 0 after a clean stop (signals included), 1 the platform could not start
(a port in use, the state directory owned by another process, a failed deploy),
2 an unknown example or a malformed setting.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from botkiln.infra.logs import configure_logging, secret_values
from botkiln.infra.platform import EmbeddedPlatform, PlatformError, Stopped, example_spec, stop_on_signals
from botkiln.infra.settings import Settings, SettingsError
from botkiln.infra.tracing import configure_tracing
from botkiln.interpreter.errors import BotkilnError

_QUIT = {"/quit", ":quit"}
HELP = "Type a message or /command; type a button's label to press it; /quit stops everything."


def _up(args: argparse.Namespace) -> int:
    try:
        example_spec(args.example)
    except PlatformError as exc:
        print(f"botkiln up: {exc}", file=sys.stderr)
        return 2
    state = Path(args.state)
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"botkiln up: {exc}", file=sys.stderr)
        return 2
    # The terminal is the chat's: errors only there, everything in the file.
    redactor = configure_logging(settings, file=state / "botkiln.log", stream_level=logging.ERROR)
    configure_tracing(settings, service="botkiln")
    platform = EmbeddedPlatform(
        state, example=args.example, api_port=args.port, standin_port=args.standin_port, threads=args.threads
    )
    stop_on_signals()
    began = time.monotonic()
    try:
        print(f"Starting Botkiln (state in {state}; log in {state / 'botkiln.log'}) ...", file=sys.stderr, flush=True)
        try:
            platform.start()
        except SettingsError as exc:
            print(f"botkiln up: {exc}", file=sys.stderr)
            return 2
        except BotkilnError as exc:
            print(f"botkiln up: cannot start: {exc}", file=sys.stderr)
            return 1
        redactor.add(secret_values(platform.settings))  # the embedded services' own secrets
        print(banner(platform, time.monotonic() - began), flush=True)
        if args.no_chat:
            threading.Event().wait()  # until a signal raises
        else:
            chat(platform, sys.stdin, sys.stdout, echo=not sys.stdin.isatty())
        return 0
    except (KeyboardInterrupt, Stopped):
        return 0
    finally:
        print("Stopping ...", file=sys.stderr, flush=True)
        platform.stop()
        print("Stopped.", file=sys.stderr, flush=True)


def banner(platform: EmbeddedPlatform, ready_s: float) -> str:
    """What is running where, and how to talk to the bot."""
    bot, api = platform.bot, platform.api_url
    say = f"{platform.standin_url}/_user/{bot.username}/say"
    if platform.admin_password is not None:
        admin = f"admin@localhost / {platform.admin_password} (also in {platform.admin_file})"
    else:
        admin = f"admin@localhost, password in {platform.admin_file}"
    return "\n".join([
        f"Botkiln is up in {ready_s:.1f} s.",
        f"  API (GraphQL)     {api}/graphql   health {api}/healthz",
        f"  sign in as        {admin}",
        f"  Telegram stand-in {platform.standin_url}",
        f"  bot               {platform.bot_id} (@{bot.username}), revision {(platform.rev_hash or '?')[:12]}",
        f"  chat over HTTP    curl -s {say} -d '{{\"text\": \"/start\"}}'",
    ])  # fmt: skip


def chat(platform: EmbeddedPlatform, source: TextIO, out: TextIO, *, echo: bool = False) -> None:
    """Lines of ``source`` to the bot, its replies to ``out``, until ``/quit`` or the end of input."""
    out.write(HELP + "\n")
    while True:
        if echo:
            line = source.readline()
            if not line:
                return
            line = line.strip()
            if line:
                out.write(f"you> {line}\n")
        else:
            try:
                line = input("you> ").strip()
            except EOFError:
                out.write("\n")
                return
        if line in _QUIT:
            return
        if not line:
            continue
        try:
            replies = platform.say(line)
        except PlatformError as exc:
            replies = [f"(not delivered: {exc})"]
        for reply in replies or ["(no reply)"]:
            out.write("bot> " + reply.replace("\n", "\n     ") + "\n")
        out.flush()


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("between 0 (any free port) and 65535")
    return value


def _threads(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError("a whole number between 1 and 256")
    return int(text)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``up`` command."""
    up = sub.add_parser(
        "up",
        help="run the whole platform on embedded services and chat with an example bot",
        description="Exit codes: 0 clean stop, 1 could not start, 2 unknown example or malformed setting.",
    )
    up.add_argument("--example", default="faq", help="examples/NAME.json or a spec file (default faq)")
    up.add_argument("--state", default="var/embedded", help="state directory (default var/embedded)")
    up.add_argument("--port", type=_port, default=8000, help="API port on 127.0.0.1 (default 8000; 0 = any free)")
    up.add_argument("--standin-port", type=_port, default=8081, help="Telegram stand-in port (default 8081; 0 = any)")
    up.add_argument("--threads", type=_threads, default=4, help="worker threads (default 4)")
    up.add_argument("--no-chat", action="store_true", help="serve until SIGTERM/SIGINT instead of chatting")
    up.set_defaults(handler=_up)
