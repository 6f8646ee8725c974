"""Bot secrets: the values ``{{secret.NAME}}`` in an apiCall's headers stands for (docs/secrets.md).

Invariants:

- a value is stored only as a ``SecretBox`` ciphertext bound to its bot and name
  (``bot:<id>:secret:<NAME>``); ``list_secrets`` returns names and times, never a value,
  and only ``decrypt_secrets`` (for the executor's outbound HTTP client) returns values;
- names follow the spec's placeholder rule (``A-Z``, then ``A-Z0-9_``, at most 64);
  a value is 1 … ``MAX_VALUE_BYTES`` bytes of UTF-8 without control characters (an HTTP
  header value cannot carry them); a bot holds at most ``MAX_SECRETS`` secrets;
- setting an existing name replaces its value; the count is checked under a lock on the
  bot's row, so concurrent writers cannot exceed the limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from botkiln.infra.crypto import SecretBox
from botkiln.infra.db.pool import Db, from_row, transaction

__all__ = [
    "MAX_SECRETS",
    "MAX_VALUE_BYTES",
    "NAME",
    "SecretInfo",
    "TooManySecrets",
    "check_value",
    "decrypt_secrets",
    "delete_secret",
    "list_secrets",
    "missing_secrets",
    "set_secret",
]

MAX_SECRETS = 50
MAX_VALUE_BYTES = 4096
NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
NAME_RULE = "a secret name is A-Z, then A-Z, 0-9 or _, at most 64 characters (as in {{secret.NAME}})"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SecretInfo:
    """A secret as anyone may see it: its name and when it was last set, never its value."""

    name: str
    updated_at: datetime
    updated_by: UUID | None


@dataclass(frozen=True)
class TooManySecrets:
    """``set_secret`` result: the bot already holds ``MAX_SECRETS`` other secrets."""

    limit: int = MAX_SECRETS


def _context(bot_id: str, name: str) -> str:
    return f"bot:{bot_id}:secret:{name}"


def check_value(value: str) -> str | None:
    """Why ``value`` cannot be a secret's value (a sentence without the value), or None."""
    size = len(value.encode("utf-8"))
    if size == 0:
        return "the value is empty"
    if size > MAX_VALUE_BYTES:
        return f"the value is {size} bytes; at most {MAX_VALUE_BYTES}"
    if _CONTROL.search(value):
        return "the value holds a control character (line break, tab, …), which an HTTP header cannot carry"
    return None


async def set_secret(
    db: Db, box: SecretBox, bot_id: str, name: str, value: str, *, updated_by: UUID | None
) -> SecretInfo | TooManySecrets:
    """Store (or replace) the bot's secret ``name``.

    Raises:
        ValueError: ``name`` or ``value`` breaks the rules above (callers check first), or no live bot ``bot_id``.
    """
    if not NAME.match(name):
        raise ValueError(NAME_RULE)
    problem = check_value(value)
    if problem is not None:
        raise ValueError(problem)
    async with transaction(db) as conn:
        if await conn.fetchval("SELECT 1 FROM bots WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", bot_id) is None:
            raise ValueError(f"no live bot {bot_id!r}")
        row = await conn.fetchrow(
            "INSERT INTO bot_secrets (bot_id, name, ciphertext, updated_by)"
            " SELECT $1, $2, $3, $4"
            " WHERE EXISTS (SELECT 1 FROM bot_secrets WHERE bot_id = $1 AND name = $2)"
            "    OR (SELECT count(*) FROM bot_secrets WHERE bot_id = $1) < $5"
            " ON CONFLICT (bot_id, name) DO UPDATE SET ciphertext = EXCLUDED.ciphertext,"
            "    updated_by = EXCLUDED.updated_by, updated_at = now()"
            " RETURNING name, updated_at, updated_by",
            bot_id,
            name,
            box.encrypt(value, context=_context(bot_id, name)),
            updated_by,
            MAX_SECRETS,
        )
    return TooManySecrets() if row is None else from_row(SecretInfo, row)


async def delete_secret(db: Db, bot_id: str, name: str) -> bool:
    """Forget the bot's secret ``name``; false if it had none of that name."""
    status = await db.execute("DELETE FROM bot_secrets WHERE bot_id = $1 AND name = $2", bot_id, name)
    return status == "DELETE 1"


async def list_secrets(db: Db, bot_id: str) -> list[SecretInfo]:
    """The bot's secrets by name: names and times only."""
    rows = await db.fetch(
        "SELECT name, updated_at, updated_by FROM bot_secrets WHERE bot_id = $1 ORDER BY name", bot_id
    )
    return [from_row(SecretInfo, r) for r in rows]


async def missing_secrets(db: Db, bot_id: str, wanted: Iterable[str]) -> list[str]:
    """The names in ``wanted`` (e.g. ``interpreter.templates.secret_names(spec)``) the bot has no value for."""
    wanted = list(wanted)
    if not wanted:
        return []
    have = {s.name for s in await list_secrets(db, bot_id)}
    return [name for name in wanted if name not in have]


async def decrypt_secrets(db: Db, box: SecretBox, bot_id: str) -> dict[str, str]:
    """The bot's secrets in clear, by name — only for the executor's outbound HTTP client.

    Raises:
        DecryptionFailed: a stored value does not decrypt with the configured keys.
    """
    rows = await db.fetch("SELECT name, ciphertext FROM bot_secrets WHERE bot_id = $1", bot_id)
    return {r["name"]: box.decrypt(r["ciphertext"], context=_context(bot_id, r["name"])) for r in rows}
