"""A warm pool of sandboxes: least-recently-used, keyed by revision hash, with an idle TTL.

Invariants:

- At most ``capacity`` revisions are held; a miss beyond that evicts the least recently used
  one. An entry unused for ``idle_ttl_s`` (by the injected ``clock``) is dropped by the next
  ``run``/``arun``/``prewarm`` or by :meth:`SandboxPool.sweep`.
- One revision is loaded once: concurrent misses on the same hash wait for the first loader.
  A failed load is not cached; its error reaches every waiter.
- A call that fails with a :class:`SandboxError` drops its entry; the next use re-creates it
  through the loader. Evicting or dropping an entry never disturbs a call already running on
  it (that call keeps its own reference).
- The pool's own lock is never held while JS runs or a loader is called; each sandbox
  serialises its own calls. So the pool is safe to share between threads, and :meth:`arun`
  runs calls off the event loop.

The quickjs binding offers no way to compile to bytecode or to load bytecode, so the pool
keeps live runtimes only; a re-creation re-parses the source.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass

from .errors import SandboxError
from .sandbox import Sandbox, SandboxLimits

__all__ = ["PoolStats", "SandboxPool"]


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Counters of a pool since it was built, and its current size."""

    hits: int
    misses: int
    evictions: int  # dropped to respect capacity
    expirations: int  # dropped after idle_ttl_s without use
    discards: int  # dropped after a failed call
    size: int


@dataclass(slots=True)
class _Entry:
    sandbox: Future[Sandbox]
    last_used: float


class SandboxPool:
    """Warm sandboxes keyed by revision hash; see the module docstring for the invariants."""

    def __init__(
        self,
        capacity: int = 256,
        idle_ttl_s: float = 900.0,
        *,
        limits: SandboxLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        executor: Executor | None = None,
    ) -> None:
        """Build an empty pool; ``executor`` runs :meth:`arun` calls (default: ``to_thread``)."""
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if idle_ttl_s <= 0:
            raise ValueError(f"idle_ttl_s must be positive, got {idle_ttl_s}")
        self.capacity = capacity
        self.idle_ttl_s = idle_ttl_s
        self.limits = limits if limits is not None else SandboxLimits()
        self._clock = clock
        self._executor = executor
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._hits = self._misses = self._evictions = self._expirations = self._discards = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, rev_hash: object) -> bool:
        with self._lock:
            return rev_hash in self._entries

    def stats(self) -> PoolStats:
        """A snapshot of the counters and the current size."""
        with self._lock:
            return PoolStats(
                self._hits,
                self._misses,
                self._evictions,
                self._expirations,
                self._discards,
                len(self._entries),
            )

    def run(self, rev_hash: str, loader: Callable[[], str], input_json: str) -> str:
        """Run ``step`` of revision ``rev_hash`` on ``input_json``; return the output JSON.

        ``loader`` returns the revision's bot.js and is called only on a miss.

        Raises:
            SandboxLoadError: the revision's bot.js does not load (it is not cached).
            SandboxError: the call failed; the entry is dropped (see :meth:`Sandbox.call`).
            ValueError: ``input_json`` is not the JSON text of an object.
        """
        sandbox = self._acquire(rev_hash, loader, count=True)
        try:
            return sandbox.call(input_json)
        except SandboxError:
            self._discard(rev_hash, sandbox)
            raise

    async def arun(self, rev_hash: str, loader: Callable[[], str], input_json: str) -> str:
        """:meth:`run` in a worker thread, so the event loop never waits on JS."""
        if self._executor is None:
            return await asyncio.to_thread(self.run, rev_hash, loader, input_json)
        loop = asyncio.get_running_loop()
        call = functools.partial(self.run, rev_hash, loader, input_json)
        return await loop.run_in_executor(self._executor, call)

    def prewarm(self, rev_hash: str, source: str) -> bool:
        """Load ``source`` as revision ``rev_hash`` unless present; True if it was loaded now.

        Counts as neither hit nor miss. Raises SandboxLoadError if the source does not load.
        """
        with self._lock:
            present = rev_hash in self._entries
        self._acquire(rev_hash, lambda: source, count=False)
        return not present

    def invalidate(self, rev_hash: str) -> bool:
        """Drop revision ``rev_hash``; True if it was present."""
        with self._lock:
            return self._entries.pop(rev_hash, None) is not None

    def sweep(self) -> int:
        """Drop every entry idle for ``idle_ttl_s``; return how many were dropped."""
        with self._lock:
            return self._expire(self._clock())

    def clear(self) -> None:
        """Drop every entry (counters are kept)."""
        with self._lock:
            self._entries.clear()

    def _acquire(self, rev_hash: str, loader: Callable[[], str], *, count: bool) -> Sandbox:
        with self._lock:
            now = self._clock()
            self._expire(now)
            entry = self._entries.get(rev_hash)
            owner = entry is None
            if entry is None:
                entry = self._entries[rev_hash] = _Entry(Future(), now)
                while len(self._entries) > self.capacity:
                    self._entries.popitem(last=False)
                    self._evictions += 1
            else:
                entry.last_used = now
                self._entries.move_to_end(rev_hash)
            if count:
                self._misses += owner
                self._hits += not owner
        if owner:
            self._load(rev_hash, entry, loader)
        return entry.sandbox.result()

    def _load(self, rev_hash: str, entry: _Entry, loader: Callable[[], str]) -> None:
        try:
            sandbox = Sandbox(loader(), limits=self.limits, name=f"bot.js@{rev_hash[:12]}")
        except BaseException as exc:
            with self._lock:
                if self._entries.get(rev_hash) is entry:
                    del self._entries[rev_hash]
            entry.sandbox.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            entry.sandbox.set_result(sandbox)

    def _discard(self, rev_hash: str, sandbox: Sandbox) -> None:
        with self._lock:
            entry = self._entries.get(rev_hash)
            # a failed load leaves the table before its future is set, so done() means a result
            if entry is not None and entry.sandbox.done() and entry.sandbox.result() is sandbox:
                del self._entries[rev_hash]
                self._discards += 1

    def _expire(self, now: float) -> int:
        expired = 0
        while self._entries:
            rev_hash, entry = next(iter(self._entries.items()))
            if now - entry.last_used < self.idle_ttl_s:
                break
            del self._entries[rev_hash]
            expired += 1
        self._expirations += expired
        return expired
