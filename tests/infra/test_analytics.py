"""Analytics against the real ClickHouse engine: embedded (``chdb://``) and over HTTP (clickhouse-connect → chdb front).

chdb hosts one engine per process, so the whole session shares one data directory
(``analytics_dir``, the same one ``tests/graphql/test_analytics.py`` uses) and every
test writes under bot ids of its own. The HTTP front runs in this process on that
same engine.

The traffic is real engine output: the reference interpreter runs a conversation
(``Shop``) and a stand-in executor turns each update into rows the way the runtime
does — the engine's telemetry, one ``message_sent`` per sendMessage with a scripted
latency (or ``send_failed``), ``executor_error`` for a crash, and ``update_processed``.
"""

from __future__ import annotations

import gzip
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import lz4.frame  # type: ignore[import-untyped]
import pytest

from botkiln.infra.analytics import (
    CREATE_TABLE,
    DayStats,
    EventRow,
    FunnelStage,
    TypeCount,
    build_analytics,
    chat_hash,
    days_window,
    host_row,
    rows_from_telemetry,
    update_ref,
)
from botkiln.infra.analytics_clickhouse import ClickHouseAnalytics, connect
from botkiln.infra.chdb_http import ChdbHttpServer, decode_lz4_frames
from botkiln.infra.ports import AnalyticsRefused, AnalyticsSink, AnalyticsUnavailable
from botkiln.infra.settings import Settings, SettingsError
from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.engine import Interpreter
from botkiln.interpreter.validation import validate_spec
from tests.conftest import minimal_spec

CHAT_KEY = bytes(range(32))
DAY1, DAY2, DAY3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)
CHATS = {n: 7_345_981_000 + n for n in range(1, 7)}
"""Telegram-sized chat ids (the short names 1..6 below stand for these)."""


@pytest.fixture(scope="session")
def analytics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's one chdb data directory."""
    path = tmp_path_factory.getbasetemp() / "analytics-chdb"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def front(analytics_dir: Path) -> Iterator[ChdbHttpServer]:
    """The ClickHouse HTTP front over the session's engine."""
    with ChdbHttpServer(analytics_dir) as made:
        yield made


@pytest.fixture
def sink(request: pytest.FixtureRequest, analytics_dir: Path, front: ChdbHttpServer) -> Iterator[ClickHouseAnalytics]:
    """A sink on the transport the test is parametrized with: ``chdb`` (embedded) or ``http`` (the front)."""
    url = f"chdb://{analytics_dir}" if request.param == "chdb" else front.url
    made = ClickHouseAnalytics(url, flush_interval_s=0.05, min_backoff_s=0.02, max_backoff_s=0.2)
    yield made
    made.close()


def new_bot() -> str:
    return f"a{secrets.token_hex(5)}"


def shop_spec(bot_id: str) -> dict[str, Any]:
    """The minimal spec (/start: hello → name → check → bye) plus /quote: fetch (apiCall) → show."""
    spec = minimal_spec()
    spec["meta"]["botId"] = bot_id
    spec["commands"].append({"command": "quote", "flow": "quote"})
    fetch = {"id": "fetch", "type": "apiCall", "method": "GET", "url": "https://api.example.com/quote", "retries": 0}
    spec["flows"].append(
        {"id": "quote", "steps": [{**fetch, "map": {"quote": "/q"}}, {"id": "show", "type": "reply", "text": "q"}]}
    )
    spec["state"]["vars"]["quote"] = {"type": "string"}
    spec["localization"]["strings"]["q"] = {"en": "Quote: {{state.quote}}"}
    spec["security"] = {"allowedDomains": ["api.example.com"]}
    assert validate_spec(spec) == []
    return spec


