"""Telegram's flood limits and the stand-in's switchable faults.

Limits (Telegram's bot FAQ): about 30 messages per second per bot overall,
about one message per second per chat with short bursts tolerated, and 20
messages per minute per group. Each is a token bucket (``capacity`` tokens,
refilled at ``rate`` per second); a message is allowed only when every bucket
it touches has a token, and then takes one from each. A refusal says how long
until the emptiest bucket has a token again, rounded up to whole seconds, at
least 1 — Telegram's ``retry_after``. Only messages sent (``send*`` methods)
count; edits and callback answers do not.

The clock is injectable (``RateLimiter(limits, clock=...)``) so tests can step
time instead of sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass(frozen=True)
class RateLimits:
    """Bucket sizes and refill rates; ``RateLimits(enabled=False)`` turns flood control off."""

    per_bot_per_s: float = 30.0
    per_bot_burst: int = 30
    per_chat_per_s: float = 1.0
    per_chat_burst: int = 3
    per_group_per_min: float = 20.0
    per_group_burst: int = 20
    enabled: bool = True


@dataclass
class _Bucket:
    capacity: float
    rate: float
    tokens: float
    stamp: float

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0 when one is), after refilling up to ``now``."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class RateLimiter:
    """Per-bot, per-chat and per-group buckets, thread-safe."""

    def __init__(self, limits: RateLimits | None = None, *, clock: Clock = time.monotonic) -> None:
        self.limits = limits or RateLimits()
        self.clock = clock
        self._buckets: dict[tuple[str, int, int], _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, bot_id: int, chat_id: int, *, group: bool) -> int | None:
        """Take one message from the allowance: None if allowed, else ``retry_after`` seconds."""
        if not self.limits.enabled:
            return None
        lim = self.limits
        wanted = [("bot", bot_id, 0, lim.per_bot_burst, lim.per_bot_per_s)]
        wanted.append(("chat", bot_id, chat_id, lim.per_chat_burst, lim.per_chat_per_s))
        if group:
            wanted.append(("group", bot_id, chat_id, lim.per_group_burst, lim.per_group_per_min / 60))
        with self._lock:
            now = self.clock()
            buckets = [self._bucket((kind, bot, chat), cap, rate, now) for kind, bot, chat, cap, rate in wanted]
            wait = max(bucket.wait(now) for bucket in buckets)
            if wait > 0:
                return max(1, math.ceil(wait))
            for bucket in buckets:
                bucket.tokens -= 1
            return None

    def _bucket(self, key: tuple[str, int, int], capacity: int, rate: float, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(capacity), rate, float(capacity), now)
        return bucket


@dataclass
class Faults:
    """A bot's switchable faults; each counter is consumed by the next calls, in this order of precedence.

    - ``drop_next``: the connection is closed without any answer;
    - ``delay_ms``: every call is answered this late (until reset to 0);
    - ``fail_next``: answered ``fail_status`` (502 ``Bad Gateway`` by default);
    - ``storm_next``: answered 429 ``Too Many Requests: retry after <storm_retry_after>``.

    ``methods`` limits the faults to those method names (None: every method).
    """

    drop_next: int = 0
    delay_ms: int = 0
    fail_next: int = 0
    fail_status: int = 502
    fail_description: str = "Bad Gateway"
    storm_next: int = 0
    storm_retry_after: int = 1
    methods: frozenset[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def fail(self, calls: int, *, status: int = 502, description: str = "Bad Gateway") -> None:
        """Answer the next ``calls`` calls with ``status``."""
        with self._lock:
            self.fail_next, self.fail_status, self.fail_description = calls, status, description

    def drop(self, calls: int) -> None:
        """Close the connection of the next ``calls`` calls without answering."""
        with self._lock:
            self.drop_next = calls

    def storm(self, calls: int, *, retry_after: int = 1) -> None:
        """Answer the next ``calls`` calls with 429 and ``retry_after``."""
        with self._lock:
            self.storm_next, self.storm_retry_after = calls, retry_after

    def slow(self, delay_ms: int) -> None:
        """Answer every call ``delay_ms`` late (0 restores normal speed)."""
        self.delay_ms = delay_ms

    def clear(self) -> None:
        """No faults any more."""
        with self._lock:
            self.drop_next = self.fail_next = self.storm_next = self.delay_ms = 0

    def take(self, method: str) -> str | None:
        """The fault this call of ``method`` suffers (``drop``, ``fail``, ``storm``), consuming it; None if none."""
        if self.methods is not None and method not in self.methods:
            return None
        with self._lock:
            for name in ("drop", "fail", "storm"):
                left: int = getattr(self, f"{name}_next")
                if left > 0:
                    setattr(self, f"{name}_next", left - 1)
                    return name
        return None

    def applies(self, method: str) -> bool:
        """Whether the faults concern ``method`` at all."""
        return self.methods is None or method in self.methods
