"""Analytics: the event row, the one table, and the summary queries — the same SQL on ClickHouse and chdb.

Every telemetry item an engine emits for an update (docs/botspec.md §12) becomes one
row of ``botkiln_events``, and the host adds its own (``HOST_EVENT_TYPES``):

| type | emitted by the executor / sender | fields |
|---|---|---|
| ``update_processed`` | once per update it took (success or failure) | ``latency_ms``: webhook → done |
| ``message_sent`` | once per Bot API send that succeeded | ``latency_ms``: webhook → sent, ``status`` |
| ``send_failed`` | a send given up (``dlq:out``) | ``error``, ``status`` |
| ``executor_error`` | the bot's code failed (``dlq:in``) | ``error`` |

Engine fields map to columns by name (``stepType`` → ``step_type``); ``via``
(``flow_started``) and ``limit`` (``limit_reached``) go to ``reason``. Rows carry
``chat_hash``, a keyed hash of the bot and chat ids (``Settings.analytics_chat_key``),
never the chat id itself; message texts and variable values never reach telemetry.

Summaries, for one bot and a range of UTC days (inclusive):

- ``DayStats`` per day: ``updates`` (distinct update ids with ``update_processed``),
  ``messages_sent``, ``errors`` (distinct updates with an ``ERROR_TYPES`` row),
  ``error_rate = errors / updates`` (0 without updates), and p50/p95 of
  ``message_sent`` latency as exact nearest-rank quantiles (ClickHouse's
  ``quantilesExact``: the sorted value at 0-based index ``floor(q·n)``), None
  without messages; days without events appear with zeros;
- ``TypeCount`` per day and type;
- ``FunnelStage`` for one flow: chats that started it, then per step the chats that
  completed it, in the flow's order when given (else most-reached first), then the
  chats that completed the flow.

Delivery is at least once (a retried insert may repeat a batch), so counts of
distinct updates and chats are the robust figures.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from botkiln.infra.ports import AnalyticsSink
    from botkiln.infra.settings import Settings

TABLE = "botkiln_events"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("bot_id", "LowCardinality(String)"),
    ("rev_hash", "LowCardinality(String)"),
    ("chat_hash", "UInt64"),
    ("update_id", "Int64"),
    ("ts", "DateTime64(3, 'UTC')"),
    ("type", "LowCardinality(String)"),
    ("flow", "LowCardinality(String)"),
    ("step", "LowCardinality(String)"),
    ("step_type", "LowCardinality(String)"),
    ("reason", "LowCardinality(String)"),
    ("error", "String"),
    ("status", "Nullable(Int32)"),
    ("latency_ms", "Nullable(Float64)"),
    ("intent", "LowCardinality(String)"),
    ("command", "LowCardinality(String)"),
)
"""The table's columns and types, in ``EventRow`` order."""

COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
COLUMN_TYPES = tuple(type_ for _, type_ in COLUMNS)

CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (\n"
    + ",\n".join(f"    `{name}` {type_}" for name, type_ in COLUMNS)
    + "\n) ENGINE = MergeTree\nPARTITION BY toYYYYMM(ts)\nORDER BY (bot_id, ts)"
)

HOST_EVENT_TYPES = ("update_processed", "message_sent", "send_failed", "executor_error")
ERROR_TYPES = ("api_error", "flow_aborted", "executor_error", "send_failed")

_WHERE = f"FROM {TABLE} WHERE bot_id = {{bot_id:String}} AND toDate(ts) BETWEEN {{since:Date}} AND {{until:Date}}"
_ERRORS = ", ".join(f"'{t}'" for t in ERROR_TYPES)

DAILY_SQL = f"""
SELECT
    toDate(ts) AS day,
    uniqExactIf(update_id, type = 'update_processed') AS updates,
    countIf(type = 'message_sent') AS messages_sent,
    uniqExactIf(update_id, type IN ({_ERRORS})) AS errors,
    countIf(type = 'message_sent' AND latency_ms IS NOT NULL) AS timed,
    quantilesExactIf(0.5, 0.95)(latency_ms, type = 'message_sent' AND latency_ms IS NOT NULL) AS latency
{_WHERE}
GROUP BY day
ORDER BY day
"""

COUNTS_SQL = f"""
SELECT toDate(ts) AS day, type, count() AS n
{_WHERE}
GROUP BY day, type
ORDER BY day, type
"""

FUNNEL_SQL = f"""
SELECT type, step, uniqExact(chat_hash) AS chats
{_WHERE} AND flow = {{flow:String}} AND type IN ('flow_started', 'step_completed', 'flow_completed')
GROUP BY type, step
"""


@dataclass(frozen=True)
class EventRow:
    """One row of ``botkiln_events``."""

    bot_id: str
    rev_hash: str
    chat_hash: int
    update_id: int
    ts: datetime
    type: str
    flow: str = ""
    step: str = ""
    step_type: str = ""
    reason: str = ""
    error: str = ""
    status: int | None = None
    latency_ms: float | None = None
    intent: str = ""
    command: str = ""

    def values(self) -> tuple[Any, ...]:
        """The row's values in ``COLUMN_NAMES`` order."""
        return astuple(self)


@dataclass(frozen=True)
class UpdateRef:
    """Where an update's rows come from: a bot, the revision that ran, a hashed chat, the update."""

    bot_id: str
    rev_hash: str
    chat_hash: int
    update_id: int
    ts: datetime


