"""Helpers of the runtime-plane tests: a bot with an active revision, updates, a served stand-in."""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from botkiln.generator.generators import CompilerGenerator
from botkiln.generator.revision import build_revision
from botkiln.infra.db import Pool, bots, revisions
from botkiln.infra.ports import ArtifactStore
from botkiln.infra.telegram_standin import BotApiStandIn, RateLimits
from botkiln.infra.telegram_standin_updates import chat, user_command, user_message
from tests.graphql.support import ServerThread
from tests.workers.support import BOX

FAST_LIMITS = RateLimits(
    per_bot_per_s=2000, per_bot_burst=200, per_chat_per_s=500, per_chat_burst=50, per_group_per_min=6000,
    per_group_burst=50,
)  # fmt: skip
_update_ids = itertools.count(1000)


def served_standin(limits: RateLimits = FAST_LIMITS) -> tuple[BotApiStandIn, ServerThread]:
    """A stand-in served on a loopback port (``stop`` the thread afterwards)."""
    made = BotApiStandIn(limits=limits)
    server = ServerThread()
    server.start(made.app)
    made.url = server.url
    return made, server


async def live_bot(
    pool: Pool, owner: tuple[UUID, UUID], token: str, *, username: str | None = None, webhook_secret: str | None = None
) -> str:
    """A bot row holding ``token`` and ``webhook_secret`` (encrypted with ``BOX``)."""
    bot_id = f"x-{secrets.token_hex(5)}"
    made = await bots.create_bot(
        pool, BOX, bot_id=bot_id, project_id=owner[1], name="Runtime test", token=token,
        webhook_secret=webhook_secret or secrets.token_hex(16), created_by=owner[0], telegram_username=username,
    )  # fmt: skip
    assert isinstance(made, bots.Bot), made
    return bot_id


async def record(pool: Pool, store: ArtifactStore, bot_id: str, spec: dict[str, Any]) -> str:
    """Build, store and record a revision of ``spec`` (what generate does); its hash."""
    revision = await asyncio.to_thread(build_revision, spec, CompilerGenerator())
    uri = await asyncio.to_thread(store.put_revision, bot_id, revision.rev_hash, revision.files)
    await revisions.record_revision(
        pool, rev=revision.rev, rev_json=revision.files["rev.json"], artifacts_uri=uri, created_by=None
    )
    return revision.rev_hash


async def activate(pool: Pool, store: ArtifactStore, bot_id: str, spec: dict[str, Any], *, drain: bool = False) -> str:
    """Build, store, record and flip a revision of ``spec`` (what a deploy does, minus its stages)."""
    rev_hash = await record(pool, store, bot_id, spec)
    active = await pool.fetchval("SELECT active_rev FROM bots WHERE id = $1", bot_id)
    flipped = await bots.flip_active(pool, bot_id, active, rev_hash, drain=drain)
    assert flipped.flipped
    return rev_hash


def update(chat_id: int, text: str) -> tuple[int, bytes]:
    """A fresh update id and the update's JSON (a command when ``text`` starts with ``/``)."""
    update_id = next(_update_ids)
    body = user_command(text, chat_id=chat_id) if text.startswith("/") else user_message(chat_id, text)
    body["update_id"] = update_id
    body["message"]["message_id"] = update_id
    body["message"]["date"] = 1_700_000_000
    return update_id, json.dumps(body).encode()


def open_chats(standin: BotApiStandIn, token: str, chat_ids: Iterator[int] | list[int]) -> None:
    """Open ``chat_ids`` on the stand-in (a bot can only message chats that exist)."""
    bot = standin.bots[token]
    for chat_id in chat_ids:
        standin.open_chat(bot, chat(chat_id))


def texts(standin: BotApiStandIn, token: str, chat_id: int) -> list[str]:
    """The texts the bot sent to ``chat_id``, in order."""
    bot = standin.bots[token]
    return [str(c.params.get("text")) for c in standin.calls(bot, "sendMessage") if c.ok and _chat(c.params) == chat_id]


def _chat(params: dict[str, Any]) -> int:
    return int(params["chat_id"])
