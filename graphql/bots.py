"""Bots: ``bots``/``bot`` queries (with live webhook state); ``createBot`` and ``deleteBot``.

``Bot.webhook`` (editor role) asks Telegram (``getWebhookInfo``) with the bot's
token where its updates go. The URL is shown without user info, query or the
token; ``registered`` says whether it is this platform's ``{BOTKILN_PUBLIC_URL}/wh/{botId}``.
When Telegram refuses the token or does not answer, the field is a
``TokenRejected`` or ``TelegramUnavailable`` with the reason.

``createBot`` checks the token with ``getMe``, then, in one database transaction,
stores the bot (token and a fresh webhook secret encrypted, ``infra/db/bots.py``)
and registers the webhook ``{BOTKILN_PUBLIC_URL}/wh/{botId}`` with that secret.
If Telegram refuses the webhook the transaction rolls back, so a failed attempt
neither burns the bot id nor leaves a bot without a webhook.

The token and the webhook secret are write-only: no field returns them, no error
message or audit entry contains them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import strawberry
from strawberry.types import Info

from botkiln.graphql.connections import Connection, offset_connection
from botkiln.graphql.context import Context, Services
from botkiln.graphql.permissions import CanEditBot, CanOwnBot, CanOwnProject, CanViewBot, CanViewProject
from botkiln.graphql.results import (
    InvalidInput,
    NotFound,
    Problem,
    TelegramUnavailable,
    TokenRejected,
    invalid,
    not_found,
)
from botkiln.graphql.revisions import Revision
from botkiln.graphql.secrets import BotSecret, bot_secret_list, missing_secret_names
from botkiln.infra.crypto import new_webhook_secret
from botkiln.infra.db import audit, bots, revisions, specs, transaction
from botkiln.infra.telegram_api import (
    TOKEN,
    BotApiError,
    BotApiRetryAfter,
    BotApiUnauthorized,
    BotApiUnreachable,
    redact,
)

_BOT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@strawberry.type(description="The bot's webhook as Telegram reports it right now.")
class WebhookState:
    url: str = strawberry.field(description="Where Telegram delivers (no user info, query or token); empty: none.")
    expected_url: str
    registered: bool = strawberry.field(description="Telegram delivers to this deployment's ingress.")
    pending_update_count: int
    last_error_message: str | None
    last_error_at: datetime | None


WebhookStatus = Annotated[WebhookState | TokenRejected | TelegramUnavailable, strawberry.union("WebhookStatus")]


def webhook_url(services: Services, bot_id: str) -> str:
    """Where Telegram delivers the bot's updates."""
    return f"{services.settings.public_url}/wh/{bot_id}"


def shown_url(url: str, token: str) -> str:
    """``url`` without what may be a secret: user info, the query (``?…``), the fragment and the bot's token."""
    parts = urlsplit(url.replace(token, "<redacted>"))
    host = parts.netloc.rpartition("@")[2]
    return redact(urlunsplit((parts.scheme, host, parts.path, "…" if parts.query else "", "")))


