"""The API's metrics and spans through a real uvicorn server, PostgreSQL and Redis (docs/observability.md).

Counters are process-wide (the server runs in this process), so each test reads them before
and after its own traffic and asserts the difference.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import Iterator
from typing import Any

import dramatiq
import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from botkiln.graphql.app import build_app
from botkiln.graphql.ingress import SECRET_HEADER, IngressOptions
from botkiln.infra.db.bots import Bot, create_bot
from botkiln.infra.db.pool import connect
from botkiln.infra.db.projects import create_project
from botkiln.infra.db.users import User, create_user
from botkiln.infra.metrics import INGRESS_OUTCOMES, REGISTRY
from botkiln.infra.settings import Settings
from tests.graphql.support import Api, ServerThread
from tests.services import delete_keys

MAX_BODY = 64 * 1024
MAX_DEPTH = 3
RATE = 5
OPTIONS = IngressOptions(max_body_bytes=MAX_BODY, rate_limit=RATE, rate_window_ms=60_000, max_queue_depth=MAX_DEPTH)


@pytest.fixture(scope="module")
def prefix(redis_url: str) -> Iterator[str]:
    made = f"botkiln-test-{secrets.token_hex(4)}"
    yield made
    delete_keys(redis_url, f"{made}:*")


@pytest.fixture(scope="module")
def base_url(settings: Settings, broker: dramatiq.Broker, api_server: ServerThread, prefix: str) -> str:
    """The API with small ingress limits (a 60 s rate window, so counts do not depend on timing)."""
    api_server.start(build_app(settings, broker=broker, redis_prefix=f"{prefix}:", ingress_options=OPTIONS))
    return api_server.url


@pytest.fixture(scope="module")
def project_id(database: str) -> Any:
    async def make() -> Any:
        conn = await connect(database)
        try:
            user = await create_user(conn, email=f"o{secrets.token_hex(4)}@example.com", password="correct horse")
            assert isinstance(user, User)
            return (await create_project(conn, name="observability", owner_id=user.id)).id
        finally:
            await conn.close()

    return asyncio.run(make())


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def new_bot(settings: Settings, database: str, project_id: Any) -> tuple[str, str]:
    """A live bot with a known webhook secret: ``(bot_id, secret)``."""
    bot_id, secret = f"obs-{secrets.token_hex(5)}", secrets.token_urlsafe(32)

    async def make() -> None:
        conn = await connect(database)
        try:
            made = await create_bot(
                conn, settings.secret_box(), bot_id=bot_id, project_id=project_id, name="observability",
                token=f"1:{secrets.token_hex(10)}", webhook_secret=secret, created_by=None,
            )  # fmt: skip
            assert isinstance(made, Bot)
        finally:
            await conn.close()

    asyncio.run(make())
    return bot_id, secret


def update(update_id: int, chat_id: int) -> bytes:
    message = {"message_id": update_id, "date": 0, "chat": {"id": chat_id, "type": "private"}, "text": "hi"}
    return json.dumps({"update_id": update_id, "message": message}).encode()


def post(http: httpx.Client, bot_id: str, body: bytes, secret: str | None) -> int:
    headers = {} if secret is None else {SECRET_HEADER: secret}
    return http.post(f"/wh/{bot_id}", content=body, headers=headers).status_code


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(http: httpx.Client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``GET /metrics`` parsed: (sample name, sorted labels) -> value."""
    answer = http.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def test_every_webhook_answer_counts_once_under_its_outcome(
    http: httpx.Client, settings: Settings, database: str, project_id: Any
) -> None:
    # Given three bots and the counters as they are
    (a, secret_a), (b, secret_b), (c, secret_c) = (new_bot(settings, database, project_id) for _ in range(3))
    before = {o: sample("botkiln_ingress_requests_total", outcome=o) for o in INGRESS_OUTCOMES}
    # When bot a gets two updates, a retry of one, an inline query, a body that is not JSON,
    # a body over the cap, a wrong secret and none
    assert [post(http, a, update(1, 7), secret_a), post(http, a, update(2, 8), secret_a)] == [200, 200]
    assert post(http, a, update(1, 7), secret_a) == 200
    inline = {"update_id": 3, "inline_query": {"id": "q", "from": {"id": 1}, "query": "x", "offset": ""}}
    assert post(http, a, json.dumps(inline).encode(), secret_a) == 200
    assert post(http, a, b"{not json", secret_a) == 400
    assert post(http, a, b"x" * (MAX_BODY + 1), secret_a) == 413
    assert [post(http, a, update(4, 7), "wrong"), post(http, a, update(4, 7), None)] == [401, 401]
    # And bot b fills its queue and gets one more; bot c sends one update six times (the sixth is over its rate)
    assert [post(http, b, update(n, 9), secret_b) for n in range(MAX_DEPTH + 1)] == [200] * MAX_DEPTH + [429]
    assert [post(http, c, update(1, 5), secret_c) for _ in range(RATE + 1)] == [200] * RATE + [429]
    # And two requests name no bot we have
    assert [post(http, f"obs-{secrets.token_hex(5)}", update(1, 1), "x"), post(http, "BAD!", b"{}", "x")] == [404, 404]
    # Then each answer counted once, under its outcome
    after = {o: sample("botkiln_ingress_requests_total", outcome=o) for o in INGRESS_OUTCOMES}
    assert {o: after[o] - before[o] for o in INGRESS_OUTCOMES} == {
        "accepted": 2 + 1 + MAX_DEPTH + 1, "duplicate": 1 + RATE - 1, "unauthorized": 2, "unknown_bot": 2,
        "malformed": 1, "too_large": 1, "rate_limited": 1, "overloaded": 1,
    }  # fmt: skip
    # And /metrics says the same, with each bot's queue read from Redis
    seen = scraped(http)
    for outcome in INGRESS_OUTCOMES:
        assert seen[("botkiln_ingress_requests_total", (("outcome", outcome),))] == after[outcome]
    assert seen[("botkiln_metrics_redis_up", ())] == 1
    depths = {bot: seen.get(("botkiln_queue_depth", (("bot", bot),))) for bot in (a, b, c)}
    assert depths == {a: 2, b: MAX_DEPTH, c: 1}
    oldest = seen[("botkiln_queue_oldest_age_seconds", (("bot", b),))]
    assert 0 <= oldest < 60
    assert seen[("botkiln_dlq_size", (("bot", a), ("kind", "in")))] == 0


