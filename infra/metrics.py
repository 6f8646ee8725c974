"""Prometheus metrics: one registry of every ``botkiln_*`` series, and how it is served.

The catalogue, with labels and meaning, is docs/observability.md. Invariants:

- every series lives in ``REGISTRY`` under a fixed name; label values come from closed sets
  (outcomes, phases, stages, GraphQL root fields) or are bot ids; a chat id, user id, token or
  client-chosen string is never a label;
- counters and histograms are process-local and updated where the work happens; gauges that
  describe the cluster (queue depth, oldest update, dead letters) are read from Redis at scrape
  time by ``RedisCollector``: bounded work per scrape (an incremental ``SCAN`` of at most
  ``scan_budget`` keys, at most ``max_tracked`` bots), at most ``max_bots`` series per gauge (the
  rest summed as ``bot="_other"``), short socket timeouts, and a failure is a gauge
  (``botkiln_metrics_redis_up 0``), never an exception out of ``collect``;
- ``SandboxPoolCollector`` reads the counters ``SandboxPool`` already keeps (the interpreter does
  not import prometheus_client);
- ``serve_metrics`` serves ``REGISTRY`` from a thread (workers), behind the same bearer-token
  check as the API's ``GET /metrics`` (``token_ok``).
"""

from __future__ import annotations

import hmac
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis
from opentelemetry.trace import SpanKind
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from botkiln.infra.redis_keys import PREFIX, ChatQueueKeys, OutboundKeys
from botkiln.infra.tracing import start_span
from botkiln.interpreter.host import ApiPerformer, Engine
from botkiln.interpreter.quickjs import SandboxPool
from botkiln.interpreter.types import ApiRequest, ApiResult, StepInput, StepOutput

__all__ = [
    "CONTENT_TYPE_LATEST",
    "DEPLOYS",
    "DEPLOY_STAGE_SECONDS",
    "EXECUTOR_PHASES",
    "EXECUTOR_SECONDS",
    "GRAPHQL_ERRORS",
    "GRAPHQL_OPERATION_SECONDS",
    "INGRESS_OUTCOMES",
    "INGRESS_REQUESTS",
    "OUTBOUND_OUTCOMES",
    "OUTBOUND_RETRY_AFTER_SECONDS",
    "OUTBOUND_SENDS",
    "REGISTRY",
    "ROLLBACK_SECONDS",
    "SANDBOX_POOLS",
    "UPDATES",
    "UPDATE_OUTCOMES",
    "MetricsServer",
    "RedisCollector",
    "SandboxPoolCollector",
    "TimedApi",
    "exposition",
    "serve_metrics",
    "timed_engine",
    "token_ok",
]

_SAMPLE = 1000
_SCAN_COUNT = 1000
OTHER = "_other"
"""The ``bot`` label of everything past ``max_bots`` series."""

REGISTRY = CollectorRegistry(auto_describe=True)
"""Every process-local series; ``GET /metrics`` and ``serve_metrics`` expose it."""

ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

INGRESS_OUTCOMES = (
    "accepted", "duplicate", "unauthorized", "unknown_bot", "malformed", "too_large", "rate_limited", "overloaded",
)  # fmt: skip
INGRESS_REQUESTS = Counter(
    "botkiln_ingress_requests",
    "Webhook requests by outcome (docs/ingress.md: accepted includes kinds without a chat, answered 200 and dropped).",
    ["outcome"],
    registry=REGISTRY,
)

