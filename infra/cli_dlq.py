"""``botkiln dlq list|show|replay|drop BOT …``: a bot's dead letters, inbound and outbound (docs/dlq.md).

- ``list BOT [--queue in|out|both] [--json]``: one line per entry (``--json``: one object per line);
  never the update payload or the action's parameters, which may hold user data;
- ``show BOT in|out INDEX``: one entry in full (the update JSON, or the action);
- ``replay BOT in|out (INDEX|--all)``: inbound entries go back to the tail of their chat's queue
  (``RedisChatQueue.requeue_dead_letters``); outbound actions are sent again (``OutboundSender.replay``)
  with the bot's token from PostgreSQL (BOTKILN_DATABASE_URL, BOTKILN_SECRET_KEY) to BOTKILN_TELEGRAM_API_URL;
- ``drop BOT in|out (INDEX|--all)``: discard entries.

INDEX is the entry's position in ``list``, oldest first, from 0. No command prints a token.

The operations themselves (``choose``, ``dlq_sender``, ``replay_dead_actions``, ``drop_dead_actions``)
are public: the GraphQL API (``graphql/dlq.py``) calls the same functions.

Exit codes: 0 done; 1 a failure: Redis or PostgreSQL unreachable, a stored token that does not
decrypt, a replayed action that failed again (it stays listed); 2 unusable input: a malformed bot
id, no entry at INDEX, a bot with no token in the database, a missing or malformed setting, bad
arguments. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import asyncpg
import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from botkiln.infra.chat_queue import DeadLetter, RedisChatQueue
from botkiln.infra.crypto import DecryptionFailed
from botkiln.infra.db import DatabaseUnavailable, connect
from botkiln.infra.db.bots import decrypt_token
from botkiln.infra.db.pool import redact_dsn
from botkiln.infra.outbound import (
    ActionResult,
    BotApiCaller,
    DeadAction,
    OutboundLimiter,
    OutboundSender,
    RetryPolicy,
)
from botkiln.infra.ports import BOT_ID
from botkiln.infra.redis_keys import PREFIX, ChatQueueKeys, OutboundKeys
from botkiln.infra.settings import Settings, SettingsError
from botkiln.infra.telegram_api import BotApiClient, redact

Which = int | Literal["all"]
"""An entry's index (its position, oldest first, from 0) or every entry."""

T = TypeVar("T")

_REDIS_TIMEOUT_S = 5.0


# --- the operations, shared with the GraphQL API ---------------------------------------------------------------------


class _NoCalls:
    """The Bot API of a sender that only reads or drops dead letters: never called."""

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        raise AssertionError(f"dead letters: {method} called outside replay")


def choose(entries: Sequence[T], which: Which) -> list[tuple[int, T]]:
    """``(index, entry)`` of entry ``which``, or of every entry.

    Raises:
        IndexError: there is no entry ``which``.
    """
    if which == "all":
        return list(enumerate(entries))
    if not 0 <= which < len(entries):
        raise IndexError(which)
    return [(which, entries[which])]


def dlq_sender(
    redis: Redis,
    prefix: str,
    api: Callable[[str], BotApiCaller] = lambda token: _NoCalls(),
    *,
    retry: RetryPolicy | None = None,
) -> OutboundSender:
    """An ``OutboundSender`` for reading, replaying and dropping ``dlq:out`` under ``prefix``."""
    return OutboundSender(redis, OutboundLimiter(redis, prefix=prefix), api, prefix=prefix, retry=retry)


@dataclass(frozen=True)
class ReplayedAction:
    """One outbound dead letter sent again: its index when chosen, the entry, and what became of it."""

    index: int
    entry: DeadAction | None
    """None if the entry changed between listing and replaying (then ``index`` is a best guess)."""
    result: ActionResult
    chat_id: int
    dedup_key: str


async def replay_dead_actions(sender: OutboundSender, bot_id: str, token: str, which: Which) -> list[ReplayedAction]:
    """Send entry ``which`` (or all) of ``dlq:out:<botId>`` again (``OutboundSender.replay``), oldest first.

    Raises:
        IndexError: there is no entry ``which`` (or it went away meanwhile).
    """
    chosen = choose(await sender.dead_letters(bot_id), which)
    if not chosen:
        return []
    reports = await sender.replay(bot_id, token, which)
    known = {(d.chat_id, d.dedup_key, d.index): (i, d) for i, d in chosen}
    first = 0 if which == "all" else which
    done = []
    for offset, report in enumerate(reports):
        [result] = report.results
        index, entry = known.get((report.chat_id, report.dedup_key, result.index), (first + offset, None))
        done.append(ReplayedAction(index, entry, result, report.chat_id, report.dedup_key))
    return done


