"""Spec versions: ``specVersions``/``specVersion`` queries and ``saveSpecVersion``.

Saving validates the whole spec first (``interpreter/validation.py``): problems
come back as ``SpecInvalid`` with every error's JSON pointer, code, message and
hint — data, not an exception. The spec's ``meta.botId`` must be the bot's id.
Concurrency is optimistic: ``expectedVersion`` is the version the edit started
from (0 for the first save); if someone saved since, the answer is
``VersionConflict`` with the current version. Replaying the same save returns
the version it created (``created: false``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from botkiln.graphql.connections import Connection, connection, decode_cursor, page_size
from botkiln.graphql.context import Context
from botkiln.graphql.permissions import CanEditBot, CanViewBot
from botkiln.graphql.results import InvalidInput, SpecInvalid, SpecProblem, VersionConflict, invalid
from botkiln.infra.db import audit, specs
from botkiln.interpreter.errors import SpecError
from botkiln.interpreter.validation import validate_spec


@strawberry.type(description="An immutable saved version of a bot's BotSpec.")
class SpecVersion:
    bot_id: strawberry.ID
    version: int
    spec_hash: str = strawberry.field(description="sha256 of the spec's RFC 8785 canonical JSON.")
    message: str
    author_id: strawberry.ID | None
    created_at: datetime
    canonical: strawberry.Private[str | None]

    @strawberry.field(description="The spec itself.")
    async def spec(self, info: Info[Context, None]) -> JSON:
        if self.canonical is not None:
            return cast(JSON, _loads(self.canonical))
        found = await specs.get_spec_version(info.context.services.db, str(self.bot_id), self.version)
        assert found is not None and found.canonical is not None
        return cast(JSON, _loads(found.canonical))

    @classmethod
    def from_row(cls, row: specs.SpecVersion) -> SpecVersion:
        """The GraphQL form of a stored version."""
        return cls(
            bot_id=strawberry.ID(row.bot_id),
            version=row.version,
            spec_hash=row.spec_hash,
            message=row.message,
            author_id=None if row.author_id is None else strawberry.ID(str(row.author_id)),
            created_at=row.created_at,
            canonical=row.canonical,
        )


def _loads(text: str) -> Any:
    return json.loads(text)


@strawberry.type(description="The spec was saved as `specVersion` (`created` false: an identical replay).")
class SpecSaved:
    spec_version: SpecVersion
    created: bool


SaveSpecResult = Annotated[SpecSaved | SpecInvalid | VersionConflict | InvalidInput, strawberry.union("SaveSpecResult")]


def check_spec(bot_id: str, spec: Any) -> list[SpecError]:
    """Every problem of ``spec`` as the spec of bot ``bot_id``; ``[]`` means it may be saved."""
    errors = validate_spec(spec)
    meta = spec.get("meta") if isinstance(spec, dict) else None
    found = meta.get("botId") if isinstance(meta, dict) else None
    if isinstance(found, str) and found != bot_id:
        errors.append(
            SpecError(
                "/meta/botId",
                "bot-id-mismatch",
                f"the spec is for bot {found!r} but is saved to bot {bot_id!r}",
                f'set "botId": "{bot_id}"',
            )
        )
    return errors


@strawberry.type
class SpecQuery:
    @strawberry.field(permission_classes=[CanViewBot], description="The bot's spec versions, newest first.")
    async def spec_versions(
        self, info: Info[Context, None], bot_id: strawberry.ID, first: int | None = None, after: str | None = None
    ) -> Connection[SpecVersion]:
        size = page_size(first)
        before = decode_cursor("specVersions", after)
        rows = await specs.list_spec_versions(
            info.context.services.db, str(bot_id), limit=size + 1, before=before if isinstance(before, int) else None
        )
        return connection(rows, size, "specVersions", lambda r: r.version, SpecVersion.from_row)

    @strawberry.field(permission_classes=[CanViewBot], description="One version; the latest when version is null.")
    async def spec_version(
        self, info: Info[Context, None], bot_id: strawberry.ID, version: int | None = None
    ) -> SpecVersion | None:
        found = await specs.get_spec_version(info.context.services.db, str(bot_id), version)
        return None if found is None else SpecVersion.from_row(found)


@strawberry.type
class SpecMutation:
    @strawberry.mutation(permission_classes=[CanEditBot], description="Validate and save a new spec version.")
    async def save_spec_version(
        self,
        info: Info[Context, None],
        bot_id: strawberry.ID,
        spec: JSON,
        expected_version: int,
        message: str = "",
    ) -> SaveSpecResult:
        if expected_version < 0:
            return invalid("expectedVersion", "0 (no version yet) or the version the edit started from")
        if len(message) > 1000:
            return invalid("message", "at most 1000 characters")
        errors = check_spec(str(bot_id), spec)
        if errors:
            noun = "problem" if len(errors) == 1 else "problems"
            return SpecInvalid(
                message=f"the spec has {len(errors)} {noun}; the first: {errors[0]}",
                errors=[SpecProblem.from_error(e) for e in errors],
            )
        db, user_id = info.context.services.db, info.context.user_id
        saved = await specs.save_spec_version(
            db, str(bot_id), cast(dict[str, Any], spec), expected_version, author_id=user_id, message=message
        )
        if isinstance(saved, specs.SpecConflict):
            return VersionConflict(
                message=f"version {saved.current_version} was saved after version {expected_version}; "
                "reload it and redo the edit",
                expected_version=expected_version,
                current_version=saved.current_version,
            )
        if saved.created:
            await audit.record(
                db,
                action="spec.save",
                actor_id=user_id,
                bot_id=str(bot_id),
                detail={"version": saved.version.version, "specHash": saved.version.spec_hash},
            )
        return SpecSaved(spec_version=SpecVersion.from_row(saved.version), created=saved.created)
