"""The echo bot of the runtime tests: its spec, its creation, and its replies as the stand-in recorded them.

Every update is the command ``/e <chat>:<seq>``; the bot answers it with exactly one message
``<prefix>|<tag>|<n>|<chat>:<seq>``: ``prefix`` is in the revision's strings, ``tag`` is written
to the state by the revision's ``save`` step just before the reply (both name the revision,
so a reply built from two revisions shows it), and ``n`` counts the chat's updates in its
state. ``n == seq`` therefore says the chat's state was changed exactly once per update, in
order, whichever process ran each one.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from redis.asyncio import Redis

from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.db import Pool, bots
from botkiln.infra.ports import ArtifactStore
from botkiln.infra.redis_keys import PREFIX, ChatQueueKeys, OutboundKeys, RuntimeKeys
from botkiln.infra.telegram_standin import BotApiStandIn, StandInBot
from botkiln.infra.telegram_standin_updates import chat, user_command
from tests.workers.runtime_support import activate
from tests.workers.support import BOX

COMMAND = "e"


def echo_spec(bot_id: str, prefix: str = "old") -> dict[str, Any]:
    """The echo bot; ``prefix`` marks its revision in every reply."""
    return {
        "schema_ver": 1,
        "meta": {"botId": bot_id, "name": "Echo", "locales": ["en"], "defaultLocale": "en"},
        "commands": [{"command": COMMAND, "flow": "echo", "argsVar": "text"}],
        "flows": [
            {
                "id": "echo",
                "steps": [
                    {"id": "count", "type": "save", "set": {"n": {"increment": 1}, "tag": prefix}},
                    {"id": "say", "type": "reply", "text": "echo"},
                ],
            }
        ],
        "state": {
            "vars": {"text": {"type": "string", "pii": True}, "n": {"type": "number"}, "tag": {"type": "string"}}
        },
        "localization": {"strings": {"echo": {"en": prefix + "|{{state.tag}}|{{state.n}}|{{state.text}}"}}},
    }


@dataclass(frozen=True)
class EchoBot:
    """A live echo bot: its id, webhook secret, active revision and its side of the stand-in."""

    bot_id: str
    secret: str
    rev: str
    standin: BotApiStandIn
    api: StandInBot


async def create_echo_bot(
    pool: Pool, store: ArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn, chat_ids: list[int]
) -> EchoBot:
    """A bot row with a fresh token and secret, its echo revision active, ``chat_ids`` open on the stand-in."""
    api = standin.register()
    bot_id = f"rt-{secrets.token_hex(5)}"
    secret = secrets.token_hex(16)
    made = await bots.create_bot(
        pool, BOX, bot_id=bot_id, project_id=owner[1], name="Runtime echo", token=api.token,
        webhook_secret=secret, created_by=owner[0], telegram_username=api.username,
    )  # fmt: skip
    assert isinstance(made, bots.Bot), made
    rev = await activate(pool, store, bot_id, echo_spec(bot_id))
    for chat_id in chat_ids:
        standin.open_chat(api, chat(chat_id))
    return EchoBot(bot_id, secret, rev, standin, api)


@dataclass(frozen=True)
class Planned:
    """One update to deliver: the ``seq``-th message of its chat."""

    update_id: int
    chat_id: int
    seq: int
    body: bytes


def plan(chat_ids: list[int], per_chat: int) -> dict[int, list[Planned]]:
    """``per_chat`` updates for each chat, with update ids unique across the run."""
    first = 10_000_000 + secrets.randbelow(10_000_000) * 100
    planned: dict[int, list[Planned]] = {}
    for index, chat_id in enumerate(chat_ids):
        items = planned[chat_id] = []
        for seq in range(1, per_chat + 1):
            update_id = first + index * per_chat + seq
            text = f"/{COMMAND} {chat_id}:{seq}"
            items.append(Planned(update_id, chat_id, seq, update_body(update_id, chat_id, text)))
    return planned


def update_body(update_id: int, chat_id: int, text: str) -> bytes:
    """A Telegram update carrying the user's ``text`` in ``chat_id``, as JSON bytes."""
    body = user_command(text, chat_id=chat_id)
    body["update_id"] = update_id
    body["message"]["message_id"] = update_id
    body["message"]["date"] = int(time.time())
    return json.dumps(body).encode()


@dataclass(frozen=True)
class Reply:
    """One message the bot sent, parsed; ``at`` is when the stand-in received it (epoch seconds)."""

    chat_id: int
    echoed_chat: int
    seq: int
    n: int
    prefix: str
    tag: str
    at: float
    text: str


