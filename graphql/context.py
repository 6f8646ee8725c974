"""The per-request GraphQL context and the process-wide services it carries.

``Services`` is built once, in the app's lifespan (``graphql/app.py``): the
asyncpg pool, the Redis client, the Dramatiq broker, the token cipher, one
shared ``httpx.AsyncClient`` for the Bot API, the analytics store, the artifact
store and a small warm ``SandboxPool`` for simulating stored revisions.
``Context`` is built per HTTP request or per WebSocket connection; resolvers
receive it as ``Info[Context, None]``.

Roles are looked up at most once per bot or project per request (``bot_role``,
``project_role``): a permission check on every field costs one query per
distinct object, not per field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

import dramatiq
import httpx
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from botkiln.graphql.sessions import CookiePolicy, Session, SessionStore
from botkiln.infra.crypto import SecretBox
from botkiln.infra.db.pool import Pool
from botkiln.infra.db.projects import Role, role_for_bot, role_of
from botkiln.infra.ports import AnalyticsSink, ArtifactStore
from botkiln.infra.redis_keys import PREFIX
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_api import BotApiClient
from botkiln.interpreter.quickjs import SandboxPool


@dataclass(frozen=True)
class Services:
    """Long-lived clients shared by every request of one process."""

    settings: Settings
    db: Pool
    redis: Redis
    broker: dramatiq.Broker
    box: SecretBox
    http: httpx.AsyncClient
    sessions: SessionStore
    cookies: CookiePolicy
    redis_prefix: str
    analytics: AnalyticsSink
    store: ArtifactStore
    sandboxes: SandboxPool

    def bot_api(self, token: str) -> BotApiClient:
        """A Bot API client for ``token`` on the shared HTTP client."""
        return BotApiClient(self.http, token, base_url=self.settings.telegram_api_url)

    @property
    def queue_prefix(self) -> str:
        """Prefix of the runtime plane's keys (chat queues, outbound, dead letters): ``redis_prefix`` minus ":"."""
        return self.redis_prefix.rstrip(":") or PREFIX


@dataclass
class Context:
    """What a resolver knows about the request it serves."""

    services: Services
    request: Request | WebSocket
    response: Response | None
    """The HTTP response whose headers (cookies) are sent back; None on a WebSocket."""
    request_id: str
    transport: Literal["http", "websocket"]
    session_id: str | None = None
    session: Session | None = None
    csrf_ok: bool = False
    """Whether the request carried a valid ``X-CSRF-Token`` (HTTP only)."""
    _bot_roles: dict[str, Role | None] = field(default_factory=dict)
    _project_roles: dict[UUID, Role | None] = field(default_factory=dict)

    @property
    def user_id(self) -> UUID | None:
        """The signed-in user, if any."""
        return None if self.session is None else self.session.user_id

    @property
    def client_ip(self) -> str:
        """The peer's address (uvicorn applies trusted ``X-Forwarded-For``)."""
        client = self.request.client
        return client.host if client is not None else "unknown"

    async def bot_role(self, bot_id: str) -> Role | None:
        """The viewer's role on the bot's project (None: signed out, not a member, or no such bot)."""
        user_id = self.user_id
        if user_id is None:
            return None
        if bot_id not in self._bot_roles:
            self._bot_roles[bot_id] = await role_for_bot(self.services.db, bot_id, user_id)
        return self._bot_roles[bot_id]

    async def project_role(self, project_id: UUID) -> Role | None:
        """The viewer's role in the project (None: signed out or not a member)."""
        user_id = self.user_id
        if user_id is None:
            return None
        if project_id not in self._project_roles:
            self._project_roles[project_id] = await role_of(self.services.db, project_id, user_id)
        return self._project_roles[project_id]

    def forget_roles(self) -> None:
        """Drop cached roles (after a mutation changed membership)."""
        self._bot_roles.clear()
        self._project_roles.clear()
