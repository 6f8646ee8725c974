"""infra/metrics.py, infra/logs.py and infra/tracing.py: collectors on real Redis, log lines, redaction, spans.

The API's side (webhook counters, ``/metrics``, GraphQL operations) is in
tests/graphql/test_observability.py; deploys and Dramatiq propagation through a real worker in
tests/workers/test_observability.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import secrets
import socket
import string
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import dramatiq
import httpx
import pytest
import redis as redis_sync
import redis.asyncio as aioredis
from dramatiq.brokers.stub import StubBroker
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from botkiln.generator import compile_spec
from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.crypto import generate_secret_key
from botkiln.infra.logs import (
    JsonFormatter,
    Redactor,
    TextFormatter,
    configure_logging,
    current_context,
    log_context,
    secret_values,
    set_log_context,
)
from botkiln.infra.metrics import (
    OTHER,
    REGISTRY,
    RedisCollector,
    SandboxPoolCollector,
    TimedApi,
    serve_metrics,
    timed_engine,
    token_ok,
)
from botkiln.infra.outbound import OutboundLimiter, OutboundSender
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_api import BotApiError
from botkiln.infra.tracing import (
    TracePropagation,
    configure_tracing,
    current_traceparent,
    extract,
    set_provider,
    start_span,
)
from botkiln.interpreter.conformance import Script, run_script
from botkiln.interpreter.quickjs import PooledEngine, SandboxPool
from tests.conftest import minimal_spec
from tests.services import REDIS_URL

TOKEN_SECRET = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=35, max_size=35)
BOT_TOKEN = st.builds(lambda n, s: f"{n}:{s}", st.integers(10_000, 9_999_999_999), TOKEN_SECRET)


# -- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of the test's own writing JSON lines to a string."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    made = logging.getLogger(f"botkiln.test.{secrets.token_hex(4)}")
    made.addHandler(handler)
    made.setLevel(logging.DEBUG)
    made.propagate = False
    yield made, out
    made.removeHandler(handler)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_json_line_carries_the_context_and_the_trace(
    logger: tuple[logging.Logger, io.StringIO], spans: InMemorySpanExporter
) -> None:
    log, out = logger
    with log_context(bot="faq-bot", chat=-100500, update=42), log_context(revision="ab" * 32):
        with start_span("step") as span:
            log.warning("update %d took %.1f s", 42, 1.5)
        log.info("after the span")
    log.info("outside")
    inside, after, outside = lines(out)
    ids = span.get_span_context()
    assert inside == {
        "ts": inside["ts"], "level": "WARNING", "logger": log.name, "msg": "update 42 took 1.5 s",
        "bot": "faq-bot", "chat": -100500, "update": 42, "revision": "ab" * 32,
        "trace_id": format(ids.trace_id, "032x"), "span_id": format(ids.span_id, "016x"),
    }  # fmt: skip
    assert inside["ts"].endswith("Z") and len(inside["ts"]) == len("2025-01-01T00:00:00.000Z")
    assert "trace_id" not in after and after["bot"] == "faq-bot"
    assert set(outside) == {"ts", "level", "logger", "msg"}


def test_extra_keeps_the_context_fields_only_so_state_never_reaches_a_line(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = logger
    state = {"vars": {"name": "Alice Liddell", "phone": "+44 20 7946 0000"}}
    log.info("saved", extra={"state": state, "payload": b"secret body", "bot": "b1", "task": "t-1", "chat": True})
    [line] = lines(out)
    assert line == {"ts": line["ts"], "level": "INFO", "logger": log.name, "msg": "saved", "bot": "b1", "task": "t-1"}
    assert "Alice" not in out.getvalue() and "secret body" not in out.getvalue()


def test_an_exception_is_one_line_with_its_traceback(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = logger
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        log.exception("failed")
    assert len(out.getvalue().splitlines()) == 1
    [line] = lines(out)
    assert line["msg"] == "failed" and line["exc"].startswith("Traceback") and "ValueError: bad\nthing" in line["exc"]


def test_log_context_refuses_unknown_fields_and_is_undone_on_exit() -> None:
    with pytest.raises(TypeError, match="not state"), log_context(state="x"):
        pass
    with log_context(bot="a", chat=None):
        with log_context(update=1):
            assert current_context() == {"bot": "a", "update": 1}
        assert current_context() == {"bot": "a"}
    assert current_context() == {}


@pytest.mark.anyio
async def test_the_context_follows_awaits_and_threads(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = logger

    async def one(bot: str) -> None:
        with log_context(bot=bot):
            await asyncio.sleep(0.01)
            await asyncio.to_thread(log.info, "in a thread")

    await asyncio.gather(one("a"), one("b"))
    assert sorted(line["bot"] for line in lines(out)) == ["a", "b"]


@pytest.mark.anyio
async def test_a_task_may_add_context_midway_without_touching_its_caller(
    logger: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = logger

    async def handle() -> None:
        log.info("claimed")
        set_log_context(revision="r1")
        log.info("resolved")

    with log_context(bot="b"):
        await asyncio.create_task(handle())
        log.info("caller")
    assert [(line["msg"], line.get("revision")) for line in lines(out)] == [
        ("claimed", None), ("resolved", "r1"), ("caller", None),
    ]  # fmt: skip
    with pytest.raises(TypeError):
        set_log_context(state="x")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_tokens_and_secret_settings_never_reach_the_output(fmt: str) -> None:
    # Given settings with every kind of secret, and logging configured from them
    settings = Settings(
        secret_key=f"{generate_secret_key()},{generate_secret_key()}",
        database_url="postgresql://botkiln:pg-Passw0rd-xyz@db:5432/botkiln",
        redis_url="redis://:redis-Passw0rd-xyz@cache:6379/0",
        llm_api_key="sk-live-0123456789abcdef",
        metrics_token="scrape-me-0123456789",
        log_format="json" if fmt == "json" else "text",
    )
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(settings, stream=out)
        log = logging.getLogger("botkiln.test.secrets")
        # When messages, arguments and a traceback carry them
        log.warning("POST https://api.telegram.org/bot%s/sendMessage failed", token)
        log.error("token %s, key %s, dsn %s", token, settings.secret_key, settings.database_url)
        try:
            raise RuntimeError(f"connect {settings.redis_url} with {settings.llm_api_key} / {settings.metrics_token}")
        except RuntimeError:
            log.exception("boom")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    # Then none of them is printed, and the lines still say what happened
    text = out.getvalue()
    assert settings.secret_key is not None
    for secret in [token.split(":")[1], *settings.secret_key.split(","), "pg-Passw0rd-xyz", "redis-Passw0rd-xyz"]:
        assert secret not in text
    for secret in ["sk-live-0123456789abcdef", "scrape-me-0123456789"]:
        assert secret not in text
    assert "bot<redacted>/sendMessage" in text and "RuntimeError: connect" in text
    if fmt == "json":
        assert [json.loads(line)["level"] for line in text.splitlines()] == ["WARNING", "ERROR", "ERROR"]
    else:
        assert text.count("\n") > 3 and " WARNING botkiln.test.secrets: POST" in text


def test_secret_values_lists_keys_tokens_and_url_passwords_only() -> None:
    key = generate_secret_key()
    settings = Settings(
        secret_key=key, database_url="postgresql://u:pw-123456789@h/db", redis_url="redis://h:6379/0",
        analytics_url="https://user:ch-secret-1@clickhouse:8443/botkiln", metrics_token="tok-123456789",
    )  # fmt: skip
    assert sorted(secret_values(settings)) == sorted([key, key, "pw-123456789", "ch-secret-1", "tok-123456789"])


@given(before=st.text(max_size=40), token=BOT_TOKEN, after=st.text(max_size=40), as_url=st.booleans())
@settings(max_examples=300, deadline=None)
def test_a_bot_token_anywhere_in_any_text_is_redacted(before: str, token: str, after: str, as_url: bool) -> None:
    secret = token.split(":", 1)[1]
    assume(secret not in before + after)  # the text around may hold the same characters by chance, not as a token
    inner = f"https://api.telegram.org/bot{token}/getMe" if as_url else token
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "%s", (before + inner + after,), None)
    line = JsonFormatter().format(record)
    assert secret not in line and secret not in json.loads(line)["msg"]
    assert secret not in TextFormatter().format(record)


@given(
    secret=st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=16, max_size=64),
    parts=st.lists(st.text(max_size=30), min_size=1, max_size=4),
)
@settings(max_examples=300, deadline=None)
def test_a_secret_value_is_redacted_wherever_it_occurs(secret: str, parts: list[str]) -> None:
    text = secret.join(parts) + secret
    assert secret not in Redactor([secret])(text)


def test_short_secret_values_are_not_searched_for() -> None:
    redactor = Redactor(["abc", "0123456789"])
    assert redactor("abc 0123456789") == "abc <redacted>"


# -- metrics: the endpoint, the sandbox pool ------------------------------------------------------


def test_the_bearer_token_check() -> None:
    assert token_ok(None, None) and token_ok("anything", None)
    assert token_ok("Bearer s3cret-token", "s3cret-token") and token_ok("bearer s3cret-token", "s3cret-token")
    assert not token_ok(None, "s3cret-token")
    assert not token_ok("Bearer s3cret-tokem", "s3cret-token")
    assert not token_ok("Basic s3cret-token", "s3cret-token")
    assert not token_ok("s3cret-token", "s3cret-token")


def test_the_worker_endpoint_requires_the_token_when_one_is_set() -> None:
    server = serve_metrics(0, host="127.0.0.1", token="scrape-token-1")
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        answer = httpx.get(url, headers={"Authorization": "Bearer scrape-token-1"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
        assert "# TYPE botkiln_ingress_requests_total counter" in answer.text
        assert "# TYPE botkiln_executor_seconds histogram" in answer.text
        assert httpx.get(f"http://127.0.0.1:{server.port}/other").status_code == 404
    finally:
        server.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def test_the_pool_collector_reads_the_pools_own_counters() -> None:
    # Given two watched pools, one revision run three times in the first and once in the second
    spec = minimal_spec()
    source = compile_spec(spec)
    first, second = SandboxPool(4), SandboxPool(4)
    collector = SandboxPoolCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    collector.watch(first)
    collector.watch(second)
    for pool, runs in ((first, 3), (second, 1)):
        for _ in range(runs):
            run_script(spec, PooledEngine(pool, "rev-a", source), Script("s", [{"text": "/start", "chat": 1}]))
    first.prewarm("rev-b", source)

    def value(name: str) -> float | None:
        return registry.get_sample_value(name)

    # Then the sums are the pools' counts: one miss each, the rest hits; the size counts rev-b too
    assert value("botkiln_sandbox_pool_misses_total") == 2
    assert value("botkiln_sandbox_pool_hits_total") == 2
    assert value("botkiln_sandbox_pool_size") == 3
    assert value("botkiln_sandbox_pool_evictions_total") == 0
    # And an unwatched pool no longer counts
    collector.unwatch(first)
    assert value("botkiln_sandbox_pool_size") == 1 and value("botkiln_sandbox_pool_misses_total") == 1


def test_the_executor_wrappers_time_steps_and_api_calls(spans: InMemorySpanExporter) -> None:
    def count(phase: str) -> float:
        return REGISTRY.get_sample_value("botkiln_executor_seconds_count", {"phase": phase}) or 0.0

    class Api:
        def perform(self, request: Any) -> Any:
            return {"ok": True, "status": 200, "json": request["url"]}

    def engine(data: Any) -> Any:
        return {"actions": [], "state": data["state"], "events": []}

    steps, calls = count("sandbox_step"), count("api_call")
    step: Any = timed_engine(engine)
    for n in range(3):
        assert step({"state": n})["state"] == n
    answer: Any = TimedApi(Api()).perform(cast(Any, {"url": "https://x.example/"}))
    assert answer["json"] == "https://x.example/"
    assert (count("sandbox_step") - steps, count("api_call") - calls) == (3, 1)
    assert sorted(s.name for s in spans.get_finished_spans()) == ["api_call", *["sandbox.step"] * 3]


# -- metrics: Redis gauges ----------------------------------------------------------------------


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def prefix(redis: aioredis.Redis) -> AsyncIterator[str]:
    value = f"test-obs-{secrets.token_hex(6)}"
    yield value
    keys = [k async for k in redis.scan_iter(match=f"{value}:*", count=1000)]
    if keys:
        await redis.delete(*keys)


class Refusing:
    """A Bot API that refuses every call for good (400): each action is dead-lettered."""

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        raise BotApiError(method, "Bad Request: chat not found", 400)


def scrape(collector: RedisCollector, until: str, labels: dict[str, str]) -> CollectorRegistry:
    """A registry with ``collector``, once a scrape shows ``until`` (a full SCAN pass may take several)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    for _ in range(500):
        if registry.get_sample_value(until, labels) is not None:
            return registry
    raise AssertionError(f"{until}{labels} never appeared")


