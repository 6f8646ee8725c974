"""Projects and their members, each with one role: owner, editor or viewer.

Roles are ordered (viewer < editor < owner: each can do what the one below can).
A project always has at least one owner: demoting or removing the last one is
refused with ``LastOwner``, under a lock on the project row so two owners
demoting each other at once cannot both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast
from uuid import UUID

import asyncpg

from botkiln.infra.db.pool import Db, transaction

Role = Literal["owner", "editor", "viewer"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "owner")
"""Every role, weakest first."""


@dataclass(frozen=True)
class Project:
    """A project: the unit of ownership of bots."""

    id: UUID
    name: str
    created_by: UUID
    created_at: datetime


@dataclass(frozen=True)
class Member:
    """A user's role in a project."""

    project_id: UUID
    user_id: UUID
    role: Role
    added_at: datetime


@dataclass(frozen=True)
class ProjectAccess:
    """A project as one user sees it: with their role."""

    project: Project
    role: Role


@dataclass(frozen=True)
class LastOwner:
    """Result: the change would leave the project without an owner."""

    project_id: UUID


def at_least(role: Role | None, needed: Role) -> bool:
    """Whether ``role`` grants what ``needed`` grants (None: not a member)."""
    return role is not None and ROLES.index(role) >= ROLES.index(needed)


def _project(row: asyncpg.Record) -> Project:
    return Project(row["id"], row["name"], row["created_by"], row["created_at"])


def _member(row: asyncpg.Record) -> Member:
    return Member(row["project_id"], row["user_id"], cast(Role, row["role"]), row["added_at"])


async def create_project(db: Db, *, name: str, owner_id: UUID) -> Project:
    """A new project with ``owner_id`` as its owner."""
    row = await db.fetchrow(
        "WITH p AS (INSERT INTO projects (name, created_by) VALUES ($1, $2) RETURNING *),"
        " m AS (INSERT INTO project_members (project_id, user_id, role, added_by)"
        "       SELECT id, $2, 'owner', $2 FROM p)"
        " SELECT id, name, created_by, created_at FROM p",
        name,
        owner_id,
    )
    assert row is not None
    return _project(row)


async def get_project(db: Db, project_id: UUID) -> Project | None:
    """The project, if it exists."""
    row = await db.fetchrow("SELECT id, name, created_by, created_at FROM projects WHERE id = $1", project_id)
    return None if row is None else _project(row)


async def list_projects(db: Db, user_id: UUID) -> list[ProjectAccess]:
    """The projects ``user_id`` is a member of, oldest first, with their role."""
    rows = await db.fetch(
        "SELECT p.id, p.name, p.created_by, p.created_at, m.role FROM projects p"
        " JOIN project_members m ON m.project_id = p.id WHERE m.user_id = $1 ORDER BY p.created_at, p.id",
        user_id,
    )
    return [ProjectAccess(_project(r), cast(Role, r["role"])) for r in rows]


async def role_of(db: Db, project_id: UUID, user_id: UUID) -> Role | None:
    """``user_id``'s role in the project, or None."""
    role = await db.fetchval(
        "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2", project_id, user_id
    )
    return cast(Role | None, role)


async def role_for_bot(db: Db, bot_id: str, user_id: UUID) -> Role | None:
    """``user_id``'s role in the project that owns ``bot_id`` (deleted bots included), or None."""
    role = await db.fetchval(
        "SELECT m.role FROM bots b JOIN project_members m ON m.project_id = b.project_id"
        " WHERE b.id = $1 AND m.user_id = $2",
        bot_id,
        user_id,
    )
    return cast(Role | None, role)


async def list_members(db: Db, project_id: UUID) -> list[Member]:
    """Every member, in the order they joined."""
    rows = await db.fetch(
        "SELECT project_id, user_id, role, added_at FROM project_members WHERE project_id = $1"
        " ORDER BY added_at, user_id",
        project_id,
    )
    return [_member(r) for r in rows]


async def set_member_role(
    db: Db, *, project_id: UUID, user_id: UUID, role: Role, added_by: UUID | None
) -> Member | LastOwner:
    """Add ``user_id`` with ``role``, or change their role.

    Raises:
        ValueError: ``role`` is not a role.
    """
    if role not in ROLES:
        raise ValueError(f"{role!r} is not one of {', '.join(ROLES)}")
    async with transaction(db) as conn:
        if role != "owner" and await _is_last_owner(conn, project_id, user_id):
            return LastOwner(project_id)
        row = await conn.fetchrow(
            "INSERT INTO project_members (project_id, user_id, role, added_by) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role"
            " RETURNING project_id, user_id, role, added_at",
            project_id,
            user_id,
            role,
            added_by,
        )
    assert row is not None
    return _member(row)


async def remove_member(db: Db, *, project_id: UUID, user_id: UUID) -> bool | LastOwner:
    """Remove ``user_id`` from the project; false if they were not a member."""
    async with transaction(db) as conn:
        if await _is_last_owner(conn, project_id, user_id):
            return LastOwner(project_id)
        status = await conn.execute(
            "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2", project_id, user_id
        )
    return status == "DELETE 1"


async def _is_last_owner(conn: Db, project_id: UUID, user_id: UUID) -> bool:
    """Lock the project row, then: is ``user_id`` its only owner?"""
    await conn.execute("SELECT 1 FROM projects WHERE id = $1 FOR UPDATE", project_id)
    owners = await conn.fetch(
        "SELECT user_id FROM project_members WHERE project_id = $1 AND role = 'owner'", project_id
    )
    return [r["user_id"] for r in owners] == [user_id]