@strawberry.type(description="A Telegram bot managed by Botkiln. Its token is never readable.")
class Bot:
    id: strawberry.ID
    project_id: strawberry.ID
    name: str
    telegram_bot_id: strawberry.ID | None
    telegram_username: str | None
    active_rev_hash: str | None
    active_since: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, bot: bots.Bot) -> Bot:
        """The GraphQL form of a stored bot."""
        return cls(
            id=strawberry.ID(bot.id),
            project_id=strawberry.ID(str(bot.project_id)),
            name=bot.name,
            telegram_bot_id=None if bot.telegram_bot_id is None else strawberry.ID(str(bot.telegram_bot_id)),
            telegram_username=bot.telegram_username,
            active_rev_hash=bot.active_rev,
            active_since=bot.active_since,
            created_at=bot.created_at,
        )

    @property
    def bot_id(self) -> str:
        """The bot's id, as the bot-scoped permissions read it from a parent object."""
        return str(self.id)

    @strawberry.field(description="The revision serving traffic, if any.")
    async def active_revision(self, info: Info[Context, None]) -> Revision | None:
        if self.active_rev_hash is None:
            return None
        found = await revisions.get_revision(info.context.services.db, str(self.id), self.active_rev_hash)
        return None if found is None else Revision.from_row(found)

    @strawberry.field(description="The newest saved spec version number (0: none yet).")
    async def latest_spec_version(self, info: Info[Context, None]) -> int:
        return await specs.latest_version(info.context.services.db, str(self.id))

    @strawberry.field(permission_classes=[CanEditBot], description="The bot's secrets (names only; editor role).")
    async def secrets(self, info: Info[Context, None]) -> list[BotSecret] | None:
        return await bot_secret_list(info, str(self.id))

    @strawberry.field(
        permission_classes=[CanEditBot],
        description=(
            "Secret names the revision's apiCall headers use that the bot has no value for"
            " (default: the active revision); a deploy is refused while any is missing."
        ),
    )
    async def missing_secrets(self, info: Info[Context, None], rev_hash: str | None = None) -> list[str] | None:
        return await missing_secret_names(info, str(self.id), rev_hash)

    @strawberry.field(
        permission_classes=[CanEditBot],
        description="Asks Telegram (getWebhookInfo) where the bot's updates go (editor role).",
    )
    async def webhook(self, info: Info[Context, None]) -> WebhookStatus | None:
        services = info.context.services
        token = await bots.decrypt_token(services.db, services.box, str(self.id))
        if token is None:
            return TelegramUnavailable(message="the bot has no token (it was deleted)")
        try:
            state = await services.bot_api(token).get_webhook_info()
        except BotApiUnauthorized:
            return TokenRejected(message="Telegram no longer accepts the bot's token (revoked in @BotFather?)")
        except BotApiError as exc:
            return _telegram_problem(exc)
        expected = webhook_url(services, str(self.id))
        return WebhookState(
            url=shown_url(state.url, token),
            expected_url=expected,
            registered=state.url == expected,
            pending_update_count=state.pending_update_count,
            last_error_message=state.last_error_message,
            last_error_at=None if state.last_error_date is None else datetime.fromtimestamp(state.last_error_date, UTC),
        )


@strawberry.type(description="The bot exists and Telegram delivers its updates here.")
class BotCreated:
    bot: Bot


@strawberry.type(description="This bot id is taken (ids are never reused, even after deletion).")
class BotIdTaken(Problem):
    bot_id: str


@strawberry.type(description="Another live bot already uses this Telegram bot.")
class TokenInUse(Problem):
    pass


@strawberry.type(description="Telegram refused the webhook (check BOTKILN_PUBLIC_URL: HTTPS on 443/80/88/8443).")
class WebhookRejected(Problem):
    pass


@strawberry.type(description="The bot was deleted; its id is never reused and its history is kept.")
class BotDeleted:
    bot_id: strawberry.ID
    webhook_removed: bool


CreateBotResult = Annotated[
    BotCreated | InvalidInput | BotIdTaken | TokenRejected | TokenInUse | WebhookRejected | TelegramUnavailable,
    strawberry.union("CreateBotResult"),
]
DeleteBotResult = Annotated[BotDeleted | NotFound, strawberry.union("DeleteBotResult")]


def _telegram_problem(exc: BotApiError) -> TelegramUnavailable:
    retry = exc.retry_after if isinstance(exc, BotApiRetryAfter) else None
    return TelegramUnavailable(message=f"Telegram: {exc.description}", retry_after_seconds=retry)


class _Refused(Exception):
    def __init__(self, result: CreateBotResult) -> None:
        self.result = result


