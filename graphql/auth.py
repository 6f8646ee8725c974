"""Accounts and sessions: ``signUp``, ``signIn``, ``signOut`` and ``viewer``.

Passwords are argon2id hashes (``infra/db/users.py``). Sign-in is rate limited
per (email, client IP): each attempt increments a Redis counter that lives for
``SIGN_IN_WINDOW_S``; past ``SIGN_IN_LIMIT`` attempts the answer is
``RateLimited`` without checking the password, and a successful sign-in clears
the counter — so effectively ``SIGN_IN_LIMIT`` failures per window. A wrong email
and a wrong password give the same ``InvalidCredentials`` in the same time.

Signing in (or up) starts a new session and a new CSRF token, ending any session
the browser had (no session fixation); signing out ends it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

import strawberry
from redis.asyncio import Redis
from strawberry.types import Info

from botkiln.graphql.context import Context
from botkiln.graphql.results import InvalidInput, Problem, RateLimited, invalid
from botkiln.graphql.sessions import new_token
from botkiln.infra.db import audit, users

SIGN_IN_LIMIT = 5
SIGN_IN_WINDOW_S = 15 * 60
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_MIN_PASSWORD = 8
_MAX_PASSWORD = 1024


@strawberry.type(description="A person with an account (never their password).")
class User:
    id: strawberry.ID
    email: str
    display_name: str

    @classmethod
    def from_row(cls, user: users.User) -> User:
        """The GraphQL form of a stored user."""
        return cls(id=strawberry.ID(str(user.id)), email=user.email, display_name=user.display_name)


@strawberry.type(description="Signed in: the session cookie and a new botkiln_csrf cookie were set.")
class SignedIn:
    viewer: User


@strawberry.type(description="An account with this email exists.")
class EmailTaken(Problem):
    email: str


@strawberry.type(description="The email or the password is wrong.")
class InvalidCredentials(Problem):
    pass


@strawberry.type(description="The session ended; the session cookie was cleared.")
class SignedOut:
    ok: bool


SignUpResult = Annotated[SignedIn | EmailTaken | InvalidInput, strawberry.union("SignUpResult")]
SignInResult = Annotated[SignedIn | InvalidCredentials | RateLimited | InvalidInput, strawberry.union("SignInResult")]


def _check_credentials(email: str, password: str) -> InvalidInput | None:
    if len(email) > 320 or not _EMAIL.match(email.strip()):
        return invalid("email", "an email address like name@example.com is needed")
    if not _MIN_PASSWORD <= len(password) <= _MAX_PASSWORD:
        return invalid("password", f"a password of {_MIN_PASSWORD} to {_MAX_PASSWORD} characters is needed")
    return None


async def _start_session(context: Context, user: users.User) -> SignedIn:
    services = context.services
    await services.sessions.delete(context.session_id)
    session_id, session = await services.sessions.create(user.id)
    context.session_id, context.session = session_id, session
    context.forget_roles()
    if context.response is not None:
        services.cookies.set_session(context.response, session_id, session)
    return SignedIn(viewer=User.from_row(user))


# KEYS[1] attempts  string (int), EX window   sign-in failures of one email from one address
# ARGV: window s.  Returns {attempts, seconds left}. Redis 6.2 has no EXPIRE NX (the embedded Redis is 6.2).
_ATTEMPT_LUA = """
local n = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return {n, redis.call('TTL', KEYS[1])}
"""


async def count_attempt(redis: Redis, key: str, window_s: int = SIGN_IN_WINDOW_S) -> tuple[int, int]:
    """Count one sign-in attempt in its window (started by the first); (attempts so far, seconds left)."""
    attempts, ttl = await redis.eval(_ATTEMPT_LUA, 1, key, window_s)
    return int(attempts), int(ttl)


def _attempts_key(context: Context, email: str) -> str:
    who = f"{users.normalize_email(email)}|{context.client_ip}".encode()
    return f"{context.services.redis_prefix}signin:{hashlib.sha256(who).hexdigest()}"


@strawberry.type
class AuthQuery:
    @strawberry.field(description="The signed-in user, or null.")
    async def viewer(self, info: Info[Context, None]) -> User | None:
        user_id = info.context.user_id
        if user_id is None:
            return None
        user = await users.get_user(info.context.services.db, user_id)
        return None if user is None else User.from_row(user)


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Create an account and sign in.")
    async def sign_up(
        self, info: Info[Context, None], email: str, password: str, display_name: str = ""
    ) -> SignUpResult:
        problem = _check_credentials(email, password)
        if problem is not None:
            return problem
        if len(display_name) > 128:
            return invalid("displayName", "at most 128 characters")
        db = info.context.services.db
        created = await users.create_user(db, email=email, password=password, display_name=display_name)
        if isinstance(created, users.EmailTaken):
            return EmailTaken(message="an account with this email exists; sign in instead", email=created.email)
        await audit.record(db, action="user.signup", actor_id=created.id, target=str(created.id))
        return await _start_session(info.context, created)

    @strawberry.mutation(
        description=f"Sign in; at most {SIGN_IN_LIMIT} failures per email and address per "
        f"{SIGN_IN_WINDOW_S // 60} minutes."
    )
    async def sign_in(self, info: Info[Context, None], email: str, password: str) -> SignInResult:
        if len(email) > 320 or len(password) > _MAX_PASSWORD:
            return invalid("email" if len(email) > 320 else "password", "too long")
        redis = info.context.services.redis
        key = _attempts_key(info.context, email)
        attempts, ttl = await count_attempt(redis, key)
        if int(attempts) > SIGN_IN_LIMIT:
            wait = max(int(ttl), 1)
            return RateLimited(message=f"too many sign-in attempts; try again in {wait} s", retry_after_seconds=wait)
        user = await users.authenticate(info.context.services.db, email, password)
        if user is None:
            return InvalidCredentials(message="the email or the password is wrong")
        await redis.delete(key)
        return await _start_session(info.context, user)

    @strawberry.mutation(description="End the session.")
    async def sign_out(self, info: Info[Context, None]) -> SignedOut:
        context = info.context
        await context.services.sessions.delete(context.session_id)
        context.session_id, context.session = None, None
        context.forget_roles()
        if context.response is not None:
            context.services.cookies.clear_session(context.response)
            context.services.cookies.set_csrf(context.response, new_token())
        return SignedOut(ok=True)