def chat_hash(key: bytes, bot_id: str, chat_id: int | None) -> int:
    """A keyed 64-bit hash of the chat (0 for none): distinct per bot, not reversible without ``key``."""
    if chat_id is None:
        return 0
    digest = hmac.new(key, f"{bot_id}\x00{chat_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


def update_ref(
    key: bytes, *, bot_id: str, rev_hash: str, chat_id: int | None, update_id: int, now_ms: int
) -> UpdateRef:
    """The ``UpdateRef`` of an update handled at ``now_ms`` (the step context's ``now``)."""
    ts = datetime.fromtimestamp(now_ms / 1000, UTC)
    return UpdateRef(bot_id, rev_hash, chat_hash(key, bot_id, chat_id), update_id, ts)


def _text(item: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = item.get(name)
        if value is not None:
            return str(value)
    return ""


def rows_from_telemetry(ref: UpdateRef, events: Iterable[Mapping[str, Any]]) -> list[EventRow]:
    """The rows of an update's telemetry items (engine → host, docs/botspec.md §12)."""
    rows = []
    for item in events:
        status = item.get("status")
        rows.append(
            EventRow(
                ref.bot_id,
                ref.rev_hash,
                ref.chat_hash,
                ref.update_id,
                ref.ts,
                str(item["type"]),
                flow=_text(item, "flow"),
                step=_text(item, "step"),
                step_type=_text(item, "stepType"),
                reason=_text(item, "reason", "via", "limit"),
                error=_text(item, "error"),
                status=status if isinstance(status, int) and not isinstance(status, bool) else None,
                intent=_text(item, "intent"),
                command=_text(item, "command"),
            )
        )
    return rows


def host_row(
    ref: UpdateRef,
    type: Literal["update_processed", "message_sent", "send_failed", "executor_error"],
    *,
    latency_ms: float | None = None,
    status: int | None = None,
    error: str = "",
    at: datetime | None = None,
) -> EventRow:
    """A host-side row (``HOST_EVENT_TYPES``), at ``at`` (default: the update's time)."""
    ts = ref.ts if at is None else at
    return EventRow(
        ref.bot_id, ref.rev_hash, ref.chat_hash, ref.update_id, ts, type, error=error, status=status,
        latency_ms=latency_ms,
    )  # fmt: skip


@dataclass(frozen=True)
class DayStats:
    """One UTC day of a bot's traffic."""

    day: date
    updates: int
    messages_sent: int
    errors: int
    error_rate: float
    p50_latency_ms: float | None
    p95_latency_ms: float | None


@dataclass(frozen=True)
class TypeCount:
    """How many events of one type a bot emitted on one UTC day."""

    day: date
    type: str
    count: int


@dataclass(frozen=True)
class FunnelStage:
    """How many distinct chats reached one stage of a flow."""

    stage: Literal["started", "step", "completed"]
    step: str | None
    chats: int


def days_window(days: int, today: date | None = None) -> tuple[date, date]:
    """The inclusive range of the last ``days`` UTC days ending today."""
    until = today if today is not None else datetime.now(UTC).date()
    return until - timedelta(days=days - 1), until


def query_parameters(bot_id: str, since: date, until: date, **extra: str) -> dict[str, Any]:
    """The server-side parameters of the summary queries."""
    return {"bot_id": bot_id, "since": since, "until": until, **extra}


def _latency(value: float, timed: int) -> float | None:
    return None if timed == 0 or math.isnan(value) else float(value)


def day_stats(rows: Iterable[Sequence[Any]], since: date, until: date) -> list[DayStats]:
    """``DAILY_SQL``'s rows as ``DayStats``, one per day from ``since`` to ``until`` (missing days as zeros)."""
    found: dict[date, DayStats] = {}
    for day, updates, sent, errors, timed, latency in rows:
        rate = errors / updates if updates else 0.0
        found[day] = DayStats(
            day, int(updates), int(sent), int(errors), rate, _latency(latency[0], timed), _latency(latency[1], timed)
        )
    span = (until - since).days + 1
    days = (since + timedelta(days=n) for n in range(span))
    return [found.get(d) or DayStats(d, 0, 0, 0, 0.0, None, None) for d in days]


def type_counts(rows: Iterable[Sequence[Any]]) -> list[TypeCount]:
    """``COUNTS_SQL``'s rows as ``TypeCount`` (by day, then type)."""
    return [TypeCount(day, str(type_), int(n)) for day, type_, n in rows]


def funnel_stages(rows: Iterable[Sequence[Any]], steps: Sequence[str] = ()) -> list[FunnelStage]:
    """``FUNNEL_SQL``'s rows as the flow's funnel.

    ``steps`` is the flow's step order (every listed step appears, 0 if never
    completed); steps seen but not listed follow, most-reached first.
    """
    started = completed = 0
    reached: dict[str, int] = {}
    for type_, step, chats in rows:
        if type_ == "flow_started":
            started += int(chats)
        elif type_ == "flow_completed":
            completed += int(chats)
        else:
            reached[str(step)] = int(chats)
    listed = list(dict.fromkeys(steps))
    others = sorted((s for s in reached if s not in listed), key=lambda s: (-reached[s], s))
    middle = [FunnelStage("step", s, reached.get(s, 0)) for s in [*listed, *others]]
    return [FunnelStage("started", None, started), *middle, FunnelStage("completed", None, completed)]


def build_analytics(settings: Settings) -> AnalyticsSink:
    """The analytics store ``settings.analytics_url`` names (connected lazily, on first use)."""
    from botkiln.infra.analytics_clickhouse import ClickHouseAnalytics

    return ClickHouseAnalytics(settings.analytics_url)
