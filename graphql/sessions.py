"""Cookie sessions and their CSRF tokens, kept in Redis.

A session is a random 256-bit id in the ``botkiln_session`` cookie (HttpOnly,
SameSite=Lax, Secure when ``BOTKILN_COOKIE_SECURE``). Redis holds, under the
sha256 of that id (a copy of Redis gives no usable cookie), the user and the
session's CSRF token, for ``SESSION_TTL_S``. Signing out deletes the entry, so a
stolen cookie dies with the session.

CSRF is a double-submit token bound to the session (docs/api.md#csrf): the token
is also sent in the readable ``botkiln_csrf`` cookie; the console copies it into
the ``X-CSRF-Token`` header of every mutation. With a session the header must
equal the session's token; without one (sign up, sign in) it must equal the
``botkiln_csrf`` cookie, which the API hands to any visitor that lacks one. A
page on another site can neither read the cookie nor set the header without a
CORS preflight the API refuses, so it cannot forge a mutation.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from uuid import UUID

from redis.asyncio import Redis
from starlette.responses import Response

from botkiln.infra.crypto import constant_time_equals

SESSION_COOKIE = "botkiln_session"
CSRF_COOKIE = "botkiln_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL_S = 14 * 24 * 3600


@dataclass(frozen=True)
class Session:
    """A signed-in browser: who, and the CSRF token its mutations must carry."""

    user_id: UUID
    csrf_token: str


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def csrf_matches(header: str | None, expected: str | None) -> bool:
    """Whether the presented header equals the expected token (constant time; both must be non-empty)."""
    return bool(header) and bool(expected) and constant_time_equals(header or "", expected or "")


class SessionStore:
    """Sessions in Redis under ``{prefix}session:{sha256(id)}``."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}session:{hashlib.sha256(session_id.encode('utf-8')).hexdigest()}"

    async def create(self, user_id: UUID) -> tuple[str, Session]:
        """A new session for ``user_id``: its cookie value and its record."""
        session_id = new_token()
        session = Session(user_id, new_token())
        record = json.dumps({"userId": str(user_id), "csrf": session.csrf_token})
        await self._redis.set(self._key(session_id), record, ex=SESSION_TTL_S)
        return session_id, session

    async def get(self, session_id: str | None) -> Session | None:
        """The live session named by a cookie value, if any."""
        if not session_id or len(session_id) > 128:
            return None
        raw = await self._redis.get(self._key(session_id))
        if raw is None:
            return None
        record = json.loads(raw)
        return Session(UUID(record["userId"]), str(record["csrf"]))

    async def delete(self, session_id: str | None) -> None:
        """End the session (no-op if it does not exist)."""
        if session_id:
            await self._redis.delete(self._key(session_id))


@dataclass(frozen=True)
class CookiePolicy:
    """How the session and CSRF cookies are set."""

    secure: bool

    def set_session(self, response: Response, session_id: str, session: Session) -> None:
        """Set both cookies for a new session."""
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=SESSION_TTL_S,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )
        self.set_csrf(response, session.csrf_token)

    def set_csrf(self, response: Response, token: str) -> None:
        """Set the readable CSRF cookie."""
        response.set_cookie(
            CSRF_COOKIE, token, max_age=SESSION_TTL_S, path="/", secure=self.secure, httponly=False, samesite="lax"
        )

    def clear_session(self, response: Response) -> None:
        """Expire the session cookie."""
        response.delete_cookie(SESSION_COOKIE, path="/", secure=self.secure, httponly=True, samesite="lax")
