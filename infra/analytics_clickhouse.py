"""``ClickHouseAnalytics``: the ``AnalyticsSink`` on clickhouse-connect — HTTP to ClickHouse, or chdb in-process.

``http(s)://host:port[/database]`` reaches a ClickHouse server (or ``infra/chdb_http.py``);
``chdb://DIR`` opens the embedded engine on ``DIR`` through the same Client API, so
both run the same SQL (``infra/analytics.py``). The connection is made on first use
and the table created then (``CREATE TABLE IF NOT EXISTS``).

Writes survive an outage without ever blocking the caller:

- ``record`` appends to an in-memory buffer of at most ``max_buffer`` rows; when it
  is full the oldest rows are dropped and counted (``dropped``);
- a background thread, started by the first ``record``, inserts batches of up to
  ``batch_size`` rows when a batch is full or every ``flush_interval_s``;
- a failed batch goes back to the front of the buffer (still within the bound) and
  the thread backs off exponentially, from ``min_backoff_s`` to ``max_backoff_s``,
  until an insert succeeds;
- ``flush`` writes everything now in the caller's thread; ``close`` stops the
  thread after a last flush (rows still unwritten are logged as lost).

At most ``max_buffer`` rows wait, plus one batch in flight. One batch is sent at a
time, and one call uses the client at a time (chdb handles are not shared across
threads; HTTP sessions are not used).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, TypeVar

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from botkiln.infra.analytics import (
    COLUMN_NAMES,
    COLUMN_TYPES,
    COUNTS_SQL,
    CREATE_TABLE,
    DAILY_SQL,
    FUNNEL_SQL,
    TABLE,
    DayStats,
    EventRow,
    FunnelStage,
    TypeCount,
    day_stats,
    funnel_stages,
    query_parameters,
    type_counts,
)
from botkiln.infra.ports import AnalyticsError, AnalyticsRefused, AnalyticsUnavailable

_log = logging.getLogger("botkiln.analytics")
T = TypeVar("T")


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


def translate_error(exc: BaseException, where: str) -> AnalyticsError:
    """clickhouse-connect's, chdb's and the network's exceptions as Botkiln's (the one place that knows them)."""
    if isinstance(exc, AnalyticsError):
        return exc
    if isinstance(exc, OperationalError):
        return AnalyticsUnavailable(f"analytics store at {where} unreachable: {exc}")
    if isinstance(exc, DatabaseError) and exc.code is not None:
        return AnalyticsRefused(f"analytics store at {where} refused the statement: {exc}", exc.code)
    # Anything else (a client-side ClickHouseError, OSError, chdb's engine refusing to open) means "not usable now".
    return AnalyticsUnavailable(f"analytics store at {where} unavailable: {type(exc).__name__}: {exc}")


def connect(url: str, *, connect_timeout_s: float = 3.0, timeout_s: float = 30.0) -> Client:
    """A clickhouse-connect client for ``chdb://DIR`` or ``http(s)://host:port[/database]``.

    Raises:
        AnalyticsUnavailable: the server or the engine cannot be reached.
        AnalyticsRefused: it refused the handshake.
    """
    try:
        if url.startswith("chdb://"):
            return clickhouse_connect.get_client(interface="chdb", path=url.removeprefix("chdb://"))
        return clickhouse_connect.get_client(
            dsn=url,
            connect_timeout=connect_timeout_s,
            send_receive_timeout=timeout_s,
            autogenerate_session_id=False,
            compress="lz4",
            query_retries=0,
        )
    except Exception as exc:
        raise translate_error(exc, _redact(url)) from exc


class ClickHouseAnalytics:
    """Batched, outage-tolerant writes and the summary queries over one clickhouse-connect client."""

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 1000,
        max_buffer: int = 100_000,
        flush_interval_s: float = 1.0,
        min_backoff_s: float = 0.25,
        max_backoff_s: float = 30.0,
        connect: Callable[[str], Client] = connect,
    ) -> None:
        if not 0 < batch_size <= max_buffer:
            raise ValueError("need 0 < batch_size <= max_buffer")
        self.url = url
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self.flush_interval_s = flush_interval_s
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self._connect = connect
        self._where = _redact(url)
        self._client: Client | None = None
        self._client_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._buffer: deque[EventRow] = deque()
        self._in_flight = 0
        self._dropped = 0
        self._overflowing = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"ClickHouseAnalytics({self._where!r})"

    @property
    def pending(self) -> int:
        """Rows recorded and not yet written (buffered or in flight)."""
        with self._lock:
            return len(self._buffer) + self._in_flight

    @property
    def dropped(self) -> int:
        """Rows dropped, oldest first, because the buffer was full."""
        with self._lock:
            return self._dropped

    # Writes

    def record(self, rows: Sequence[EventRow]) -> None:
        """Queue ``rows``; never blocks on the store and never raises for an outage."""
        if not rows:
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("record() after close()")
            for row in rows:
                if len(self._buffer) >= self.max_buffer:
                    self._buffer.popleft()
                    self._count_drop(1)
                self._buffer.append(row)
            full = len(self._buffer) >= self.batch_size
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="analytics-writer", daemon=True)
                self._thread.start()
        if full:
            self._wake.set()

    def flush(self) -> bool:
        """Write every queued row now; False if the store failed (the rows stay queued)."""
        with self._send_lock:
            return self._drain()

    def close(self) -> None:
        """Stop the writer after a last flush and release the client."""
        with self._lock:
            self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.max_backoff_s + 30)
        if not self.flush():
            _log.error("analytics: %d rows lost at close: the store at %s is unavailable", self.pending, self._where)
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _count_drop(self, n: int) -> None:
        self._dropped += n
        if not self._overflowing:
            self._overflowing = True
            _log.warning("analytics: buffer full (%d rows), dropping the oldest", self.max_buffer)

    def _take(self) -> list[EventRow]:
        with self._lock:
            n = min(self.batch_size, len(self._buffer))
            batch = [self._buffer.popleft() for _ in range(n)]
            self._in_flight = n
            return batch

    def _requeue(self, batch: list[EventRow]) -> None:
        with self._lock:
            self._in_flight = 0
            room = self.max_buffer - len(self._buffer)
            if len(batch) > room:
                self._count_drop(len(batch) - room)
                batch = batch[len(batch) - room :]
            self._buffer.extendleft(reversed(batch))

    def _drain(self) -> bool:
        """Send batches until the buffer is empty (True) or an insert fails (False). Holds ``_send_lock``."""
        while batch := self._take():
            try:
                self._insert(batch)
            except AnalyticsError as exc:
                self._requeue(batch)
                _log.warning("analytics: insert of %d rows failed, will retry: %s", len(batch), exc)
                return False
            with self._lock:
                self._in_flight = 0
                if not self._buffer:
                    self._overflowing = False
        return True

    def _insert(self, batch: list[EventRow]) -> None:
        values = [row.values() for row in batch]
        self._call(lambda c: c.insert(TABLE, values, COLUMN_NAMES, column_type_names=COLUMN_TYPES))

    def _run(self) -> None:
        backoff = self.min_backoff_s
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._send_lock:
                ok = self._drain()
            if ok:
                backoff = self.min_backoff_s
            else:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    # The client

    @contextmanager
    def _client_in_use(self) -> Iterator[Client]:
        with self._client_lock:
            if self._client is None:
                client = self._connect(self.url)
                try:
                    client.command(CREATE_TABLE)
                except Exception as exc:
                    client.close()
                    raise translate_error(exc, self._where) from exc
                self._client = client
            yield self._client

    def _call(self, action: Callable[[Client], T]) -> T:
        try:
            with self._client_in_use() as client:
                return action(client)
        except AnalyticsError:
            raise
        except Exception as exc:
            raise translate_error(exc, self._where) from exc

    def _rows(self, sql: str, parameters: dict[str, Any]) -> Sequence[Sequence[Any]]:
        return self._call(lambda c: c.query(sql, parameters=parameters).result_rows)

    # Queries

    def daily(self, bot_id: str, since: date, until: date) -> list[DayStats]:
        """One ``DayStats`` per UTC day from ``since`` to ``until`` inclusive."""
        return day_stats(self._rows(DAILY_SQL, query_parameters(bot_id, since, until)), since, until)

    def event_counts(self, bot_id: str, since: date, until: date) -> list[TypeCount]:
        """Events per UTC day and type."""
        return type_counts(self._rows(COUNTS_SQL, query_parameters(bot_id, since, until)))

    def funnel(self, bot_id: str, flow: str, since: date, until: date, steps: Sequence[str] = ()) -> list[FunnelStage]:
        """The flow's funnel (started, steps, completed) in distinct chats."""
        rows = self._rows(FUNNEL_SQL, query_parameters(bot_id, since, until, flow=flow))
        return funnel_stages(rows, steps)