def replies(bot: EchoBot) -> list[Reply]:
    """The bot's successful ``sendMessage`` calls, oldest first."""
    found = []
    for call in bot.standin.calls(bot.api, "sendMessage"):
        if not call.ok:
            continue
        text = str(call.params["text"])
        prefix, tag, n, echoed = text.split("|")
        chat_id, seq = echoed.split(":")
        found.append(Reply(int(call.params["chat_id"]), int(chat_id), int(seq), int(n), prefix, tag, call.at, text))
    return found


class Tally:
    """Counts the bot's successful ``sendMessage`` calls as they arrive, reading each record once."""

    def __init__(self, bot: EchoBot) -> None:
        self._records = bot.api.records
        self._seen = 0
        self.sent = 0

    def count(self) -> int:
        """Replies so far."""
        fresh = self._records[self._seen : len(self._records)]
        self._seen += len(fresh)
        self.sent += sum(1 for r in fresh if r.method == "sendMessage" and r.ok)
        return self.sent


def by_chat(found: list[Reply]) -> dict[int, list[Reply]]:
    """Replies grouped by chat, each chat's in the order they arrived."""
    grouped: dict[int, list[Reply]] = defaultdict(list)
    for reply in found:
        grouped[reply.chat_id].append(reply)
    return grouped


def problems(found: list[Reply], planned: dict[int, list[Planned]], *, duplicates_ok: bool = False) -> list[str]:
    """What breaks "each update answered exactly once, in its chat's order, with its state applied once".

    With ``duplicates_ok`` a reply repeated right after itself counts once (``duplicates`` lists them).
    """
    grouped = by_chat(found)
    wrong = [f"reply to chat {c} that was never written to" for c in grouped if c not in planned]
    for chat_id, items in planned.items():
        got = grouped.get(chat_id, [])
        if duplicates_ok:
            got = [r for i, r in enumerate(got) if i == 0 or got[i - 1].seq != r.seq]
        seqs = [r.seq for r in got]
        if seqs != [p.seq for p in items]:
            wrong.append(f"chat {chat_id}: replies to {seqs}, expected 1..{len(items)}")
        wrong.extend(f"chat {chat_id}: {r.text!r} counts {r.n}, not {r.seq}" for r in got if r.n != r.seq)
        wrong.extend(f"chat {chat_id}: {r.text!r} mixes revisions" for r in got if r.prefix != r.tag)
        wrong.extend(f"chat {chat_id}: {r.text!r} echoes another chat" for r in got if r.echoed_chat != chat_id)
    return wrong


def duplicates(found: list[Reply]) -> list[tuple[Reply, Reply]]:
    """(first copy, later copy) of every reply sent more than once."""
    first: dict[tuple[int, int], Reply] = {}
    again = []
    for reply in found:
        key = (reply.chat_id, reply.seq)
        if key in first:
            again.append((first[key], reply))
        else:
            first[key] = reply
    return again


@dataclass(frozen=True)
class Leftovers:
    """What a drained bot has none of: queued updates, ready or leased chats, delivery counts, unacknowledged
    effects, inbound and outbound dead letters."""

    depth: int = 0
    chats: int = 0
    ready: int = 0
    leased: int = 0
    tries: int = 0
    effects: int = 0
    dlq_in: int = 0
    dlq_out: int = 0


async def leftovers(redis: Redis, bot_id: str) -> Leftovers:
    """The bot's queue depth, queued chats, ready and leased chats, delivery counts, effects, dead letters."""
    keys = ChatQueueKeys(PREFIX)
    mine = f"{bot_id}:".encode()

    async def members(key: str) -> int:
        return sum(1 for m in cast(list[bytes], await redis.zrange(key, 0, -1)) if m.startswith(mine))

    async def matching(pattern: str) -> int:
        return len([k async for k in redis.scan_iter(match=pattern, count=1000)])

    return Leftovers(
        depth=await RedisChatQueue(redis, prefix=PREFIX).depth(bot_id),
        chats=await matching(keys.chat(f"{bot_id}:*")) + int(await redis.zcard(keys.heads(bot_id))),
        ready=await members(keys.ready),
        leased=await members(keys.leases),
        tries=sum(1 for f in cast(list[bytes], await redis.hkeys(keys.tries)) if f.startswith(mine)),
        effects=await matching(RuntimeKeys(PREFIX).effects(bot_id, 0).removesuffix("0") + "*"),
        dlq_in=int(await redis.llen(keys.dlq_in(bot_id))),
        dlq_out=int(await redis.llen(OutboundKeys(PREFIX).dlq_out(bot_id))),
    )


NONE_LEFT = Leftovers()
