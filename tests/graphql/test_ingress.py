"""``POST /wh/{botId}`` through a real uvicorn server, real PostgreSQL and Redis (docs/ingress.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import dramatiq
import httpx
import pytest
import redis

from botkiln.graphql.app import build_app
from botkiln.graphql.ingress import SECRET_HEADER, IngressOptions, SecretCache, rate_key
from botkiln.infra.db.bots import Bot, create_bot, delete_bot
from botkiln.infra.db.pool import connect
from botkiln.infra.db.projects import create_project
from botkiln.infra.db.users import User, create_user
from botkiln.infra.redis_keys import ChatQueueKeys
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_standin import BotApiStandIn
from botkiln.infra.telegram_standin_updates import user_message
from tests.graphql.support import ServerThread
from tests.services import delete_keys as _delete_keys

MAX_BODY = 64 * 1024
OPTIONS = IngressOptions(max_body_bytes=MAX_BODY, rate_limit=10_000)


@pytest.fixture(scope="module")
def prefix(redis_url: str) -> Iterator[str]:
    """The module's own Redis key prefix for the chat queue and the ingress."""
    made = f"botkiln-test-{secrets.token_hex(4)}"
    yield made
    _delete_keys(redis_url, f"{made}:*")


@pytest.fixture(scope="module")
def base_url(settings: Settings, broker: dramatiq.Broker, api_server: ServerThread, prefix: str) -> str:
    """The API with a 64 KiB ingress body cap (under the app-wide 1 MiB one, so the ingress's own is tested)."""
    api_server.start(build_app(settings, broker=broker, redis_prefix=f"{prefix}:", ingress_options=OPTIONS))
    return api_server.url


@pytest.fixture(scope="module")
def project_id(database: str) -> Any:
    async def make() -> Any:
        conn = await connect(database)
        try:
            user = await create_user(conn, email=f"i{secrets.token_hex(4)}@example.com", password="correct horse")
            assert isinstance(user, User)
            return (await create_project(conn, name="ingress", owner_id=user.id)).id
        finally:
            await conn.close()

    return asyncio.run(make())