@strawberry.type
class BotQuery:
    @strawberry.field(permission_classes=[CanViewProject], description="The project's live bots, oldest first.")
    async def bots(
        self, info: Info[Context, None], project_id: strawberry.ID, first: int | None = None, after: str | None = None
    ) -> Connection[Bot]:
        rows = await bots.list_bots(info.context.services.db, UUID(str(project_id)))
        return offset_connection(rows, first, after, "bots", Bot.from_row)

    @strawberry.field(permission_classes=[CanViewBot])
    async def bot(self, info: Info[Context, None], bot_id: strawberry.ID) -> Bot | None:
        found = await bots.get_bot(info.context.services.db, str(bot_id))
        return None if found is None else Bot.from_row(found)


@strawberry.type
class BotMutation:
    @strawberry.mutation(
        permission_classes=[CanOwnProject],
        description="Add a Telegram bot: checks the token (getMe) and registers the webhook.",
    )
    async def create_bot(
        self, info: Info[Context, None], project_id: strawberry.ID, bot_id: str, name: str, token: str
    ) -> CreateBotResult:
        if not _BOT_ID.match(bot_id):
            return invalid("botId", "1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit")
        if not 1 <= len(name.strip()) <= 128:
            return invalid("name", "a name of 1 to 128 characters is needed")
        if not TOKEN.match(token):
            return invalid("token", "a Bot API token looks like 123456789:AA… (from @BotFather)")
        services, user_id = info.context.services, info.context.user_id
        api = services.bot_api(token)
        try:
            me = await api.get_me()
        except BotApiUnauthorized:
            return TokenRejected(message="Telegram does not accept this token; copy it again from @BotFather")
        except BotApiError as exc:
            return _telegram_problem(exc)
        secret = new_webhook_secret()
        try:
            async with transaction(services.db) as conn:
                created = await bots.create_bot(
                    conn,
                    services.box,
                    bot_id=bot_id,
                    project_id=UUID(str(project_id)),
                    name=name.strip(),
                    token=token,
                    webhook_secret=secret,
                    created_by=user_id,
                    telegram_bot_id=me.id,
                    telegram_username=me.username,
                )
                if isinstance(created, bots.BotIdTaken):
                    raise _Refused(BotIdTaken(message=f"the bot id {bot_id!r} is taken", bot_id=bot_id))
                if isinstance(created, bots.TokenInUse):
                    raise _Refused(TokenInUse(message=f"@{me.username} is already managed by another bot"))
                await api.set_webhook(webhook_url(services, bot_id), secret_token=secret)
                await audit.record(
                    conn,
                    action="bot.create",
                    actor_id=user_id,
                    project_id=created.project_id,
                    bot_id=bot_id,
                    detail={"name": created.name, "username": me.username},
                )
        except _Refused as refused:
            return refused.result
        except (BotApiUnreachable, BotApiRetryAfter) as exc:
            return _telegram_problem(exc)
        except BotApiError as exc:
            return WebhookRejected(message=f"Telegram refused the webhook: {exc.description}")
        return BotCreated(bot=Bot.from_row(created))

    @strawberry.mutation(permission_classes=[CanOwnBot], description="Delete the bot and remove its webhook.")
    async def delete_bot(self, info: Info[Context, None], bot_id: strawberry.ID) -> DeleteBotResult:
        services = info.context.services
        bot = await bots.get_bot(services.db, str(bot_id))
        if bot is None:
            return not_found("that bot")
        token = await bots.decrypt_token(services.db, services.box, bot.id)
        removed = False
        if token is not None:
            try:
                await services.bot_api(token).delete_webhook()
                removed = True
            except BotApiError:
                removed = False
        if not await bots.delete_bot(services.db, bot.id):
            return not_found("that bot")
        await audit.record(
            services.db,
            action="bot.delete",
            actor_id=info.context.user_id,
            project_id=bot.project_id,
            bot_id=bot.id,
            detail={"webhookRemoved": removed},
        )
        return BotDeleted(bot_id=strawberry.ID(bot.id), webhook_removed=removed)
