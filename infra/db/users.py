"""Users: accounts that sign in with an email and a password.

Emails are stored trimmed and lower-cased and are unique. Passwords are kept only
as argon2id hashes; hashing and verifying run in a worker thread (~0.1 s of CPU
each) so the event loop keeps serving. ``authenticate`` spends the same work
whether or not the email exists, so timing does not reveal accounts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from botkiln.infra.crypto import hash_password, password_needs_rehash, verify_password
from botkiln.infra.db.pool import Db

# A valid argon2id hash of a random password: verified when the email is unknown.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$bm90LWEtdXNlcg$Fjw22wuSZTo8vOvYt02iMfe8JE6kQ2MNMquCZceSxmI"


@dataclass(frozen=True)
class User:
    """An account (never its password hash)."""

    id: UUID
    email: str
    display_name: str
    created_at: datetime


@dataclass(frozen=True)
class EmailTaken:
    """``create_user`` result: an account with this email exists."""

    email: str


def normalize_email(email: str) -> str:
    """The stored form of an email: trimmed, lower-cased."""
    return email.strip().lower()


def _user(row: asyncpg.Record) -> User:
    return User(row["id"], row["email"], row["display_name"], row["created_at"])


async def create_user(db: Db, *, email: str, password: str, display_name: str = "") -> User | EmailTaken:
    """Create an account; the password is hashed before it reaches the database."""
    stored = normalize_email(email)
    password_hash = await asyncio.to_thread(hash_password, password)
    row = await db.fetchrow(
        "INSERT INTO users (email, display_name, password_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (email) DO NOTHING RETURNING id, email, display_name, created_at",
        stored,
        display_name,
        password_hash,
    )
    return EmailTaken(stored) if row is None else _user(row)


async def get_user(db: Db, user_id: UUID) -> User | None:
    """The account with this id, if any."""
    row = await db.fetchrow("SELECT id, email, display_name, created_at FROM users WHERE id = $1", user_id)
    return None if row is None else _user(row)


async def find_user(db: Db, email: str) -> User | None:
    """The account with this email, if any."""
    row = await db.fetchrow(
        "SELECT id, email, display_name, created_at FROM users WHERE email = $1", normalize_email(email)
    )
    return None if row is None else _user(row)


async def authenticate(db: Db, email: str, password: str) -> User | None:
    """The account if ``password`` is right, else None; upgrades an outdated hash."""
    row = await db.fetchrow(
        "SELECT id, email, display_name, created_at, password_hash FROM users WHERE email = $1",
        normalize_email(email),
    )
    stored_hash = _DUMMY_HASH if row is None else row["password_hash"]
    ok = await asyncio.to_thread(verify_password, stored_hash, password)
    if row is None or not ok:
        return None
    if password_needs_rehash(stored_hash):
        await set_password(db, row["id"], password)
    return _user(row)


async def set_password(db: Db, user_id: UUID, password: str) -> bool:
    """Replace the password; false if there is no such user."""
    password_hash = await asyncio.to_thread(hash_password, password)
    status = await db.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)
    return status == "UPDATE 1"
