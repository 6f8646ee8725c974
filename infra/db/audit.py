"""The audit log: who did what, when, to which project or bot. Append-only.

``detail`` is a small JSON object for the reader (old and new role, the revision
deployed, …). Secrets never go in: keys that name one (token, secret, password,
key, cookie) are refused, so a careless caller fails loudly in tests instead of
leaking quietly in production.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from botkiln.infra.db.pool import Db, from_row

_SECRET_KEY = re.compile(r"token|secret|password|passwd|api_?key|cookie|credential", re.IGNORECASE)


@dataclass(frozen=True)
class AuditEntry:
    """One thing someone (``actor_id``; None for the system) did."""

    id: int
    at: datetime
    actor_id: UUID | None
    action: str
    project_id: UUID | None
    bot_id: str | None
    target: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)


def _check_detail(value: Any, path: str = "detail") -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _SECRET_KEY.search(str(key)):
                raise ValueError(f"{path}.{key}: audit entries never carry secrets")
            _check_detail(item, f"{path}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _check_detail(item, f"{path}[{n}]")


async def record(
    db: Db,
    *,
    action: str,
    actor_id: UUID | None,
    project_id: UUID | None = None,
    bot_id: str | None = None,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry; ``action`` is a dotted lowercase name such as ``bot.deploy``.

    Raises:
        ValueError: ``detail`` has a key that names a secret.
    """
    _check_detail(detail or {})
    row = await db.fetchrow(
        "INSERT INTO audit_log (actor_id, action, project_id, bot_id, target, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        actor_id,
        action,
        project_id,
        bot_id,
        target,
        dict(detail or {}),
    )
    assert row is not None
    return from_row(AuditEntry, row)


async def list_entries(
    db: Db,
    *,
    project_id: UUID | None = None,
    bot_id: str | None = None,
    actor_id: UUID | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[AuditEntry]:
    """Entries matching every filter given, newest first; ``before`` pages by id."""
    rows = await db.fetch(
        "SELECT * FROM audit_log WHERE ($1::uuid IS NULL OR project_id = $1)"
        " AND ($2::text IS NULL OR bot_id = $2) AND ($3::uuid IS NULL OR actor_id = $3)"
        " AND ($4::bigint IS NULL OR id < $4) ORDER BY id DESC LIMIT $5",
        project_id,
        bot_id,
        actor_id,
        before,
        limit,
    )
    return [from_row(AuditEntry, r) for r in rows]