EXECUTOR_PHASES = ("queue_wait", "sandbox_step", "api_call", "total")
EXECUTOR_SECONDS = Histogram(
    "botkiln_executor_seconds",
    "Time of one update in the executor, by phase: queue_wait (enqueue to claim), sandbox_step, api_call, total.",
    ["phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
UPDATE_OUTCOMES = ("done", "dead_lettered", "lost")
UPDATES = Counter(
    "botkiln_updates",
    "Updates the executors finished, by outcome (workers/executor.py).",
    ["outcome"],
    registry=REGISTRY,
)

OUTBOUND_OUTCOMES = ("sent", "duplicate", "retried", "rate_limited", "dead_lettered", "forbidden")
OUTBOUND_SENDS = Counter(
    "botkiln_outbound_sends",
    "Bot API calls of the outbound sender and what came of them (retried and rate_limited count attempts).",
    ["outcome"],
    registry=REGISTRY,
)
OUTBOUND_RETRY_AFTER_SECONDS = Counter(
    "botkiln_outbound_retry_after_seconds",
    "Sum of Telegram's retry_after in the 429 answers the sender received.",
    registry=REGISTRY,
)

DEPLOY_STAGE_SECONDS = Histogram(
    "botkiln_deploy_stage_seconds",
    "Duration of each deploy or rollback stage (passed or failed).",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
DEPLOYS = Counter(
    "botkiln_deploys",
    "Finished deployments: succeeded (a deploy flipped), rolled_back (a rollback flipped), failed (either refused).",
    ["outcome"],
    registry=REGISTRY,
)
ROLLBACK_SECONDS = Histogram(
    "botkiln_rollback_seconds",
    "Duration of a rollback that flipped, from taking the bot's lock to the flip.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)

GRAPHQL_OPERATION_SECONDS = Histogram(
    "botkiln_graphql_operation_seconds",
    "Duration of GraphQL queries and mutations, by operation type and root field.",
    ["type", "field"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
GRAPHQL_ERRORS = Counter(
    "botkiln_graphql_errors",
    "Errors in GraphQL results, by operation type and the root field of their path (_operation: no path).",
    ["type", "field"],
    registry=REGISTRY,
)


def timed_engine(engine: Engine) -> Engine:
    """``engine`` with each step in a ``sandbox.step`` span and ``botkiln_executor_seconds{phase="sandbox_step"}``."""
    observed = EXECUTOR_SECONDS.labels("sandbox_step")

    def step(data: StepInput) -> StepOutput:
        with start_span("sandbox.step"), observed.time():
            return engine(data)

    return step


class TimedApi:
    """An ``ApiPerformer`` timing each apiCall: an ``api_call`` span, ``botkiln_executor_seconds{phase=api_call}``."""

    def __init__(self, api: ApiPerformer) -> None:
        self._api = api
        self._observed = EXECUTOR_SECONDS.labels("api_call")

    def perform(self, request: ApiRequest) -> ApiResult:
        with start_span("api_call", kind=SpanKind.CLIENT), self._observed.time():
            return self._api.perform(request)


class SandboxPoolCollector(Collector):
    """``botkiln_sandbox_pool_*`` summed over the pools it watches (weakly: a dropped pool stops counting)."""

    def __init__(self) -> None:
        self._pools: weakref.WeakSet[SandboxPool] = weakref.WeakSet()
        self._lock = threading.Lock()

    def watch(self, pool: SandboxPool) -> None:
        """Count ``pool`` from now on."""
        with self._lock:
            self._pools.add(pool)

    def unwatch(self, pool: SandboxPool) -> None:
        """Stop counting ``pool``."""
        with self._lock:
            self._pools.discard(pool)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            stats = [pool.stats() for pool in self._pools]
        size = GaugeMetricFamily("botkiln_sandbox_pool_size", "Warm QuickJS sandboxes (revisions) in the pool.")
        size.add_metric([], sum(s.size for s in stats))
        yield size
        for name, help_text, value in (
            ("hits", "Steps that found their revision warm.", sum(s.hits for s in stats)),
            ("misses", "Steps that had to load their revision's bot.js.", sum(s.misses for s in stats)),
            ("evictions", "Revisions dropped to stay within capacity.", sum(s.evictions for s in stats)),
            ("expirations", "Revisions dropped after idle_ttl_s without use.", sum(s.expirations for s in stats)),
            ("discards", "Revisions dropped after a failed call.", sum(s.discards for s in stats)),
        ):
            counter = CounterMetricFamily(f"botkiln_sandbox_pool_{name}", help_text)
            counter.add_metric([], value)
            yield counter


SANDBOX_POOLS = SandboxPoolCollector()
"""The executors' pools (``workers/broker.py`` watches the runtime's)."""
REGISTRY.register(SANDBOX_POOLS)


class RedisCollector(Collector):
    """Queue depth, oldest queued update and dead letters per bot, read from Redis at scrape time.

    Bots are found by an incremental ``SCAN`` for ``<p>:cq:depth:*``, ``<p>:dlq:in:*`` and
    ``<p>:dlq:out:*`` (a depth key outlives its last update, so a bot once seen stays until a full
    pass no longer finds it): each scrape examines at most ``scan_budget`` keys and goes on from
    where the last one stopped. Then one pipeline reads every tracked bot.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = PREFIX,
        max_bots: int = 500,
        max_tracked: int = 5000,
        scan_budget: int = 20_000,
    ) -> None:
        self._redis = client
        self._queue = ChatQueueKeys(prefix)
        self._out = OutboundKeys(prefix)
        self._prefix = prefix
        self.max_bots = max_bots
        self.max_tracked = max_tracked
        self.scan_budget = scan_budget
        self._lock = threading.Lock()
        self._cursor = 0
        self._known: set[str] = set()
        self._pass: set[str] = set()

    @classmethod
    def from_url(cls, url: str, *, prefix: str = PREFIX, timeout_s: float = 1.0, **limits: int) -> RedisCollector:
        """A collector with its own synchronous client on ``url`` (``timeout_s`` per connect and per reply)."""
        client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return cls(client, prefix=prefix, **limits)

    def close(self) -> None:
        """Close the Redis client."""
        self._redis.close()

    def describe(self) -> Iterable[Metric]:
        return []  # collected only at scrape time: registering must not touch Redis

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("botkiln_metrics_redis_up", "1 if the last scrape of the queue gauges read Redis.")
        try:
            with self._lock:
                rows = self._read()
        except Exception:  # a scrape must answer whatever Redis does
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from self._families(rows)

    def _read(self) -> list[tuple[str, int, float | None, int, int]]:
        """``(bot, depth, oldest age s, dlq in, dlq out)`` of every tracked bot."""
        active = self._sample()
        self._scan()
        bots = sorted(self._known | active)[: self.max_tracked]
        if not bots:
            return []
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.time()
            for bot in bots:
                pipe.get(self._queue.depth(bot))
                pipe.zrange(self._queue.heads(bot), 0, 0, withscores=True)
                pipe.llen(self._queue.dlq_in(bot))
                pipe.llen(self._out.dlq_out(bot))
            replies = pipe.execute()
        seconds, micros = replies[0]
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        rows = []
        for i, bot in enumerate(bots):
            depth, head, dlq_in, dlq_out = replies[1 + 4 * i : 5 + 4 * i]
            age = max(0.0, (now_ms - float(head[0][1])) / 1000) if head else None
            rows.append((bot, int(depth or 0), age, int(dlq_in), int(dlq_out)))
        return rows

    def _sample(self) -> set[str]:
        """Bots with work now: those of the first chats ready or leased (members ``<botId>:<chatId>``)."""
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrange(self._queue.ready, 0, _SAMPLE - 1)
            pipe.zrange(self._queue.leases, 0, _SAMPLE - 1)
            replies = pipe.execute()
        return {_text(member).rsplit(":", 1)[0] for members in replies for member in members}

    def _scan(self) -> None:
        """Go on with the pass over the keyspace for at most ``scan_budget`` keys; a finished pass replaces ``_known``.

        Every bot is found eventually: its depth key outlives its last update, dead letters stay until handled.
        """
        starts = [self._queue.depth(""), self._queue.dlq_in(""), self._out.dlq_out("")]
        examined = 0
        while examined < self.scan_budget:
            # MATCH takes one pattern: SCAN the prefix and sort the keys here.
            self._cursor, keys = self._redis.scan(self._cursor, match=f"{self._prefix}:*", count=_SCAN_COUNT)
            examined += _SCAN_COUNT
            for raw in keys:
                key = _text(raw)
                for start in starts:
                    if key.startswith(start) and len(self._pass) < self.max_tracked:
                        self._pass.add(key[len(start) :])
            if self._cursor == 0:
                self._known, self._pass = self._pass, set()
                return
        self._known |= self._pass  # a pass under way only adds; removals wait for its end

    def _families(self, rows: list[tuple[str, int, float | None, int, int]]) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "botkiln_queue_depth", "Updates queued for the bot (leased heads included).", labels=["bot"]
        )
        age = GaugeMetricFamily(
            "botkiln_queue_oldest_age_seconds", "How long the bot's oldest queued update has waited.", labels=["bot"]
        )
        dlq = GaugeMetricFamily(
            "botkiln_dlq_size", "Dead letters of the bot: in (updates), out (actions).", labels=["bot", "kind"]
        )
        ranked = sorted(rows, key=lambda r: (-r[1], -(r[3] + r[4]), r[0]))
        shown, rest = ranked[: self.max_bots], ranked[self.max_bots :]
        for bot, n, oldest, dlq_in, dlq_out in shown:
            depth.add_metric([bot], n)
            age.add_metric([bot], oldest or 0.0)
            dlq.add_metric([bot, "in"], dlq_in)
            dlq.add_metric([bot, "out"], dlq_out)
        if rest:
            depth.add_metric([OTHER], sum(r[1] for r in rest))
            age.add_metric([OTHER], max((r[2] or 0.0) for r in rest))
            dlq.add_metric([OTHER, "in"], sum(r[3] for r in rest))
            dlq.add_metric([OTHER, "out"], sum(r[4] for r in rest))
        yield from (depth, age, dlq)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def exposition(*registries: CollectorRegistry) -> bytes:
    """The text exposition of ``registries`` (each family must live in one of them only)."""
    return b"".join(generate_latest(r) for r in registries)


def token_ok(authorization: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (always, when no token is set)."""
    if token is None:
        return True
    scheme, _, presented = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _metrics_app(registries: tuple[CollectorRegistry, ...], token: str | None) -> WsgiApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found; try /metrics\n"]
        if not token_ok(environ.get("HTTP_AUTHORIZATION"), token):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"unauthorized\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [exposition(*registries)]

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not worth a log line each
        pass


class MetricsServer:
    """A running metrics endpoint; ``port`` is the bound one (useful with port 0)."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.port: int = server.server_port

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(
    port: int,
    *,
    host: str = "0.0.0.0",  # noqa: S104 -- Prometheus scrapes from another host
    token: str | None = None,
    registries: tuple[CollectorRegistry, ...] = (),
) -> MetricsServer:
    """Serve ``REGISTRY`` (and ``registries``) at ``http://host:port/metrics`` from a daemon thread.

    Raises:
        OSError: the port cannot be bound.
    """
    app = _metrics_app((REGISTRY, *registries), token)
    server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="botkiln-metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
