"""Bot secrets: ``setBotSecret`` / ``deleteBotSecret`` (owner role), ``Bot.secrets``, ``Bot.missingSecrets``.

A secret is the value an apiCall header's ``{{secret.NAME}}`` stands for (docs/secrets.md).
Values are write-only: they are encrypted at rest (``infra/db/bot_secrets.py``), no field
returns one, and neither an error message, a log line nor an audit entry contains one.
A change is announced on ``botkiln:flips`` so every runtime node re-reads the bot's secrets
before its next update (and within its cache TTL if the broadcast is lost).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from botkiln.graphql.context import Context
from botkiln.graphql.permissions import CanOwnBot
from botkiln.graphql.results import InvalidInput, NotFound, Problem, invalid, not_found
from botkiln.infra.db import audit, bot_secrets, bots, revisions
from botkiln.infra.progress import publish_flip

_log = logging.getLogger(__name__)

__all__ = ["BotSecret", "SecretMutation", "bot_secret_list", "missing_secret_names"]


@strawberry.type(description="A bot secret: its name and when it was set. Its value is never readable.")
class BotSecret:
    name: str
    updated_at: datetime

    @classmethod
    def from_info(cls, info: bot_secrets.SecretInfo) -> BotSecret:
        """The GraphQL form of a stored secret's description."""
        return cls(name=info.name, updated_at=info.updated_at)


@strawberry.type(description="The secret is stored (encrypted); running bots use it from their next update.")
class BotSecretSet:
    bot_id: strawberry.ID
    secret: BotSecret


@strawberry.type(description="The secret is gone; apiCall headers that name it are refused at the next deploy.")
class BotSecretDeleted:
    bot_id: strawberry.ID
    name: str


@strawberry.type(description="The bot already holds the most secrets allowed; delete one first.")
class SecretLimitReached(Problem):
    limit: int


SetBotSecretResult = Annotated[
    BotSecretSet | InvalidInput | NotFound | SecretLimitReached, strawberry.union("SetBotSecretResult")
]
DeleteBotSecretResult = Annotated[BotSecretDeleted | NotFound, strawberry.union("DeleteBotSecretResult")]


async def bot_secret_list(info: Info[Context, None], bot_id: str) -> list[BotSecret]:
    """``Bot.secrets``: the bot's secrets by name."""
    return [BotSecret.from_info(s) for s in await bot_secrets.list_secrets(info.context.services.db, bot_id)]


async def missing_secret_names(info: Info[Context, None], bot_id: str, rev_hash: str | None) -> list[str]:
    """``Bot.missingSecrets``: names ``rev_hash``'s (else the active revision's) headers use and the bot lacks."""
    services = info.context.services
    if rev_hash is None:
        bot = await bots.get_bot(services.db, bot_id)
        rev_hash = None if bot is None else bot.active_rev
    record = None if rev_hash is None else await revisions.get_revision(services.db, bot_id, rev_hash)
    if record is None:
        return []
    return await bot_secrets.missing_secrets(
        services.db, bot_id, record.rev.get("security", {}).get("secretsReferenced", [])
    )


async def _announce(info: Info[Context, None], bot_id: str, active_rev: str | None) -> None:
    try:
        await publish_flip(info.context.services.redis, bot_id, active_rev or "")
    except Exception as exc:  # nodes re-read within their cache TTL
        _log.warning("secret change of %s not broadcast (%s)", bot_id, type(exc).__name__)


@strawberry.type
class SecretMutation:
    @strawberry.mutation(
        permission_classes=[CanOwnBot],
        description="Store a secret for the bot's apiCall headers ({{secret.NAME}}); replaces a value of that name.",
    )
    async def set_bot_secret(
        self, info: Info[Context, None], bot_id: strawberry.ID, name: str, value: str
    ) -> SetBotSecretResult:
        if not bot_secrets.NAME.match(name):
            return invalid("name", bot_secrets.NAME_RULE)
        problem = bot_secrets.check_value(value)
        if problem is not None:
            return invalid("value", problem)
        services, user_id = info.context.services, info.context.user_id
        bot = await bots.get_bot(services.db, str(bot_id))
        if bot is None:
            return not_found("that bot")
        try:
            stored = await bot_secrets.set_secret(services.db, services.box, bot.id, name, value, updated_by=user_id)
        except ValueError:  # deleted in the meantime
            return not_found("that bot")
        if isinstance(stored, bot_secrets.TooManySecrets):
            return SecretLimitReached(message=f"a bot holds at most {stored.limit} secrets", limit=stored.limit)
        await audit.record(
            services.db, action="bot.secret.set", actor_id=user_id, project_id=bot.project_id, bot_id=bot.id,
            detail={"name": name},
        )  # fmt: skip
        await _announce(info, bot.id, bot.active_rev)
        return BotSecretSet(bot_id=strawberry.ID(bot.id), secret=BotSecret.from_info(stored))

    @strawberry.mutation(permission_classes=[CanOwnBot], description="Delete one of the bot's secrets.")
    async def delete_bot_secret(
        self, info: Info[Context, None], bot_id: strawberry.ID, name: str
    ) -> DeleteBotSecretResult:
        services = info.context.services
        bot = await bots.get_bot(services.db, str(bot_id))
        if bot is None:
            return not_found("that bot")
        if not bot_secrets.NAME.match(name) or not await bot_secrets.delete_secret(services.db, bot.id, name):
            return not_found(f"the secret {name[:64]}")
        await audit.record(
            services.db, action="bot.secret.delete", actor_id=info.context.user_id, project_id=bot.project_id,
            bot_id=bot.id, detail={"name": name},
        )  # fmt: skip
        await _announce(info, bot.id, bot.active_rev)
        return BotSecretDeleted(bot_id=strawberry.ID(bot.id), name=name)