async def drop_dead_actions(redis: Redis, prefix: str, bot_id: str, chosen: Sequence[DeadAction]) -> int:
    """Remove ``chosen`` entries of ``dlq:out:<botId>`` by their exact value; how many this call removed."""
    key = OutboundKeys(prefix).dlq_out(bot_id)
    dropped = 0
    for dead in chosen:
        dropped += int(await redis.lrem(key, 1, dead.raw))
    return dropped


# --- the CLI ---------------------------------------------------------------------------------------------------------


class _Stop(Exception):
    """Ends a command with ``code`` after printing ``message`` (one line) on stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Context:
    settings: Settings
    redis: Redis
    prefix: str
    bot_id: str
    queue: RedisChatQueue

    def sender(self, api: Callable[[str], BotApiCaller] = lambda token: _NoCalls()) -> OutboundSender:
        return dlq_sender(self.redis, self.prefix, api)


Command = Callable[[_Context, argparse.Namespace], Awaitable[int]]


def _iso(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(timespec="milliseconds")


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _pick(entries: Sequence[T], which: Which, name: str) -> list[tuple[int, T]]:
    try:
        return choose(entries, which)
    except IndexError:
        raise _Stop(2, f"{name} has no entry {which} (it holds {_count(len(entries), 'entry', 'entries')})") from None


# --- list and show --------------------------------------------------------------------------------------------------


def _in_json(index: int, d: DeadLetter) -> dict[str, Any]:
    return {
        "queue": "in", "index": index, "chatId": d.chat_id, "updateId": d.update_id, "reason": d.reason,
        "deliveries": d.deliveries, "at": _iso(d.at_ms), "atMs": d.at_ms,
    }  # fmt: skip


def _out_json(index: int, d: DeadAction) -> dict[str, Any]:
    return {
        "queue": "out", "index": index, "chatId": d.chat_id, "method": d.action["method"], "error": redact(d.error),
        "errorCode": d.error_code, "attempts": d.attempts, "dedupKey": d.dedup_key, "actionIndex": d.index,
        "at": _iso(d.at_ms), "atMs": d.at_ms,
    }  # fmt: skip


def _in_line(index: int, d: DeadLetter) -> str:
    return (
        f"  {index:>3}  {_iso(d.at_ms)}  chat {d.chat_id}  update {d.update_id}  "
        f"deliveries {d.deliveries}  reason: {_one_line(d.reason)}"
    )


def _out_line(index: int, d: DeadAction) -> str:
    return (
        f"  {index:>3}  {_iso(d.at_ms)}  chat {d.chat_id}  {d.action['method']}  "
        f"attempts {d.attempts}  error: {_one_line(d.error)}"
    )


async def _list(ctx: _Context, args: argparse.Namespace) -> int:
    queues = ("in", "out") if args.queue == "both" else (args.queue,)
    for queue in queues:
        name = f"dlq:{queue}:{ctx.bot_id}"
        if queue == "in":
            lines = [(_in_json(i, d), _in_line(i, d)) for i, d in enumerate(await ctx.queue.dead_letters(ctx.bot_id))]
        else:
            dead = await ctx.sender().dead_letters(ctx.bot_id)
            lines = [(_out_json(i, d), _out_line(i, d)) for i, d in enumerate(dead)]
        if args.json:
            for obj, _ in lines:
                print(json.dumps({"bot": ctx.bot_id, **obj}, ensure_ascii=False, separators=(",", ":")))
            continue
        print(f"{name}: {_count(len(lines), 'entry', 'entries')}")
        for _, line in lines:
            print(line)
    return 0


def _payload_text(payload: bytes) -> str:
    try:
        return json.dumps(json.loads(payload), ensure_ascii=False, indent=2)
    except ValueError:
        return f"(not JSON, {len(payload)} bytes)\n" + payload.decode("utf-8", "backslashreplace")


def _field(label: str, value: object) -> str:
    return f"  {label + ':':<12}" + str(value).replace("\n", "\n" + " " * 14)


async def _show(ctx: _Context, args: argparse.Namespace) -> int:
    name = f"dlq:{args.queue}:{ctx.bot_id}"
    if args.queue == "in":
        [(index, d)] = _pick(await ctx.queue.dead_letters(ctx.bot_id), args.index, name)
        fields = [
            ("chat", d.chat_id), ("update", d.update_id), ("reason", d.reason), ("deliveries", d.deliveries),
            ("at", _iso(d.at_ms)),
        ]  # fmt: skip
        body = "update:\n" + _payload_text(d.payload)
    else:
        [(index, a)] = _pick(await ctx.sender().dead_letters(ctx.bot_id), args.index, name)
        fields = [
            ("chat", a.chat_id), ("method", a.action["method"]), ("error", a.error), ("attempts", a.attempts),
            ("update", a.dedup_key), ("action", f"{a.index} of the update"), ("at", _iso(a.at_ms)),
        ]  # fmt: skip
        body = "action:\n" + json.dumps(a.action, ensure_ascii=False, indent=2)
    print(redact("\n".join([f"{name} #{index}", *(_field(label, value) for label, value in fields), body])))
    return 0


# --- replay and drop ------------------------------------------------------------------------------------------------


async def _replay(ctx: _Context, args: argparse.Namespace) -> int:
    which: Which = "all" if args.all else args.index
    name = f"dlq:{args.queue}:{ctx.bot_id}"
    if args.queue == "in":
        return await _replay_in(ctx, which, name)
    return await _replay_out(ctx, which, name)


async def _replay_in(ctx: _Context, which: Which, name: str) -> int:
    try:
        done = await ctx.queue.requeue_dead_letters(ctx.bot_id, which)
    except IndexError:
        held = int(await ctx.redis.llen(ChatQueueKeys(ctx.prefix).dlq_in(ctx.bot_id)))
        raise _Stop(2, f"{name} has no entry {which} (it holds {_count(held, 'entry', 'entries')})") from None
    if not done:
        print(f"{name} is empty: nothing to replay")
        return 0
    first = 0 if which == "all" else which
    for offset, (d, position) in enumerate(done):
        what = f"in #{first + offset}: chat {d.chat_id} update {d.update_id}"
        if position:
            print(f"{what}: re-queued at the tail of its chat (position {position})")
        else:
            print(f"{what}: no longer in the DLQ (replayed or dropped meanwhile), skipped")
    replayed = sum(1 for _, position in done if position)
    print(f"replayed {replayed} of {len(done)} from {name}")
    return 0


async def _replay_out(ctx: _Context, which: Which, name: str) -> int:
    chosen = _pick(await ctx.sender().dead_letters(ctx.bot_id), which, name)
    if not chosen:
        print(f"{name} is empty: nothing to replay")
        return 0
    token = await _token(ctx.settings, ctx.bot_id)
    base_url = ctx.settings.telegram_api_url
    async with httpx.AsyncClient() as http:
        sender = ctx.sender(lambda t: BotApiClient(http, t, base_url=base_url))
        try:
            replayed = await replay_dead_actions(sender, ctx.bot_id, token, which)
        except IndexError:
            raise _Stop(2, f"{name} has no entry {which} any more (dropped or replayed meanwhile)") from None
    kept = 0
    for done in replayed:
        print(_report_line(done))
        kept += done.result.status not in ("sent", "duplicate")
    print(f"delivered {len(replayed) - kept} of {len(replayed)}; {kept} kept in {name}")
    return 1 if kept else 0


def _report_line(done: ReplayedAction) -> str:
    r = done.result
    method = "action" if done.entry is None else done.entry.action["method"]
    what = f"out #{done.index}: chat {done.chat_id} {method} (update {done.dedup_key}, action {r.index})"
    if r.status == "sent":
        return f"{what}: sent ({_count(r.attempts, 'attempt', 'attempts')}), removed from the DLQ"
    if r.status == "duplicate":
        return f"{what}: already delivered, not sent again, removed from the DLQ"
    return f"{what}: {r.status.replace('_', ' ')}: {_one_line(r.error or '')}; kept in the DLQ"


async def _token(settings: Settings, bot_id: str) -> str:
    """The bot's Bot API token from PostgreSQL; never printed."""
    if not settings.database_url:
        raise _Stop(2, "BOTKILN_DATABASE_URL is missing: replaying outbound actions needs the bot's token from it")
    try:
        box = settings.secret_box()
    except SettingsError as exc:
        raise _Stop(2, str(exc)) from None
    try:
        conn = await connect(settings.database_url)
    except DatabaseUnavailable as exc:
        raise _Stop(1, str(exc)) from None
    try:
        token = await decrypt_token(conn, box, bot_id)
    except DecryptionFailed as exc:
        raise _Stop(1, f"the token of bot {bot_id} does not decrypt with BOTKILN_SECRET_KEY: {exc}") from None
    except asyncpg.PostgresError as exc:
        raise _Stop(1, f"reading the token of bot {bot_id} failed: {type(exc).__name__}: {exc}") from None
    finally:
        await conn.close()
    if token is None:
        raise _Stop(2, f"no live bot {bot_id!r} in the database: there is no token to replay with")
    return token