@pytest.fixture
def rds(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def new_bot(settings: Settings, database: str, project_id: Any, *, secret: str | None = None) -> tuple[str, str]:
    """A live bot row with a known webhook secret: ``(bot_id, secret)``."""
    bot_id, secret = f"ing-{secrets.token_hex(5)}", secret or secrets.token_urlsafe(32)

    async def make() -> None:
        conn = await connect(database)
        try:
            made = await create_bot(
                conn, settings.secret_box(), bot_id=bot_id, project_id=project_id, name="ingress test",
                token=f"1:{secrets.token_hex(10)}", webhook_secret=secret, created_by=None,
            )  # fmt: skip
            assert isinstance(made, Bot)
        finally:
            await conn.close()

    asyncio.run(make())
    return bot_id, secret


@pytest.fixture
def bot(settings: Settings, database: str, project_id: Any) -> tuple[str, str]:
    return new_bot(settings, database, project_id)


def update(update_id: int, chat_id: int, text: str = "hi") -> bytes:
    """A message update, deliberately not in ``json.dumps``'s spacing (the bytes must arrive verbatim)."""
    message = {"message_id": update_id, "date": 0, "chat": {"id": chat_id, "type": "private"}, "text": text}
    return b'{ "update_id" :%d,  "message": %s }' % (update_id, json.dumps(message).encode())


def post(http: httpx.Client, bot_id: str, body: Any, secret: str | None, **headers: str) -> httpx.Response:
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return http.post(f"/wh/{bot_id}", content=body, headers=headers)


def queued(rds: redis.Redis, prefix: str, bot_id: str, chat_id: int) -> list[tuple[int, bytes]]:
    """``(update_id, payload)`` of the chat's queue, head first."""
    entries: list[bytes] = rds.lrange(ChatQueueKeys(prefix).chat(f"{bot_id}:{chat_id}"), 0, -1)  # type: ignore[assignment]
    out = []
    for entry in entries:
        update_id, _, payload = entry.split(b":", 2)
        out.append((int(update_id), payload))
    return out


def depth(rds: redis.Redis, prefix: str, bot_id: str) -> int:
    return int(rds.get(ChatQueueKeys(prefix).depth(bot_id)) or 0)


def test_accepted_updates_are_queued_verbatim_in_their_chats_in_order(
    http: httpx.Client, bot: tuple[str, str], rds: redis.Redis, prefix: str
) -> None:
    bot_id, secret = bot
    bodies = [update(10, 7), update(11, -100500), update(12, 7), update(13, 7)]
    for body in bodies:
        response = post(http, bot_id, body, secret)
        assert (response.status_code, response.content) == (200, b"{}")
    assert queued(rds, prefix, bot_id, 7) == [(10, bodies[0]), (12, bodies[2]), (13, bodies[3])]
    assert queued(rds, prefix, bot_id, -100500) == [(11, bodies[1])]


def test_a_callback_query_is_queued_under_its_messages_chat(
    http: httpx.Client, bot: tuple[str, str], rds: redis.Redis, prefix: str
) -> None:
    bot_id, secret = bot
    body = json.dumps(
        {"update_id": 5, "callback_query": {"id": "q", "data": "yes", "message": {"message_id": 1, "chat": {"id": 42}}}}
    ).encode()
    assert post(http, bot_id, body, secret).status_code == 200
    assert queued(rds, prefix, bot_id, 42) == [(5, body)]


def test_a_duplicate_update_id_is_answered_200_and_queued_once(
    http: httpx.Client, bot: tuple[str, str], rds: redis.Redis, prefix: str
) -> None:
    bot_id, secret = bot
    first, retry = update(20, 8, "first"), update(20, 8, "a retry with other bytes")
    assert [post(http, bot_id, b, secret).status_code for b in (first, retry, first)] == [200, 200, 200]
    assert queued(rds, prefix, bot_id, 8) == [(20, first)]


def test_a_wrong_or_missing_secret_is_401_and_queues_nothing(
    http: httpx.Client, bot: tuple[str, str], settings: Settings, database: str, project_id: Any,
    rds: redis.Redis, prefix: str,
) -> None:  # fmt: skip
    bot_id, secret = bot
    _, other_secret = new_bot(settings, database, project_id)
    for presented in (None, "", secret[:-1], secret + "x", other_secret, secret.upper()):
        response = post(http, bot_id, update(30, 9), presented)
        assert response.status_code == 401, presented
        assert secret not in response.text
    assert queued(rds, prefix, bot_id, 9) == []


def test_an_unknown_deleted_or_malformed_bot_id_is_404(
    http: httpx.Client, settings: Settings, database: str, project_id: Any
) -> None:
    bot_id, secret = new_bot(settings, database, project_id)

    async def delete() -> None:
        conn = await connect(database)
        try:
            assert await delete_bot(conn, bot_id)
        finally:
            await conn.close()

    asyncio.run(delete())
    for target in (bot_id, "ing-never-created", "Not_A_Bot!"):
        assert post(http, target, update(40, 1), secret).status_code == 404, target


def test_a_body_over_the_cap_is_413_declared_or_streamed(
    http: httpx.Client, bot: tuple[str, str], rds: redis.Redis, prefix: str
) -> None:
    bot_id, secret = bot
    big = update(50, 3, "x" * MAX_BODY)
    declared = post(http, bot_id, big, secret)
    assert (declared.status_code, declared.json()) == (413, {"error": "body too large"})

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    streamed = post(http, bot_id, chunks(), secret)
    assert (streamed.status_code, streamed.json()) == (413, {"error": "body too large"})
    assert post(http, bot_id, update(51, 3, "x" * (MAX_BODY - 200)), secret).status_code == 200
    assert [u for u, _ in queued(rds, prefix, bot_id, 3)] == [51]


@pytest.mark.parametrize(
    "body",
    [
        b"", b"not json", b"[1, 2]", b'"update"', b"{}", b'{"update_id": "7"}', b'{"update_id": true}',
        b'{"update_id": 7.0}', b'{"update_id": -1}', b'{"update_id": 9007199254740992}', b"[" * 10_000 + b"]" * 10_000,
        b'{"update_id": 1, "message": {"chat": {"id": 1}}', b"\xff\xfe{}",
    ],
)  # fmt: skip
def test_a_malformed_body_is_400_and_queues_nothing(
    http: httpx.Client, bot: tuple[str, str], rds: redis.Redis, prefix: str, body: bytes
) -> None:
    bot_id, secret = bot
    response = post(http, bot_id, body, secret)
    assert response.status_code == 400
    assert "error" in response.json()
    assert depth(rds, prefix, bot_id) == 0


@pytest.mark.parametrize(
    "update_",
    [
        {"update_id": 60, "inline_query": {"id": "1", "from": {"id": 5}, "query": "q", "offset": ""}},
        {"update_id": 61, "poll": {"id": "p"}},
        {"update_id": 62},
    ],
)
def test_an_update_without_a_chat_is_200_and_not_queued(
    http: httpx.Client, bot: tuple[str, str], rds: redis.Redis, prefix: str, update_: dict[str, Any]
) -> None:
    bot_id, secret = bot
    response = post(http, bot_id, json.dumps(update_).encode(), secret)
    assert (response.status_code, response.content) == (200, b"{}")
    assert depth(rds, prefix, bot_id) == 0


def test_a_bot_over_its_rate_limit_gets_429_with_retry_after(
    http: httpx.Client, bot: tuple[str, str], rds: redis.Redis, prefix: str
) -> None:
    bot_id, secret = bot
    # Given the bot's current window is already full (30 s left in it)
    rds.set(rate_key(prefix, bot_id), OPTIONS.rate_limit, px=30_000)
    # When an update arrives, Then it is refused and the sender told when to come back
    response = post(http, bot_id, update(70, 4), secret)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    assert depth(rds, prefix, bot_id) == 0
    # And once the window is over, the same update is accepted
    rds.delete(rate_key(prefix, bot_id))
    assert post(http, bot_id, update(70, 4), secret).status_code == 200
    assert [u for u, _ in queued(rds, prefix, bot_id, 4)] == [70]


def test_a_bot_whose_queue_is_full_gets_429(
    http: httpx.Client, bot: tuple[str, str], rds: redis.Redis, prefix: str
) -> None:
    bot_id, secret = bot
    rds.set(ChatQueueKeys(prefix).depth(bot_id), OPTIONS.max_queue_depth)
    try:
        response = post(http, bot_id, update(80, 4), secret)
        assert (response.status_code, response.headers["Retry-After"]) == (429, str(OPTIONS.depth_retry_after_s))
        assert queued(rds, prefix, bot_id, 4) == []
    finally:
        rds.delete(ChatQueueKeys(prefix).depth(bot_id))


def test_redis_down_is_503_never_200(
    settings: Settings, broker: dramatiq.Broker, bot: tuple[str, str], prefix: str
) -> None:
    bot_id, secret = bot
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    server = ServerThread()
    try:
        server.start(build_app(dataclasses.replace(settings, redis_url=dead), broker=broker, redis_prefix=f"{prefix}:"))
        with httpx.Client(base_url=server.url, timeout=10) as client:
            response = post(client, bot_id, update(90, 2), secret)
        assert (response.status_code, response.headers["Retry-After"]) == (503, "1")
    finally:
        server.stop()


def test_the_standin_delivers_with_the_secret_and_the_update_is_queued(
    standin: BotApiStandIn, base_url: str, settings: Settings, database: str, project_id: Any,
    rds: redis.Redis, prefix: str,
) -> None:  # fmt: skip
    # Given a bot whose webhook is registered with the stand-in, with its secret
    tg = standin.register()
    bot_id, secret = new_bot(settings, database, project_id)
    set_webhook = {"url": f"{base_url}/wh/{bot_id}", "secret_token": secret}
    assert httpx.post(f"{standin.url}/bot{tg.token}/setWebhook", json=set_webhook).json()["ok"]
    # When the user writes
    delivery = standin.send_update(tg, user_message(555, "hello"))
    # Then Telegram's first attempt is acknowledged and the exact update is queued
    assert (delivery.delivered, delivery.attempts) == (True, [200])
    [(update_id, payload)] = queued(rds, prefix, bot_id, 555)
    assert update_id == delivery.update["update_id"]
    assert json.loads(payload) == delivery.update


def test_the_standin_with_a_wrong_secret_is_refused_every_time(
    standin: BotApiStandIn, base_url: str, bot: tuple[str, str], rds: redis.Redis, prefix: str
) -> None:
    tg = standin.register()
    bot_id, _ = bot
    set_webhook = {"url": f"{base_url}/wh/{bot_id}", "secret_token": "wrong-secret"}
    assert httpx.post(f"{standin.url}/bot{tg.token}/setWebhook", json=set_webhook).json()["ok"]
    delivery = standin.send_update(tg, user_message(556, "hello"))
    assert not delivery.delivered
    assert set(delivery.attempts) == {401}
    assert depth(rds, prefix, bot_id) == 0


def test_concurrent_posts_are_each_queued_once_in_per_chat_order(
    base_url: str, bot: tuple[str, str], rds: redis.Redis, prefix: str
) -> None:
    bot_id, secret = bot
    chats = {chat: [1000 + chat * 100 + i for i in range(20)] for chat in range(1, 11)}

    async def one_chat(client: httpx.AsyncClient, chat: int) -> list[int]:
        statuses = []
        for update_id in chats[chat]:
            # each update is posted twice at once, as a Telegram retry racing the original would be
            pair = [
                client.post(f"/wh/{bot_id}", content=update(update_id, chat), headers={SECRET_HEADER: secret})
                for _ in range(2)
            ]
            statuses += [r.status_code for r in await asyncio.gather(*pair)]
        return statuses

    async def everything() -> list[list[int]]:
        limits = httpx.Limits(max_connections=40)
        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
            return await asyncio.gather(*(one_chat(client, chat) for chat in chats))

    results = asyncio.run(everything())
    assert all(status == 200 for statuses in results for status in statuses)
    for chat, update_ids in chats.items():
        assert [u for u, _ in queued(rds, prefix, bot_id, chat)] == update_ids
    assert depth(rds, prefix, bot_id) == 200


def test_neither_the_secret_nor_the_body_is_logged(
    http: httpx.Client, bot: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    bot_id, secret = bot
    caplog.set_level(logging.DEBUG, logger="botkiln.ingress")
    marker = f"marker-{secrets.token_hex(4)}"
    post(http, bot_id, update(95, 6, marker), secret)
    post(http, bot_id, update(96, 6, marker), secret + "x")
    post(http, bot_id, f"not json {marker}".encode(), secret)
    post(http, bot_id, json.dumps({"update_id": 97, "inline_query": {"query": marker}}).encode(), secret)
    assert caplog.records  # the 401 and the 400 were logged
    assert secret not in caplog.text
    assert marker not in caplog.text


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_secret_cache_forgets_a_deleted_bot_within_its_ttl() -> None:
    # Given a cache in front of a bot table, on a clock the test moves
    table: dict[str, str] = {"b": "s3cret"}
    loads: list[str] = []

    async def load(bot_id: str) -> str | None:
        loads.append(bot_id)
        await asyncio.sleep(0)
        return table.get(bot_id)

    clock = _Clock()
    cache = SecretCache(load, ttl_s=5.0, size=2, clock=clock)

    async def scenario() -> None:
        # concurrent misses share one read
        first = await asyncio.gather(*(cache.get("b") for _ in range(20)))
        assert len(set(first)) == 1 and first[0] is not None and loads == ["b"]
        # When the bot is deleted, Then the cached secret serves until the TTL, and not a moment longer
        del table["b"]
        clock.now += 4.99
        assert await cache.get("b") == first[0]
        clock.now += 0.01
        assert await cache.get("b") is None
        assert loads == ["b", "b"]
        # the size bound evicts the oldest
        await cache.get("x")
        await cache.get("y")
        await cache.get("b")
        assert loads == ["b", "b", "x", "y", "b"]

    asyncio.run(scenario())