def test_metrics_need_the_bearer_token_when_one_is_set(
    settings: Settings, broker: dramatiq.Broker, http: httpx.Client, redis_url: str
) -> None:
    # Given the module's app (no token): anyone may read
    assert http.get("/metrics").status_code == 200
    # And another app of the same settings but a token
    token = secrets.token_urlsafe(24)
    server = ServerThread()
    prefix = f"botkiln-test-{secrets.token_hex(4)}:"
    server.start(build_app(dataclasses.replace(settings, metrics_token=token), broker=broker, redis_prefix=prefix))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            # Then it answers 401 without it, with another, or with another scheme; 200 with it
            refused = client.get("/metrics")
            assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")
            assert token not in refused.text
            assert client.get("/metrics", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
            assert client.get("/metrics", headers={"Authorization": f"Basic {token}"}).status_code == 401
            assert ("botkiln_metrics_redis_up", ()) in scraped(client, Authorization=f"Bearer {token}")
            # And the other routes are unaffected
            assert client.get("/healthz").status_code == 200
    finally:
        server.stop()
        delete_keys(redis_url, f"{prefix}*")


def test_graphql_operations_are_timed_and_their_errors_counted_by_root_field(api: Api, http: httpx.Client) -> None:
    def count(kind: str, field: str) -> float:
        return sample("botkiln_graphql_operation_seconds_count", type=kind, field=field)

    def errors(kind: str, field: str) -> float:
        return sample("botkiln_graphql_errors_total", type=kind, field=field)

    labels = [
        ("query", "__typename"), ("query", "viewer"), ("query", "projects"), ("query", "_unknown"),
        ("mutation", "signIn"), ("_invalid", "_operation"),
    ]  # fmt: skip
    before = {k: (count(*k), errors(*k)) for k in [*labels, ("query", "_operation")]}
    # When: a named query twice; aliases of two root fields; a refused field under an alias;
    # a field the schema lacks; a mutation with an expected failure (a union member, not an error);
    # a document that does not parse
    for _ in range(2):
        api.run("query ClientChosenName { __typename }", csrf=False).ok()
    api.run("{ me: viewer { id } a: __typename b: __typename }", csrf=False).ok()
    refused = api.run("{ mine: projects { edges { node { id } } } }", csrf=False)
    assert refused.errors and refused.errors[0]["path"] == ["mine"]
    assert api.run("{ nope }", csrf=False).errors
    signed = api.run('mutation { signIn(email: "x@example.com", password: "wrong password") { __typename } }').ok()
    assert signed["signIn"]["__typename"] != "SignedIn"
    assert http.post("/graphql", json={"query": "{ viewer {"}).status_code in (200, 400)
    # Then each operation was observed once per distinct root field, and each error under its field
    delta = {k: (count(*k) - before[k][0], errors(*k) - before[k][1]) for k in before}
    assert delta == {
        ("query", "__typename"): (3, 0),
        ("query", "viewer"): (1, 0),
        ("query", "projects"): (1, 1),
        ("query", "_unknown"): (1, 0),
        ("query", "_operation"): (0, 1),
        ("mutation", "signIn"): (1, 0),
        ("_invalid", "_operation"): (0, 1),
    }
    # And neither the client's operation name nor an alias is a label anywhere
    text = http.get("/metrics").text
    assert "ClientChosenName" not in text and 'field="mine"' not in text and 'field="me"' not in text


def test_a_webhook_and_a_graphql_operation_make_spans(
    spans: InMemorySpanExporter, http: httpx.Client, api: Api, settings: Settings, database: str, project_id: Any
) -> None:
    bot_id, secret = new_bot(settings, database, project_id)
    assert post(http, bot_id, update(1, 42), secret) == 200
    assert post(http, bot_id, update(1, 42), "wrong") == 401
    api.run("{ viewer { id } }", csrf=False).ok()
    finished = spans.get_finished_spans()
    hooks = [s for s in finished if s.name == "webhook"]
    assert [s.kind for s in hooks] == [SpanKind.SERVER, SpanKind.SERVER]
    assert [dict(s.attributes or {}) for s in hooks] == [
        {"botkiln.bot": bot_id, "http.response.status_code": 200, "botkiln.ingress.outcome": "accepted"},
        {"botkiln.bot": bot_id, "http.response.status_code": 401, "botkiln.ingress.outcome": "unauthorized"},
    ]
    [operation] = [s for s in finished if s.name == "graphql.query"]
    assert operation.attributes is not None
    assert dict(operation.attributes) == {"graphql.operation.type": "query", "graphql.root_fields": ("viewer",)}