@pytest.mark.anyio
async def test_queue_and_dead_letter_gauges_come_from_redis(redis: aioredis.Redis, prefix: str) -> None:
    # Given bot a with 5 updates in two chats, one dead-lettered; bot b with 1; bot c with a dead outbound action
    queue = RedisChatQueue(redis, prefix=prefix)
    for update_id, chat in enumerate([1, 1, 2, 1, 2], start=100):
        await queue.enqueue("bot-a", chat, update_id, b"{}")
    await queue.enqueue("bot-b", 9, 1, b"{}")
    claim = await queue.claim("c1", 10_000)
    assert claim is not None and claim.bot_id == "bot-a"
    assert await queue.dead_letter(claim, "bot code failed: test")
    sender = OutboundSender(redis, OutboundLimiter(redis, prefix=prefix), lambda token: Refusing(), prefix=prefix)
    report = await sender.send("bot-c", "1:x", 5, [{"method": "sendMessage", "params": {"text": "hi"}}], dedup_key="u1")
    assert report.count("dead_lettered") == 1
    # When Prometheus scrapes
    collector = RedisCollector.from_url(REDIS_URL, prefix=prefix)
    try:
        registry = await asyncio.to_thread(scrape, collector, "botkiln_dlq_size", {"bot": "bot-c", "kind": "out"})

        def value(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(name, labels)

        # Then each bot's depth, oldest update and dead letters are what Redis holds
        assert value("botkiln_metrics_redis_up") == 1
        assert value("botkiln_queue_depth", bot="bot-a") == 4
        assert value("botkiln_queue_depth", bot="bot-b") == 1
        assert value("botkiln_queue_depth", bot="bot-c") == 0
        assert value("botkiln_queue_oldest_age_seconds", bot="bot-c") == 0
        age = value("botkiln_queue_oldest_age_seconds", bot="bot-a")
        assert age is not None and 0 <= age < 60
        assert value("botkiln_dlq_size", bot="bot-a", kind="in") == 1
        assert value("botkiln_dlq_size", bot="bot-a", kind="out") == 0
        assert value("botkiln_dlq_size", bot="bot-c", kind="out") == 1
        assert value("botkiln_dlq_size", bot="bot-c", kind="in") == 0
        # And with room for one series, the deepest bot keeps its own and the rest is summed
        collector.max_bots = 1
        assert value("botkiln_queue_depth", bot="bot-a") == 4
        assert value("botkiln_queue_depth", bot="bot-b") is None
        assert value("botkiln_queue_depth", bot=OTHER) == 1
        assert value("botkiln_dlq_size", bot=OTHER, kind="out") == 1
    finally:
        collector.close()


def test_a_scrape_without_redis_says_so_and_does_not_fail() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    collector = RedisCollector.from_url(f"redis://127.0.0.1:{port}/0", timeout_s=0.2)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        assert registry.get_sample_value("botkiln_metrics_redis_up") == 0
        assert registry.get_sample_value("botkiln_queue_depth", {"bot": "bot-a"}) is None
    finally:
        collector.close()


def test_one_scrape_examines_a_bounded_part_of_the_keyspace(redis_url: str) -> None:
    # Given 3000 keys of a bot's dead letters in a fresh namespace, and a budget of one SCAN step per scrape
    prefix = f"test-obs-{secrets.token_hex(6)}"
    client = redis_sync.Redis.from_url(redis_url)
    try:
        with client.pipeline(transaction=False) as pipe:
            for n in range(3000):
                pipe.rpush(f"{prefix}:dlq:in:bot-{n}", b"x")
            pipe.execute()
        collector = RedisCollector(client, prefix=prefix, scan_budget=1000, max_tracked=10_000)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)

        # When scraped once, only part of the keyspace was examined
        registry.get_sample_value("botkiln_metrics_redis_up")
        assert len(collector._known) < 3000
        # When scraped again and again, a full pass finds them all
        for _ in range(5000):
            if collector._cursor == 0 and len(collector._known) == 3000:
                break
            registry.get_sample_value("botkiln_metrics_redis_up")
        assert len(collector._known) == 3000
        # Then at most max_bots series are shown, the rest summed
        families = {m.name: m for m in registry.collect()}
        samples = families["botkiln_dlq_size"].samples
        assert len({s.labels["bot"] for s in samples}) == 501
        assert sum(s.value for s in samples if s.labels["kind"] == "in") == 3000
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        client.close()


