"""Revisions: ``revisions``/``revision`` queries over the immutable, content-addressed builds.

A revision exists once ``generate`` built and stored it; whether traffic points at
it is the bot's ``activeRevHash`` and the deployments' business (docs/revisions.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from botkiln.graphql.connections import Connection, connection, decode_time_cursor, page_size
from botkiln.graphql.context import Context
from botkiln.graphql.permissions import CanViewBot
from botkiln.infra.db import revisions


@strawberry.type(description="One file of a revision, as rev.json records it.")
class Artifact:
    name: str
    sha256: str
    size: int


@strawberry.type(description="An immutable build of a spec version: bot.js, spec.json and rev.json.")
class Revision:
    bot_id: strawberry.ID
    rev_hash: str
    spec_version: int | None
    spec_hash: str
    artifacts_uri: str
    artifacts: list[Artifact]
    build: JSON = strawberry.field(description="Generator kind and version, model, seed, SDK and AST-rules versions.")
    created_at: datetime

    @classmethod
    def from_row(cls, row: revisions.RevisionRecord) -> Revision:
        """The GraphQL form of a recorded revision."""
        return cls(
            bot_id=strawberry.ID(row.bot_id),
            rev_hash=row.rev_hash,
            spec_version=row.spec_version,
            spec_hash=row.spec_hash,
            artifacts_uri=row.artifacts_uri,
            artifacts=[Artifact(name=n, sha256=d.sha256, size=d.size) for n, d in row.artifacts.items()],
            build=cast(JSON, dict(row.build)),
            created_at=row.created_at,
        )


@strawberry.type
class RevisionQuery:
    @strawberry.field(permission_classes=[CanViewBot], description="The bot's revisions, newest first.")
    async def revisions(
        self, info: Info[Context, None], bot_id: strawberry.ID, first: int | None = None, after: str | None = None
    ) -> Connection[Revision]:
        size = page_size(first)
        before = decode_time_cursor("revisions", after)
        rows = await revisions.list_revisions(info.context.services.db, str(bot_id), limit=size + 1, before=before)
        return connection(rows, size, "revisions", lambda r: r.created_at.isoformat(), Revision.from_row)

    @strawberry.field(permission_classes=[CanViewBot])
    async def revision(self, info: Info[Context, None], bot_id: strawberry.ID, rev_hash: str) -> Revision | None:
        found = await revisions.get_revision(info.context.services.db, str(bot_id), rev_hash)
        return None if found is None else Revision.from_row(found)