@dataclass
class Shop:
    """The reference interpreter for ``shop_spec`` plus a stand-in executor and sender emitting rows."""

    bot_id: str
    rows: list[EventRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        spec = shop_spec(self.bot_id)
        quotes = {"GET https://api.example.com/quote": [{"status": 200, "body": {"q": "hi"}}, {"status": 503}]}
        self.talk = Conversation(Interpreter(spec).step, spec, FixtureApi.for_spec(quotes, spec))

    def update(
        self, text: str, chat: int, *, sent: tuple[float, ...] = (), failed: int = 0, crash: bool = False,
        wait: int = 0,
    ) -> None:  # fmt: skip
        """One update of chat ``chat``: its telemetry, then ``sent`` latencies, ``failed`` sends, or a crash."""
        _, result = self.talk.send({"text": text, "chat": CHATS[chat], "wait": wait})
        ref = update_ref(
            CHAT_KEY, bot_id=self.bot_id, rev_hash="r" * 64, chat_id=CHATS[chat], update_id=self.talk.update_id,
            now_ms=self.talk.now,
        )  # fmt: skip
        if crash:
            self.rows.append(host_row(ref, "executor_error", error="InternalError: interrupted"))
        else:
            messages = [a for a in result.actions if a["method"] == "sendMessage"]
            assert len(messages) == len(sent) + failed, (text, chat, len(messages))
            self.rows += rows_from_telemetry(ref, result.events)
            self.rows += [host_row(ref, "message_sent", latency_ms=ms, status=200) for ms in sent]
            refused = host_row(ref, "send_failed", status=403, error="Forbidden: bot was blocked")
            self.rows += [refused] * failed
        self.rows.append(host_row(ref, "update_processed", latency_ms=sum(sent)))


def two_days(bot_id: str) -> Shop:
    """Ten updates over 2026-01-01 (1–6) and 2026-01-02 (7–10)."""
    shop = Shop(bot_id)
    # Day 1: chat 1 completes /start; chat 2 fails validation; chat 3's quote works, chat 4's gets a 503
    shop.update("/start", 1, sent=(120, 80))
    shop.update("Alice", 1, sent=(45,))
    shop.update("/start", 2, sent=(300, 95))
    shop.update("A", 2, sent=(60,))
    shop.update("/quote", 3, sent=(1500,))
    shop.update("/quote", 4)
    # Day 2: chat 2 completes; chat 5's second message is refused; chat 6's update crashes; chat 3 gets a 503
    shop.update("Bob", 2, sent=(40,), wait=86_400)
    shop.update("/start", 5, sent=(250,), failed=1)
    shop.update("hi", 6, crash=True)
    shop.update("/quote", 3)
    return shop


def raw_rows(url: str, bot_id: str) -> list[dict[str, Any]]:
    client = connect(url)
    try:
        result = client.query("SELECT * FROM botkiln_events WHERE bot_id = {b:String}", parameters={"b": bot_id})
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    finally:
        client.close()


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("sink", ["chdb", "http"], indirect=True)
class TestAnalyticsSink:
    """The same scenario and figures through the embedded engine and through HTTP."""

    def test_daily_figures_are_exact(self, sink: ClickHouseAnalytics) -> None:
        bot_id = new_bot()
        sink.record(two_days(bot_id).rows)
        sink.record(Shop(new_bot()).rows + two_days(new_bot()).rows)  # other bots' traffic on the same days
        assert sink.flush() and sink.pending == 0

        days = sink.daily(bot_id, DAY1, DAY3)

        # Day 1: 6 updates, one failed (chat 4's api_error + flow_aborted count once);
        # latencies sorted 45 60 80 95 120 300 1500: p50 = index 3, p95 = index floor(0.95·7) = 6
        # Day 2: 4 updates, 3 failed (send_failed, executor_error, api_error); latencies 40 250
        # Day 3: nothing happened
        assert days == [
            DayStats(DAY1, updates=6, messages_sent=7, errors=1, error_rate=1 / 6, p50_latency_ms=95.0,
                     p95_latency_ms=1500.0),
            DayStats(DAY2, updates=4, messages_sent=2, errors=3, error_rate=0.75, p50_latency_ms=250.0,
                     p95_latency_ms=250.0),
            DayStats(DAY3, updates=0, messages_sent=0, errors=0, error_rate=0.0, p50_latency_ms=None,
                     p95_latency_ms=None),
        ]  # fmt: skip
        assert sink.daily(bot_id, DAY2, DAY2) == days[1:2]

    def test_counts_per_day_and_type_are_exact(self, sink: ClickHouseAnalytics) -> None:
        bot_id = new_bot()
        sink.record(two_days(bot_id).rows)
        assert sink.flush()

        counts = sink.event_counts(bot_id, DAY1, DAY3)

        assert [c for c in counts if c.day == DAY1] == [
            TypeCount(DAY1, t, n)
            for t, n in [
                ("answer_received", 2), ("api_call", 2), ("api_error", 1), ("api_ok", 1), ("awaiting_answer", 3),
                ("command", 4), ("flow_aborted", 1), ("flow_completed", 2), ("flow_started", 4),
                ("message_sent", 7), ("step_completed", 8), ("update_processed", 6), ("validation_failed", 1),
            ]
        ]  # fmt: skip
        assert {c.type: c.count for c in counts if c.day == DAY2} == {
            "answer_received": 1, "api_call": 1, "api_error": 1, "awaiting_answer": 1, "command": 2,
            "executor_error": 1, "flow_aborted": 1, "flow_completed": 1, "flow_started": 2, "message_sent": 2,
            "send_failed": 1, "step_completed": 4, "update_processed": 4,
        }  # fmt: skip
        assert {c.day for c in counts} == {DAY1, DAY2}

    def test_funnels_count_distinct_chats_per_stage_in_flow_order(self, sink: ClickHouseAnalytics) -> None:
        bot_id = new_bot()
        sink.record(two_days(bot_id).rows)
        assert sink.flush()

        def funnel(flow: str, since: date, until: date, steps: tuple[str, ...]) -> list[tuple[str, int]]:
            stages = sink.funnel(bot_id, flow, since, until, steps)
            return [(s.step or s.stage, s.chats) for s in stages]

        # main: chats 1, 2 and 5 started; 1 and 2 (over two days) answered, passed the check and finished
        main = ("hello", "name", "check", "bye")
        assert funnel("main", DAY1, DAY3, main) == [
            ("started", 3), ("hello", 3), ("name", 2), ("check", 2), ("bye", 2), ("completed", 2)
        ]  # fmt: skip
        assert funnel("main", DAY2, DAY2, main) == [
            ("started", 1), ("hello", 1), ("name", 1), ("check", 1), ("bye", 1), ("completed", 1)
        ]  # fmt: skip
        # quote: chats 3 and 4 started (3 twice); only chat 3's first call got through
        assert funnel("quote", DAY1, DAY3, ("fetch", "show")) == [
            ("started", 2), ("fetch", 1), ("show", 1), ("completed", 1)
        ]  # fmt: skip
        # Without the flow's order, steps seen come most-reached first (ties by id); listed steps never seen are 0
        assert funnel("main", DAY1, DAY3, ()) == [
            ("started", 3), ("hello", 3), ("bye", 2), ("check", 2), ("name", 2), ("completed", 2)
        ]  # fmt: skip
        assert funnel("nowhere", DAY1, DAY3, ("a",)) == [("started", 0), ("a", 0), ("completed", 0)]
        assert sink.funnel(bot_id, "quote", DAY1, DAY1)[0] == FunnelStage("started", None, 2)

    def test_raw_chat_ids_are_never_stored(self, sink: ClickHouseAnalytics) -> None:
        bot_id = new_bot()
        sink.record(two_days(bot_id).rows)
        assert sink.flush()

        rows = raw_rows(sink.url, bot_id)

        assert len(rows) == 64
        stored = " ".join(str(value) for row in rows for value in row.values())
        for chat_id in CHATS.values():
            assert str(chat_id) not in stored
        assert {row["chat_hash"] for row in rows} == {chat_hash(CHAT_KEY, bot_id, c) for c in CHATS.values()}
        assert {row["update_id"] for row in rows} == set(range(1, 11))
        assert {row["ts"].date() for row in rows} == {DAY1, DAY2}

    def test_rows_keep_every_column(self, sink: ClickHouseAnalytics) -> None:
        bot_id = new_bot()
        ref = update_ref(CHAT_KEY, bot_id=bot_id, rev_hash="f" * 64, chat_id=5, update_id=77, now_ms=1_767_312_000_123)
        sent = host_row(ref, "message_sent", latency_ms=12.5, status=200)
        telemetry: list[dict[str, Any]] = [
            {"type": "api_error", "flow": "quote", "step": "fetch", "error": "http", "status": 503},
            {"type": "intent_matched", "intent": "greeting"},
            {"type": "limit_reached", "limit": "apiCalls"},
        ]
        sink.record([*rows_from_telemetry(ref, telemetry), sent])
        assert sink.flush()

        rows = sorted(raw_rows(sink.url, bot_id), key=lambda r: r["type"])

        assert [(r["type"], r["flow"], r["step"], r["error"], r["status"], r["intent"], r["reason"]) for r in rows] == [
            ("api_error", "quote", "fetch", "http", 503, "", ""),
            ("intent_matched", "", "", "", None, "greeting", ""),
            ("limit_reached", "", "", "", None, "", "apiCalls"),
            ("message_sent", "", "", "", 200, "", ""),
        ]
        assert rows[3]["latency_ms"] == 12.5 and rows[0]["latency_ms"] is None
        assert {r["ts"].replace(tzinfo=UTC) for r in rows} == {datetime(2026, 1, 2, 0, 0, 0, 123_000, UTC)}
        assert {(r["rev_hash"], r["update_id"]) for r in rows} == {("f" * 64, 77)}

    def test_a_full_batch_is_written_without_waiting_for_the_interval(self, sink: ClickHouseAnalytics) -> None:
        bot_id = new_bot()
        batched = ClickHouseAnalytics(sink.url, batch_size=10, flush_interval_s=60)
        try:
            shop = Shop(bot_id)
            shop.update("/start", 1, sent=(10, 20))  # 7 rows: under a batch
            batched.record(shop.rows)
            time.sleep(0.2)
            assert batched.pending == 7
            shop.update("Alice", 1, sent=(30,))  # 7 more: a batch is full, everything goes
            batched.record(shop.rows[7:])
            wait_until(lambda: batched.pending == 0)
        finally:
            batched.close()
        assert sum(c.count for c in sink.event_counts(bot_id, DAY1, DAY1)) == 14

    def test_rows_are_written_every_interval(self, sink: ClickHouseAnalytics) -> None:
        bot_id = new_bot()
        shop = Shop(bot_id)
        shop.update("/start", 1, sent=(10, 20))
        sink.record(shop.rows)
        wait_until(lambda: sink.pending == 0)
        assert [s.updates for s in sink.daily(bot_id, DAY1, DAY1)] == [1]


class TestOutage:
    """Writes through HTTP survive the server going away: nothing is lost within the bound, the oldest go first."""

    @pytest.fixture
    def own_front(self, analytics_dir: Path) -> Iterator[ChdbHttpServer]:
        with ChdbHttpServer(analytics_dir) as made:
            yield made

    def test_rows_recorded_during_an_outage_are_written_when_the_server_is_back(
        self, own_front: ChdbHttpServer
    ) -> None:
        bot_id = new_bot()
        sink = ClickHouseAnalytics(own_front.url, batch_size=50, max_buffer=200, flush_interval_s=0.02,
                                   min_backoff_s=0.01, max_backoff_s=0.05)  # fmt: skip
        try:
            # Given a working connection
            shop = two_days(bot_id)
            sink.record(shop.rows[:10])
            assert sink.flush()
            # When the server goes away, recording neither blocks nor fails, and rows wait
            own_front.stop()
            started = time.monotonic()
            sink.record(shop.rows[10:])
            assert time.monotonic() - started < 0.5
            assert sink.flush() is False
            time.sleep(0.2)  # the writer keeps retrying meanwhile
            assert (sink.pending, sink.dropped) == (54, 0)
            with pytest.raises(AnalyticsUnavailable, match="unreachable"):
                sink.daily(bot_id, DAY1, DAY3)
            # Then, once it is back, the writer catches up by itself and nothing is lost
            own_front.start()
            wait_until(lambda: sink.pending == 0)
            assert sink.dropped == 0
            assert [d.updates for d in sink.daily(bot_id, DAY1, DAY3)] == [6, 4, 0]
            assert sum(c.count for c in sink.event_counts(bot_id, DAY1, DAY3)) == 64
        finally:
            sink.close()

    def test_a_full_buffer_drops_the_oldest_rows_and_counts_them(self, own_front: ChdbHttpServer) -> None:
        bot_id = new_bot()
        sink = ClickHouseAnalytics(own_front.url, batch_size=20, max_buffer=100, flush_interval_s=0.02,
                                   min_backoff_s=0.01, max_backoff_s=0.05)  # fmt: skip
        try:
            assert sink.flush()
            own_front.stop()
            at = datetime(2026, 1, 1, tzinfo=UTC)
            for n in range(1, 251):
                sink.record([EventRow(bot_id, "r", 1, n, at, "update_processed")])
            assert (sink.pending, sink.dropped) == (100, 150)
            own_front.start()
            assert sink.flush()
        finally:
            sink.close()
        assert sorted(r["update_id"] for r in raw_rows(own_front.url, bot_id)) == list(range(151, 251))

    def test_close_writes_what_is_left(self, analytics_dir: Path) -> None:
        bot_id = new_bot()
        sink = ClickHouseAnalytics(f"chdb://{analytics_dir}", flush_interval_s=60)
        sink.record(two_days(bot_id).rows)
        sink.close()
        assert len(raw_rows(f"chdb://{analytics_dir}", bot_id)) == 64
        with pytest.raises(RuntimeError, match="after close"):
            sink.record(two_days(bot_id).rows)

    def test_an_unreachable_server_is_unavailable_and_a_bad_statement_refused(self, front: ChdbHttpServer) -> None:
        sink = ClickHouseAnalytics("http://127.0.0.1:9")
        with pytest.raises(AnalyticsUnavailable, match=r"^analytics store at http://127.0.0.1:9 unreachable"):
            sink.event_counts("x", DAY1, DAY1)
        sink.close()
        client = connect(front.url)
        try:
            with pytest.raises(Exception) as raised:
                client.query("SELECT nope FROM botkiln_events")
        finally:
            client.close()
        from botkiln.infra.analytics_clickhouse import translate_error

        refused = translate_error(raised.value, "here")
        assert isinstance(refused, AnalyticsRefused) and refused.code == 47


class TestChdbHttpFront:
    """The part of ClickHouse's HTTP interface the front speaks."""

    def post(self, front: ChdbHttpServer, body: bytes, query: str = "", headers: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(f"{front.url}/?{query}", data=body, headers=headers or {}, method="POST")
        return urllib.request.urlopen(request, timeout=10)

    def test_ping_answers_ok(self, front: ChdbHttpServer) -> None:
        with urllib.request.urlopen(f"{front.url}/ping", timeout=10) as answer:
            assert (answer.status, answer.read()) == (200, b"Ok.\n")

    def test_server_side_parameters_and_formats(self, front: ChdbHttpServer) -> None:
        with self.post(front, b"SELECT {x:UInt8} + 1 AS y", "param_x=41") as answer:
            assert answer.read() == b"42\n"
            assert answer.headers["X-ClickHouse-Format"] == "TabSeparated"
        with self.post(front, b"SELECT 1 AS a FORMAT JSONEachRow") as answer:
            assert answer.read() == b'{"a":1}\n'

    def test_errors_carry_clickhouse_code_and_text(self, front: ChdbHttpServer) -> None:
        with pytest.raises(urllib.error.HTTPError) as raised:
            self.post(front, b"SELECT * FROM no_such_table")
        assert raised.value.code == 500
        assert raised.value.headers["X-ClickHouse-Exception-Code"] == "60"
        assert raised.value.read().startswith(b"Code: 60. DB::Exception: Unknown table")
        raised.value.close()

    def test_an_lz4_insert_body_is_decoded_frame_by_frame(self, front: ChdbHttpServer) -> None:
        table = f"t_{secrets.token_hex(4)}"
        self.post(front, f"CREATE TABLE {table} (a UInt32) ENGINE = MergeTree ORDER BY a".encode()).close()
        body = lz4.frame.compress(b"1\n2\n") + lz4.frame.compress(b"3\n") + lz4.frame.compress(b"4\n")
        self.post(front, body, f"query=INSERT+INTO+{table}+FORMAT+TSV", {"Content-Encoding": "lz4"}).close()
        with self.post(front, f"SELECT sum(a), count() FROM {table}".encode()) as answer:
            assert answer.read() == b"10\t4\n"
        assert decode_lz4_frames(body) == b"1\n2\n3\n4\n"
        with pytest.raises(RuntimeError, match="truncated"):
            decode_lz4_frames(body[:-3])

    def test_gzip_bodies_are_decoded_and_unknown_encodings_refused(self, front: ChdbHttpServer) -> None:
        with self.post(front, gzip.compress(b"SELECT 6 * 7"), headers={"Content-Encoding": "gzip"}) as answer:
            assert answer.read() == b"42\n"
        with pytest.raises(urllib.error.HTTPError) as raised:
            self.post(front, b"SELECT 1", headers={"Content-Encoding": "snappy"})
        assert raised.value.headers["X-ClickHouse-Exception-Code"] == "271"
        raised.value.close()

    def test_clickhouse_connect_sends_large_inserts_as_several_lz4_frames(self, front: ChdbHttpServer) -> None:
        table = f"t_{secrets.token_hex(4)}"
        client = connect(front.url)
        try:
            client.command(f"CREATE TABLE {table} (a Int64, s String) ENGINE = MergeTree ORDER BY a")
            client.insert(table, [[n, "x" * 40] for n in range(200_000)], column_names=["a", "s"])
            assert client.query(f"SELECT count(), sum(a) FROM {table}").result_rows == [(200_000, 19_999_900_000)]
        finally:
            client.close()

    def test_concurrent_clients_share_the_engine(self, front: ChdbHttpServer) -> None:
        results: list[int] = []

        def ask() -> None:
            client = connect(front.url)
            try:
                results.append(client.query("SELECT count() FROM system.one").result_rows[0][0])
            finally:
                client.close()

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [1, 1, 1, 1]


def test_the_adapter_implements_the_protocol(front: ChdbHttpServer, analytics_dir: Path) -> None:
    sinks: list[AnalyticsSink] = [ClickHouseAnalytics(front.url), ClickHouseAnalytics(f"chdb://{analytics_dir}")]
    assert [s.url for s in sinks if isinstance(s, ClickHouseAnalytics)] == [front.url, f"chdb://{analytics_dir}"]
    members = [n for n in vars(AnalyticsSink) if not n.startswith("_")]
    assert len(members) <= 6, members
    for sink in sinks:
        sink.close()


def test_build_analytics_follows_the_settings() -> None:
    made = build_analytics(Settings(analytics_url="http://127.0.0.1:8123/default"))
    assert isinstance(made, ClickHouseAnalytics) and made.url == "http://127.0.0.1:8123/default"
    made.close()


def test_the_schema_keeps_no_chat_id_column() -> None:
    assert "chat_hash UInt64" in CREATE_TABLE.replace("`", "")
    assert "chat_id" not in CREATE_TABLE
    assert "ORDER BY (bot_id, ts)" in CREATE_TABLE


def test_chat_hashes_are_keyed_and_per_bot() -> None:
    assert chat_hash(CHAT_KEY, "a", 42) == chat_hash(CHAT_KEY, "a", 42)
    assert chat_hash(CHAT_KEY, "a", 42) != chat_hash(CHAT_KEY, "b", 42)
    assert chat_hash(CHAT_KEY, "a", 42) != chat_hash(bytes(32), "a", 42)
    assert chat_hash(CHAT_KEY, "a", None) == 0
    assert 0 < chat_hash(CHAT_KEY, "a", 42) < 2**64


def test_the_window_counts_days_back_from_today() -> None:
    assert days_window(1, date(2026, 3, 1)) == (date(2026, 3, 1), date(2026, 3, 1))
    assert days_window(14, date(2026, 3, 1)) == (date(2026, 2, 16), date(2026, 3, 1))


def test_analytics_settings_come_from_the_environment() -> None:
    assert Settings.from_env({}).analytics_url == "chdb://./var/analytics"
    for url in ("chdb:///srv/analytics", "http://ch:8123/botkiln", "https://user:pw@ch.example.com:8443"):
        assert Settings.from_env({"BOTKILN_ANALYTICS_URL": url}).analytics_url == url
    for bad in ("ftp://x", "chdb://", "http://ch:8123/a/b"):
        with pytest.raises(SettingsError, match="BOTKILN_ANALYTICS_URL"):
            Settings.from_env({"BOTKILN_ANALYTICS_URL": bad})


def test_the_chat_hash_key_derives_from_the_first_secret_key() -> None:
    from botkiln.infra.crypto import generate_secret_key

    first, second = generate_secret_key(), generate_secret_key()
    key = Settings(secret_key=f"{first},{second}").analytics_chat_key()
    assert len(key) == 32 and key == Settings(secret_key=first).analytics_chat_key()
    assert key != Settings(secret_key=second).analytics_chat_key()
    with pytest.raises(SettingsError, match="BOTKILN_SECRET_KEY is missing"):
        Settings().analytics_chat_key()