async def _drop(ctx: _Context, args: argparse.Namespace) -> int:
    which: Which = "all" if args.all else args.index
    name = f"dlq:{args.queue}:{ctx.bot_id}"
    if args.queue == "in":
        letters = _pick(await ctx.queue.dead_letters(ctx.bot_id), which, name)
        try:
            dropped = await ctx.queue.drop_dead_letters(ctx.bot_id, which)
        except IndexError:
            dropped = 0
        described = [f"in #{i}: chat {d.chat_id} update {d.update_id}" for i, d in letters]
    else:
        actions = _pick(await ctx.sender().dead_letters(ctx.bot_id), which, name)
        dropped = await drop_dead_actions(ctx.redis, ctx.prefix, ctx.bot_id, [d for _, d in actions])
        described = [f"out #{i}: chat {d.chat_id} {d.action['method']}" for i, d in actions]
    if which != "all":
        print(f"{described[0]}: {'dropped' if dropped else 'no longer in the DLQ (replayed or dropped meanwhile)'}")
    print(f"dropped {dropped} of {len(described)} from {name}")
    return 0


# --- wiring ---------------------------------------------------------------------------------------------------------


async def _with_redis(command: Command, args: argparse.Namespace, settings: Settings) -> int:
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=_REDIS_TIMEOUT_S, socket_timeout=_REDIS_TIMEOUT_S)
    try:
        queue = RedisChatQueue(redis, prefix=args.key_prefix)
        return await command(_Context(settings, redis, args.key_prefix, args.bot, queue), args)
    except RedisError as exc:
        raise _Stop(1, f"Redis at {redact_dsn(settings.redis_url)} failed: {_one_line(str(exc))}") from None
    finally:
        await redis.aclose()