# -- tracing --------------------------------------------------------------------------------------


def test_a_traceparent_carries_the_trace_through_a_queue(spans: InMemorySpanExporter) -> None:
    with start_span("producer", {"botkiln.bot": "b"}, kind=SpanKind.PRODUCER) as producer:
        carried = current_traceparent()
    assert carried is not None
    ids = producer.get_span_context()
    assert carried.startswith(f"00-{ids.trace_id:032x}-{ids.span_id:016x}-")
    with start_span("consumer", parent=carried):
        pass
    with start_span("orphan", parent="00-garbage"):
        pass
    finished = {s.name: s for s in spans.get_finished_spans()}
    consumer, orphan = finished["consumer"], finished["orphan"]
    assert consumer.context is not None and orphan.context is not None and consumer.parent is not None
    assert consumer.context.trace_id == ids.trace_id and consumer.parent.span_id == ids.span_id
    assert orphan.parent is None and orphan.context.trace_id != ids.trace_id
    assert extract(None) == {} and current_traceparent() is None


def test_with_an_endpoint_spans_are_exported_over_otlp_http(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a collector stand-in that records what is POSTed to it
    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    provider = configure_tracing(
        Settings(otlp_endpoint=f"http://127.0.0.1:{server.server_port}/"), service="botkiln-t1"
    )
    try:
        # When a span ends and the batch is flushed
        assert provider is not None
        with start_span("exported-span", {"botkiln.bot": "b"}):
            assert current_traceparent() is not None
        assert provider.force_flush(10_000)
    finally:
        set_provider(None)
        if provider is not None:
            provider.shutdown()
        server.shutdown()
        server.server_close()
    # Then the collector got it, protobuf on /v1/traces, with the service's name
    [(path, content_type, body)] = received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    assert b"exported-span" in body and b"botkiln-t1" in body


def test_an_exception_marks_the_span_failed(spans: InMemorySpanExporter) -> None:
    with pytest.raises(KeyError), start_span("fails"):
        raise KeyError("x")
    [span] = spans.get_finished_spans()
    assert span.status.status_code.name == "ERROR" and span.events[0].name == "exception"


def test_without_an_endpoint_tracing_is_off_and_costs_no_context() -> None:
    code = (
        "from botkiln.infra.settings import Settings\n"
        "from botkiln.infra.tracing import configure_tracing, current_traceparent, start_span\n"
        "assert configure_tracing(Settings(), service='t') is None\n"
        "with start_span('x') as span:\n"
        "    print(span.is_recording(), current_traceparent())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTKILN_", "OTEL_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stdout) == (0, "False None\n"), done.stderr


def test_dramatiq_messages_of_traced_queues_continue_the_enqueuing_trace(spans: InMemorySpanExporter) -> None:
    # Given a stub broker with the middleware for queue "control" only, and an actor on each queue
    broker = StubBroker(middleware=[TracePropagation(queues={"control"})])
    broker.emit_after("process_boot")
    seen: dict[str, str | None] = {}

    @dramatiq.actor(broker=broker, queue_name="control")
    def control() -> None:
        seen["control"] = current_traceparent()

    @dramatiq.actor(broker=broker, queue_name="runtime")
    def runtime() -> None:
        seen["runtime"] = current_traceparent()

    # When both are sent from inside a span and processed
    with start_span("request") as request:
        sent = control.send()
        other = runtime.send()
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        broker.join("control")
        broker.join("runtime")
        worker.join()
    finally:
        worker.stop()
    # Then the control message carried the trace and ran in a consumer span of it; the runtime one did not
    ids = request.get_span_context()
    assert sent.options["traceparent"].startswith(f"00-{ids.trace_id:032x}-{ids.span_id:016x}-")
    assert "traceparent" not in other.options
    consumer = next(s for s in spans.get_finished_spans() if s.name == "dramatiq control")
    assert consumer.kind == SpanKind.CONSUMER and consumer.parent is not None
    assert consumer.context is not None and consumer.context.trace_id == ids.trace_id
    assert consumer.parent.span_id == ids.span_id
    assert seen["control"] is not None and seen["control"].split("-")[1] == f"{ids.trace_id:032x}"
    assert seen["runtime"] is None
