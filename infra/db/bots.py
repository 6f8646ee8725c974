"""Bots: a Telegram bot's credentials and which revision serves its traffic.

Invariants:

- the token and the webhook secret are stored only as ``SecretBox`` ciphertexts
  bound to their row (``bot:<id>:token``, ``bot:<id>:webhook-secret``); no
  function here returns either, except ``decrypt_token`` (for the Bot API client)
  and ``decrypt_webhook_secret`` (for ``setWebhook``); ingress checks a presented
  secret with ``check_webhook_secret`` in constant time;
- ``active_rev`` changes only through ``flip_active``: one compare-and-set
  statement, so of several concurrent flips from the same expected revision
  exactly one wins; given a deployment it also records that deployment's
  ``flip`` stage and success in the same statement;
- a bot is never deleted, only marked (``deleted_at``): its id is never reused and
  its history stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from botkiln.infra.crypto import SecretBox, constant_time_equals
from botkiln.infra.db.pool import Db, from_row

_SELECT = (
    "SELECT id, project_id, name, telegram_bot_id, telegram_username, active_rev, active_since,"
    " created_by, created_at, deleted_at FROM bots"
)


@dataclass(frozen=True)
class Bot:
    """A bot as the control plane shows it: never its token or webhook secret."""

    id: str
    project_id: UUID
    name: str
    telegram_bot_id: int | None
    telegram_username: str | None
    active_rev: str | None
    active_since: datetime | None
    created_by: UUID | None
    created_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True)
class BotIdTaken:
    """``create_bot`` result: the id is in use (ids are never reused)."""

    bot_id: str


@dataclass(frozen=True)
class TokenInUse:
    """``create_bot``/``set_token`` result: another live bot has this Telegram bot."""

    telegram_bot_id: int


@dataclass(frozen=True)
class FlipResult:
    """``flip_active`` result: whether this call flipped, and what is active now."""

    flipped: bool
    active_rev: str | None


def _token_context(bot_id: str) -> str:
    return f"bot:{bot_id}:token"


def _secret_context(bot_id: str) -> str:
    return f"bot:{bot_id}:webhook-secret"


async def create_bot(
    db: Db,
    box: SecretBox,
    *,
    bot_id: str,
    project_id: UUID,
    name: str,
    token: str,
    webhook_secret: str,
    created_by: UUID | None,
    telegram_bot_id: int | None = None,
    telegram_username: str | None = None,
) -> Bot | BotIdTaken | TokenInUse:
    """Store a new bot with its token and webhook secret encrypted."""
    try:
        row = await db.fetchrow(
            "INSERT INTO bots (id, project_id, name, telegram_bot_id, telegram_username, token_ciphertext,"
            " webhook_secret_ciphertext, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (id) DO NOTHING RETURNING *",
            bot_id,
            project_id,
            name,
            telegram_bot_id,
            telegram_username,
            box.encrypt(token, context=_token_context(bot_id)),
            box.encrypt(webhook_secret, context=_secret_context(bot_id)),
            created_by,
        )
    except asyncpg.UniqueViolationError:
        assert telegram_bot_id is not None
        return TokenInUse(telegram_bot_id)
    return BotIdTaken(bot_id) if row is None else from_row(Bot, row)


async def get_bot(db: Db, bot_id: str, *, include_deleted: bool = False) -> Bot | None:
    """The bot, unless it does not exist or was deleted (and ``include_deleted`` is false)."""
    row = await db.fetchrow(_SELECT + " WHERE id = $1", bot_id)
    if row is None or (row["deleted_at"] is not None and not include_deleted):
        return None
    return from_row(Bot, row)


async def list_bots(db: Db, project_id: UUID) -> list[Bot]:
    """The project's live bots, oldest first."""
    rows = await db.fetch(_SELECT + " WHERE project_id = $1 AND deleted_at IS NULL ORDER BY created_at, id", project_id)
    return [from_row(Bot, r) for r in rows]


async def set_token(
    db: Db,
    box: SecretBox,
    bot_id: str,
    token: str,
    *,
    telegram_bot_id: int | None = None,
    telegram_username: str | None = None,
) -> bool | TokenInUse:
    """Replace a live bot's token (and its Telegram identity); false if no such bot."""
    try:
        status = await db.execute(
            "UPDATE bots SET token_ciphertext = $2, telegram_bot_id = $3, telegram_username = $4"
            " WHERE id = $1 AND deleted_at IS NULL",
            bot_id,
            box.encrypt(token, context=_token_context(bot_id)),
            telegram_bot_id,
            telegram_username,
        )
    except asyncpg.UniqueViolationError:
        assert telegram_bot_id is not None
        return TokenInUse(telegram_bot_id)
    return status == "UPDATE 1"


