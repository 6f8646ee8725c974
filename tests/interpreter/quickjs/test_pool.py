"""The warm sandbox pool: LRU, idle TTL, counters, failure handling, threads and asyncio."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from botkiln.interpreter.quickjs import (
    BotCodeError,
    PoolStats,
    SandboxError,
    SandboxLimits,
    SandboxLoadError,
    SandboxPool,
    SandboxStackOverflow,
    SandboxTimeout,
)

FAST = SandboxLimits(memory_bytes=8 << 20, time_ms=100, load_time_ms=200)


def bot(tag: str) -> str:
    """A bot that answers with its own tag, and misbehaves on request."""
    return f"""
    function deeper(n) {{ return deeper(n + 1) + 1; }}
    function step(input) {{
      if (input.kind === "loop") for (;;) {{}}
      if (input.kind === "throw") throw new Error("boom");
      if (input.kind === "recursion") return {{n: deeper(0)}};
      if (input.kind === "busy") for (var i = 0; i < input.n; i++) {{}}
      return {{bot: "{tag}", n: input.n}};
    }}
    """


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts how often each revision's source is fetched."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, rev: str) -> Callable[[], str]:
        def load() -> str:
            with self._lock:
                self.calls[rev] = self.calls.get(rev, 0) + 1
            return bot(rev)

        return load


def run(pool: SandboxPool, loader: Loader, rev: str, **input: object) -> dict[str, object]:
    output: dict[str, object] = json.loads(pool.run(rev, loader(rev), json.dumps(input)))
    return output


def test_a_revision_is_loaded_once_then_served_warm() -> None:
    pool, loader = SandboxPool(limits=FAST), Loader()
    assert run(pool, loader, "a", n=1) == {"bot": "a", "n": 1}
    assert run(pool, loader, "a", n=2) == {"bot": "a", "n": 2}
    assert run(pool, loader, "b", n=3) == {"bot": "b", "n": 3}
    assert loader.calls == {"a": 1, "b": 1}
    assert pool.stats() == PoolStats(hits=1, misses=2, evictions=0, expirations=0, discards=0, size=2)


def test_the_least_recently_used_revision_is_evicted_at_capacity() -> None:
    pool, loader = SandboxPool(capacity=2, limits=FAST), Loader()
    run(pool, loader, "a")
    run(pool, loader, "b")
    run(pool, loader, "a")  # "b" is now the least recently used
    run(pool, loader, "c")
    assert ("a" in pool, "b" in pool, "c" in pool) == (True, False, True)
    assert pool.stats().evictions == 1
    run(pool, loader, "b")
    assert loader.calls == {"a": 1, "b": 2, "c": 1}
    assert "a" not in pool


def test_a_revision_idle_for_the_ttl_is_dropped() -> None:
    clock = Clock()
    pool, loader = SandboxPool(idle_ttl_s=60, limits=FAST, clock=clock), Loader()
    run(pool, loader, "old")
    clock.now += 30
    run(pool, loader, "fresh")
    clock.now += 30  # "old" idle for 60 s, "fresh" for 30 s
    assert pool.sweep() == 1
    assert ("old" in pool, "fresh" in pool) == (False, True)
    clock.now += 20
    run(pool, loader, "fresh")  # a use restarts the idle clock
    clock.now += 59
    run(pool, loader, "other")  # any operation drops what has expired
    assert ("fresh" in pool, len(pool)) == (True, 2)
    clock.now += 60
    run(pool, loader, "old")
    assert ("fresh" in pool, "other" in pool) == (False, False)
    assert pool.stats().expirations == 3
    assert loader.calls["old"] == 2


def test_invalidate_drops_a_revision_so_the_next_use_loads_it_again() -> None:
    pool, loader = SandboxPool(limits=FAST), Loader()
    run(pool, loader, "a")
    assert pool.invalidate("a") is True
    assert pool.invalidate("a") is False
    run(pool, loader, "a")
    assert loader.calls == {"a": 2}


def test_prewarm_loads_without_counting_and_the_first_run_is_a_hit() -> None:
    pool = SandboxPool(limits=FAST)
    assert pool.prewarm("a", bot("a")) is True
    assert pool.prewarm("a", bot("a")) is False
    assert pool.stats() == PoolStats(0, 0, 0, 0, 0, 1)

    def must_not_load() -> str:
        raise AssertionError("a prewarmed revision was loaded again")

    assert json.loads(pool.run("a", must_not_load, "{}")) == {"bot": "a"}
    assert pool.stats().hits == 1


def test_a_revision_that_does_not_load_is_not_cached() -> None:
    pool, attempts = SandboxPool(limits=FAST), []

    def broken() -> str:
        attempts.append(1)
        return "function step(input) {"

    for _ in range(2):
        with pytest.raises(SandboxLoadError):
            pool.run("bad", broken, "{}")
    assert (len(attempts), len(pool), pool.stats().misses) == (2, 0, 2)


def test_a_loader_failure_reaches_the_caller_and_is_not_cached() -> None:
    pool = SandboxPool(limits=FAST)

    def missing() -> str:
        raise FileNotFoundError("no artifact for rev x")

    with pytest.raises(FileNotFoundError):
        pool.run("x", missing, "{}")
    assert "x" not in pool
    with pytest.raises(SandboxLoadError):
        pool.prewarm("y", "not a bot")
    assert "y" not in pool


@pytest.mark.parametrize(
    ("kind", "error"),
    [("loop", SandboxTimeout), ("throw", BotCodeError), ("recursion", SandboxStackOverflow)],
)
def test_a_failed_call_drops_its_entry_and_the_next_use_recreates_it(kind: str, error: type[SandboxError]) -> None:
    pool, loader = SandboxPool(limits=FAST), Loader()
    run(pool, loader, "a", n=1)
    with pytest.raises(error):
        run(pool, loader, "a", kind=kind)
    assert "a" not in pool
    assert pool.stats().discards == 1
    assert run(pool, loader, "a", n=2) == {"bot": "a", "n": 2}
    assert loader.calls == {"a": 2}


def test_a_rejected_input_keeps_the_entry() -> None:
    pool, loader = SandboxPool(limits=FAST), Loader()
    with pytest.raises(ValueError):
        pool.run("a", loader("a"), "[]")
    assert "a" in pool
    assert pool.stats().discards == 0


def test_dropping_an_entry_does_not_disturb_a_call_running_on_it() -> None:
    pool, loader = SandboxPool(limits=SandboxLimits(time_ms=5000)), Loader()
    run(pool, loader, "a")
    result: list[str] = []
    slow = threading.Thread(target=lambda: result.append(pool.run("a", loader("a"), '{"kind":"busy","n":3e6}')))
    slow.start()
    time.sleep(0.01)
    pool.invalidate("a")
    pool.clear()
    slow.join()
    assert json.loads(result[0]) == {"bot": "a", "n": 3_000_000}


@pytest.mark.parametrize(("capacity", "idle_ttl_s"), [(0, 1.0), (1, 0.0), (1, -5.0)])
def test_capacity_and_ttl_must_be_positive(capacity: int, idle_ttl_s: float) -> None:
    with pytest.raises(ValueError):
        SandboxPool(capacity=capacity, idle_ttl_s=idle_ttl_s)


# --- threads -------------------------------------------------------------------------------


def test_concurrent_misses_on_one_revision_load_it_once() -> None:
    pool, fetched = SandboxPool(limits=FAST), []
    start = threading.Barrier(8)

    def slow_loader() -> str:
        fetched.append(1)
        time.sleep(0.05)
        return bot("a")

    def worker(n: int) -> dict[str, object]:
        start.wait()
        output: dict[str, object] = json.loads(pool.run("a", slow_loader, json.dumps({"n": n})))
        return output

    with ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(worker, range(8)))
    assert answers == [{"bot": "a", "n": n} for n in range(8)]
    assert len(fetched) == 1
    assert (pool.stats().misses, pool.stats().hits) == (1, 7)


def test_many_threads_over_more_revisions_than_capacity_get_their_own_answers() -> None:
    pool, loader = SandboxPool(capacity=3, limits=FAST), Loader()
    revisions = [f"rev{k}" for k in range(6)]

    def worker(k: int) -> list[bool]:
        checks = []
        for i in range(30):
            rev = revisions[(k + i) % len(revisions)]
            checks.append(run(pool, loader, rev, n=i) == {"bot": rev, "n": i})
        return checks

    with ThreadPoolExecutor(8) as threads:
        outcomes = [ok for checks in threads.map(worker, range(8)) for ok in checks]
    assert all(outcomes) and len(outcomes) == 240
    stats = pool.stats()
    assert stats.size <= 3
    assert stats.hits + stats.misses == 240
    assert stats.evictions == stats.misses - stats.size


# --- asyncio -------------------------------------------------------------------------------


def test_arun_answers_many_concurrent_requests() -> None:
    pool, loader = SandboxPool(limits=FAST), Loader()

    async def main() -> list[object]:
        calls = [pool.arun(f"r{i % 3}", loader(f"r{i % 3}"), json.dumps({"n": i})) for i in range(30)]
        return [json.loads(text) for text in await asyncio.gather(*calls)]

    answers = asyncio.run(main())
    assert answers == [{"bot": f"r{i % 3}", "n": i} for i in range(30)]
    assert loader.calls == {"r0": 1, "r1": 1, "r2": 1}


def test_arun_keeps_the_event_loop_free_while_js_runs() -> None:
    pool, loader = SandboxPool(limits=FAST), Loader()

    async def main() -> tuple[int, type[BaseException]]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        beat = asyncio.create_task(ticker())
        try:
            await pool.arun("a", loader("a"), '{"kind":"loop"}')
        except SandboxTimeout as exc:
            failure: type[BaseException] = type(exc)
        beat.cancel()
        return ticks, failure

    ticks, failure = asyncio.run(main())
    assert failure is SandboxTimeout
    assert ticks >= 5  # the 100 ms loop ran while the loop kept ticking every 5 ms


def test_arun_uses_the_given_executor() -> None:
    with ThreadPoolExecutor(2, thread_name_prefix="sandbox-worker") as executor:
        pool = SandboxPool(limits=FAST, executor=executor)
        names: list[str] = []

        def loader() -> str:
            names.append(threading.current_thread().name)
            return bot("a")

        out = asyncio.run(pool.arun("a", loader, '{"n":1}'))
    assert json.loads(out) == {"bot": "a", "n": 1}
    assert names[0].startswith("sandbox-worker")
