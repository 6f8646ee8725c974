"""The control API as an ASGI app: ``build_app(settings) -> Starlette``.

Routes:

- ``POST /graphql``: queries and mutations (JSON only; no GET, no IDE);
- ``WS /graphql``: subscriptions (and queries) over graphql-transport-ws only;
  a browser handshake from an origin other than the console's is refused;
- ``GET /healthz``: 200 when PostgreSQL and Redis answer, else 503;
- ``GET /metrics``: Prometheus metrics, behind ``BOTKILN_METRICS_TOKEN`` when it is set
  (``graphql/observability.py``, docs/observability.md);
- ``POST /wh/{botId}``: Telegram's webhook, see ``graphql/ingress.py`` and docs/ingress.md;
- ``GET /`` and the rest: the web console from ``web/dist`` when it is built (``graphql/console_static.py``).

Middleware, outermost first: a request id (``X-Request-Id`` on every response,
in every error log line and masked error), CORS for ``BOTKILN_CONSOLE_ORIGIN``
only (with credentials; no other origin gets an ``Access-Control-Allow-Origin``),
and a request body cap (``MAX_BODY_BYTES``: 413 beyond it).

Sessions and CSRF are described in ``graphql/sessions.py`` and docs/api.md: the
context reads the session cookie, checks ``X-CSRF-Token``, and hands a visitor
without a ``botkiln_csrf`` cookie a fresh one.

Clients (asyncpg pool, Redis, the Dramatiq broker, the Bot API's HTTP client,
the analytics store, which connects on first use, the artifact store and the
simulator's sandbox pool) are created in the lifespan and closed after it;
nothing exists at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import dramatiq
import httpx
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from botkiln.graphql.console_static import console_routes
from botkiln.graphql.context import Context, Services
from botkiln.graphql.ingress import Ingress, IngressOptions, webhook
from botkiln.graphql.observability import metrics
from botkiln.graphql.schema import build_schema
from botkiln.graphql.sessions import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    CookiePolicy,
    SessionStore,
    csrf_matches,
    new_token,
)
from botkiln.infra.analytics import build_analytics
from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.db.pool import create_pool
from botkiln.infra.metrics import RedisCollector
from botkiln.infra.redis_keys import PREFIX
from botkiln.infra.settings import Settings, SettingsError
from botkiln.interpreter.quickjs import SandboxPool

MAX_BODY_BYTES = 1 << 20
"""Largest request body (a 512 KiB spec as a JSON variable fits with room to spare)."""
WS_MAX_MESSAGE_BYTES = 1 << 20
"""Largest WebSocket message (uvicorn's ``ws_max_size``; see ``infra/cli_serve.py``)."""
MAX_SUBSCRIPTIONS = 20
"""Subscriptions one WebSocket connection may hold."""
SIMULATOR_SANDBOXES = 8
"""Warm revisions the ``simulate`` mutation keeps in QuickJS (a miss re-parses bot.js)."""
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestId:
    """Gives every HTTP request and WebSocket connection an id: ``scope["state"]["request_id"]``.

    A well-formed incoming ``X-Request-Id`` (from a trusted proxy) is kept; the id is
    echoed on HTTP responses.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id if scope["type"] == "http" else send)


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Answers 413 to HTTP request bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = PlainTextResponse(f"request body over {self.max_bytes} bytes", status_code=413)
        await response(scope, receive, send)


class BotkilnGraphQL(GraphQL[Context, None]):
    """strawberry's ASGI view with Botkiln's context (session, CSRF, request id)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            return  # the client left mid-request (a closed tab): nobody to answer, nothing to log as an error

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        services: Services = request.state.services
        request_id = str(request.state.request_id)
        session_id = request.cookies.get(SESSION_COOKIE)
        session = await services.sessions.get(session_id)
        if isinstance(request, WebSocket):
            return Context(services, request, None, request_id, "websocket", session_id, session)
        assert isinstance(response, Response)
        cookie = request.cookies.get(CSRF_COOKIE)
        header = request.headers.get(CSRF_HEADER)
        expected = session.csrf_token if session is not None else cookie
        if session is not None and cookie != session.csrf_token:
            services.cookies.set_csrf(response, session.csrf_token)
        elif session is None and not cookie:
            services.cookies.set_csrf(response, new_token())
        return Context(
            services, request, response, request_id, "http", session_id, session, csrf_ok=csrf_matches(header, expected)
        )


async def _healthz(request: Request) -> JSONResponse:
    services: Services = request.state.services
    checks: dict[str, bool] = {}
    try:
        checks["postgres"] = await services.db.fetchval("SELECT 1") == 1
    except Exception:
        checks["postgres"] = False
    try:
        checks["redis"] = bool(await services.redis.ping())
    except Exception:
        checks["redis"] = False
    healthy = all(checks.values())
    return JSONResponse({"ok": healthy, **checks}, status_code=200 if healthy else 503)


def build_app(
    settings: Settings,
    *,
    broker: dramatiq.Broker | None = None,
    redis_prefix: str = f"{PREFIX}:",
    ingress_options: IngressOptions | None = None,
) -> Starlette:
    """The control API for ``settings``.

    ``broker`` defaults to ``build_broker(settings)`` made (and closed) by the
    lifespan; a caller that passes one owns it. ``redis_prefix`` prefixes the
    session and sign-in keys and (without its colon) the chat queue's and the
    ingress's (tests use their own). ``ingress_options`` defaults to the settings' limits.

    Raises:
        SettingsError: BOTKILN_DATABASE_URL or BOTKILN_SECRET_KEY is missing.
    """
    if not settings.database_url:
        raise SettingsError("BOTKILN_DATABASE_URL is missing and has no default; the API needs PostgreSQL")
    database_url = settings.database_url
    box = settings.secret_box()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        from botkiln.workers.broker import build_broker
        from botkiln.workers.execute import ChatReady
        from botkiln.workers.runtime import build_artifact_store

        own_broker = broker is None
        the_broker = build_broker(settings) if broker is None else broker
        store = await asyncio.to_thread(build_artifact_store, settings)
        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=5, health_check_interval=30)
        pool = await create_pool(database_url, min_size=1, max_size=10)
        http = httpx.AsyncClient(follow_redirects=False)
        services = Services(
            settings=settings,
            db=pool,
            redis=redis,
            broker=the_broker,
            box=box,
            http=http,
            sessions=SessionStore(redis, redis_prefix),
            cookies=CookiePolicy(secure=settings.cookie_secure),
            redis_prefix=redis_prefix,
            analytics=build_analytics(settings),
            store=store,
            sandboxes=SandboxPool(SIMULATOR_SANDBOXES, idle_ttl_s=300.0),
        )
        queue_prefix = services.queue_prefix
        queue = RedisChatQueue(redis, prefix=queue_prefix)
        ready = ChatReady(redis, the_broker, prefix=queue_prefix)
        limits = ingress_options or IngressOptions(
            max_body_bytes=settings.ingress_max_body,
            rate_limit=settings.ingress_rate,
            max_queue_depth=settings.ingress_max_depth,
        )
        ingress = Ingress(pool, box, redis, queue, prefix=queue_prefix, options=limits, on_ready=ready.notify)
        cluster = RedisCollector.from_url(settings.redis_url, prefix=queue_prefix)
        cluster_metrics = CollectorRegistry(auto_describe=False)
        cluster_metrics.register(cluster)
        try:
            yield {"services": services, "ingress": ingress, "cluster_metrics": cluster_metrics}
        finally:
            cluster.close()
            services.sandboxes.clear()
            await asyncio.to_thread(services.analytics.close)
            await http.aclose()
            await pool.close()
            await redis.aclose()
            if own_broker:
                the_broker.close()

    graphql_app = BotkilnGraphQL(
        build_schema(),
        graphql_ide=None,
        allow_queries_via_get=False,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=10),
        max_subscriptions_per_connection=MAX_SUBSCRIPTIONS,
        allowed_origins=(settings.console_origin,),
    )
    middleware = [
        Middleware(RequestId),
        Middleware(
            CORSMiddleware,
            allow_origins=[settings.console_origin],
            allow_methods=["POST"],
            allow_headers=["content-type", CSRF_HEADER],
            allow_credentials=True,
            expose_headers=["x-request-id"],
            max_age=600,
        ),
        Middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES),
    ]
    routes = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/graphql", graphql_app, methods=["POST"]),
        WebSocketRoute("/graphql", graphql_app),
        Route("/wh/{botId}", webhook, methods=["POST"]),
    ]
    routes += console_routes(routes)
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