def _handler(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            if not BOT_ID.match(args.bot):
                raise _Stop(
                    2, f"{args.bot!r} is not a bot id (lowercase letters, digits, '-' and '_'; at most 64 characters)"
                )
            try:
                settings = Settings.from_env()
            except SettingsError as exc:
                raise _Stop(2, str(exc)) from None
            return asyncio.run(_with_redis(command, args, settings))
        except _Stop as stop:
            print(f"botkiln dlq: {stop}", file=sys.stderr)
            return stop.code

    return run


def _index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an entry index (0, 1, …) as `dlq list` shows it, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dlq`` command group."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("bot", metavar="BOT", help="the bot id")
    common.add_argument("--key-prefix", default=PREFIX, metavar="PREFIX", help=f"Redis key prefix (default {PREFIX!r})")
    codes = "Exit codes: 0 done, 1 failure (Redis/PostgreSQL, a replay that failed again), 2 unusable input."
    dlq = sub.add_parser("dlq", help="list, show, replay or drop a bot's dead letters (docs/dlq.md)")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", metavar="SUBCOMMAND")
    dlq_sub.required = True

    list_ = dlq_sub.add_parser(
        "list", parents=[common], help="one line per dead letter (no payloads)", description=codes
    )
    list_.add_argument("--queue", choices=("in", "out", "both"), default="both", help="which DLQ (default both)")
    list_.add_argument("--json", action="store_true", help="one JSON object per line")
    list_.set_defaults(handler=_handler(_list))

    show = dlq_sub.add_parser("show", parents=[common], help="one dead letter in full", description=codes)
    show.add_argument("queue", choices=("in", "out"), help="inbound updates or outbound actions")
    show.add_argument("index", type=_index, metavar="INDEX", help="the entry's index in `dlq list`")
    show.set_defaults(handler=_handler(_show))

    for name, command, doc in (
        ("replay", _replay, "re-queue inbound updates at their chat's tail, or send outbound actions again"),
        ("drop", _drop, "discard dead letters"),
    ):
        parser = dlq_sub.add_parser(name, parents=[common], help=doc, description=codes)
        parser.add_argument("queue", choices=("in", "out"), help="inbound updates or outbound actions")
        chosen = parser.add_mutually_exclusive_group(required=True)
        chosen.add_argument("index", nargs="?", type=_index, metavar="INDEX", help="the entry's index in `dlq list`")
        chosen.add_argument("--all", action="store_true", help="every entry, oldest first")
        parser.set_defaults(handler=_handler(command))