async def set_webhook_secret(db: Db, box: SecretBox, bot_id: str, webhook_secret: str) -> bool:
    """Replace a live bot's webhook secret; false if no such bot."""
    status = await db.execute(
        "UPDATE bots SET webhook_secret_ciphertext = $2 WHERE id = $1 AND deleted_at IS NULL",
        bot_id,
        box.encrypt(webhook_secret, context=_secret_context(bot_id)),
    )
    return status == "UPDATE 1"


async def decrypt_token(db: Db, box: SecretBox, bot_id: str) -> str | None:
    """The live bot's Telegram token in clear — only for the Bot API client.

    Raises:
        DecryptionFailed: the stored value does not decrypt with the configured keys.
    """
    ciphertext = await db.fetchval("SELECT token_ciphertext FROM bots WHERE id = $1 AND deleted_at IS NULL", bot_id)
    return None if ciphertext is None else box.decrypt(ciphertext, context=_token_context(bot_id))


async def decrypt_webhook_secret(db: Db, box: SecretBox, bot_id: str) -> str | None:
    """The live bot's webhook secret in clear — only for registering the webhook.

    Raises:
        DecryptionFailed: the stored value does not decrypt with the configured keys.
    """
    ciphertext = await db.fetchval(
        "SELECT webhook_secret_ciphertext FROM bots WHERE id = $1 AND deleted_at IS NULL", bot_id
    )
    return None if ciphertext is None else box.decrypt(ciphertext, context=_secret_context(bot_id))


async def check_webhook_secret(db: Db, box: SecretBox, bot_id: str, presented: str) -> bool:
    """Whether ``presented`` is the live bot's webhook secret (compared in constant time)."""
    expected = await decrypt_webhook_secret(db, box, bot_id)
    return expected is not None and constant_time_equals(expected, presented)


async def delete_bot(db: Db, bot_id: str) -> bool:
    """Mark the bot deleted (its history stays); false if it was not live."""
    status = await db.execute("UPDATE bots SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL", bot_id)
    return status == "UPDATE 1"


async def flip_active(
    db: Db,
    bot_id: str,
    expected_rev: str | None,
    new_rev: str,
    *,
    deployment_id: int | None = None,
    drain: bool = False,
) -> FlipResult:
    """Point the bot's traffic at ``new_rev`` if ``expected_rev`` is still active and no rollout is live.

    ``drain`` (a deploy) keeps ``expected_rev`` as the draining revision, on which conversations
    already under way finish (docs/rollouts.md); without it (a rollback) none does. The route
    version is bumped with the flip.

    With ``deployment_id`` (a deployment of ``new_rev`` to this bot, not finished)
    the same statement appends its ``flip`` stage as passed and its success
    outcome, so a flip and its record cannot be separated by a crash; nothing
    flips if that deployment is for another bot or revision, or already finished.

    Raises:
        asyncpg.ForeignKeyViolationError: ``new_rev`` is not a recorded revision of this bot.
    """
    row = await db.fetchrow(
        "WITH flipped AS ("
        "   UPDATE bots SET active_rev = $3, active_since = now(), route_version = route_version + 1,"
        "   draining_rev = CASE WHEN $5 THEN $2 END"
        "   WHERE id = $1 AND deleted_at IS NULL AND active_rev IS NOT DISTINCT FROM $2"
        "   AND NOT EXISTS (SELECT 1 FROM rollouts r WHERE r.bot_id = $1 AND r.status IN ('running', 'paused'))"
        "   AND ($4::bigint IS NULL OR EXISTS ("
        "     SELECT 1 FROM deployments d WHERE d.id = $4 AND d.bot_id = $1 AND d.rev_hash = $3"
        "     AND NOT EXISTS (SELECT 1 FROM deployment_outcomes o WHERE o.deployment_id = d.id)))"
        "   RETURNING id),"
        " staged AS (INSERT INTO deployment_stages (deployment_id, stage, status)"
        "   SELECT $4, 'flip', 'passed' FROM flipped WHERE $4 IS NOT NULL),"
        " finished AS (INSERT INTO deployment_outcomes (deployment_id, status)"
        "   SELECT $4, 'succeeded' FROM flipped WHERE $4 IS NOT NULL)"
        " SELECT (SELECT count(*) FROM flipped) AS flipped",
        bot_id,
        expected_rev,
        new_rev,
        deployment_id,
        drain,
    )
    assert row is not None
    if row["flipped"]:
        return FlipResult(True, new_rev)
    current = await db.fetchval("SELECT active_rev FROM bots WHERE id = $1", bot_id)
    return FlipResult(False, current)
