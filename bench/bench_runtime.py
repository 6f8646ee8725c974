"""Runtime plane under load: Botkiln (ingress → Redis chat queue → executors → Bot API) vs a hand-written aiogram bot.

Run (PostgreSQL on 127.0.0.1:5432 with trust auth for ``postgres``, Redis on 127.0.0.1:6379, and the ``bench``
extra: ``.venv/bin/pip install -e '.[bench]'``, or just ``.venv/bin/pip install aiogram``):

    .venv/bin/python bench/bench_runtime.py                 # both systems, table on stdout (~3.3 min)
    .venv/bin/python bench/bench_runtime.py --json          # the same numbers as JSON
    .venv/bin/python bench/bench_runtime.py --systems botkiln --updates 2000   # a quicker look

What runs. Botkiln: ``botkiln serve`` (1 process) and ``botkiln worker --threads 4`` (2 processes) as
subprocesses, on a fresh database ``botkiln_bench_<random>`` (migrated with ``botkiln db migrate``, dropped
at the end) and Redis db ``--redis-db`` (flushed before and after), with the FAQ bot of
``examples/faq.json`` stored and activated directly (build_revision, put_revision, record_revision,
flip_active; its webhook registered with ``setWebhook``). Baseline: ``bench/aiogram_bot.py``, the same FAQ
written by hand with aiogram 3 (aiohttp web server, ``SimpleRequestHandler`` + ``setup_application``,
secret token checked), one process. Both talk to the Telegram stand-in (``infra/telegram_standin.py``),
served by a child process of the bench (``--standin process``, the default) or by a thread of the
bench process (``--standin inline``: the stand-in's ~1 ms of CPU per call then shares the load
generator's GIL; measured, aiogram's sustained p99 went from 14 ms to 197 ms, hence the default).
The stand-in's uvicorn runs on uvloop (the ``bench`` extra installs it; uvicorn picks it up): on
asyncio's own loop the stand-in itself was the bottleneck of Botkiln's ``max`` phase (143 replies/s
against 274/s with uvloop, same code, the stand-in answering each sendMessage later under load), so
those figures measured the fake Telegram, not Botkiln.
The systems are measured one after the other, never at once.

The load, per system: the bench POSTs Telegram-shaped updates to the bot's webhook (URL and secret as
the stand-in holds them after ``setWebhook``) over at most ``--connections`` connections (Telegram's
default ``max_connections`` is 40), retrying non-2xx answers like Telegram (honouring ``Retry-After``).
The updates of one chat are delivered one after the other; chats are interleaved round-robin. Each
chat says ``/start`` and then cycles through "wifi password", "where are you?", "tell me a joke" and
``/help``; every update is answered by exactly one sendMessage.

Phases and their numbers:

- ``warm-up``: 100 updates over 100 chats (sandboxes, caches, connections); not compared.
- ``sustained``: ``--updates`` over ``--chats`` at ``--rate`` updates/s offered; ``max``: the same at the
  highest rate the system and the connection cap allow (its latencies are then mostly the backlog:
  the webhook accepts faster than the bot answers). The stand-in has no flood limits in these phases
  and Botkiln's ``BOTKILN_OUTBOUND_RATES`` are far above the load (``FAST_RATES``).
  ``offered/s``: updates POSTed per second (first attempts). ``done/s``: replies / (last reply's
  arrival at the stand-in - first POST). ``p50/p90/p99/max ms``: webhook-to-sendMessage latency: from
  the first POST of an update to the stand-in's record (``CallRecord.at``) of the sendMessage matched to
  it: the k-th successful sendMessage in a chat answers the chat's k-th update. ``lost``: updates
  without a reply; ``dup``: replies beyond the updates; ``order``: in chats with as many replies as
  updates, replies whose text is not the expected answer of the update they were matched to (a reply
  out of order, or a wrong one); ``ack p50``: the webhook's own answer time (POST to 2xx);
  ``wh-retry``: webhook POSTs answered other than 2xx (or failed), each retried.
- ``outbound``: ``--burst`` updates over ``--burst-chats`` chats at the highest rate, with the stand-in
  enforcing Telegram's limits (``RateLimits()``: 30 messages/s per bot, burst 30; 1/s per chat,
  burst 3) and Botkiln restarted with its default outbound rates. ``msgs/s``: successful sendMessages
  / (last one's arrival - first POST); ``÷ 30/s``: that over the per-bot rate; ``allowance``: the
  messages sent over what the stand-in would have let through in that span at best (burst 30 +
  30/s x span), i.e. the share of Telegram's allowance used; ``429s``: calls the stand-in refused with
  429; ``lost``: updates never answered (aiogram has no flood control: a 429 fails the handler and the
  reply is gone).
- CPU table: CPU time per update (ms) of each process group during the phase, from /proc: the bench
  (load generator; plus the stand-in with ``--standin inline``), the stand-in process, ``serve``, the
  two workers, the aiogram process, redis-server (the one on the ``--redis`` port: other clients of
  that server count too) and PostgreSQL (postmaster, its auxiliary processes and the backends of the
  bench database). ``other``: busy CPU of the whole machine not in those groups (anything else
  running at the same time disturbs the numbers); ``own``: the sum without ``other``, the CPU one
  update costs end to end (the system, Redis/PostgreSQL, the stand-in and the load generator).
- Botkiln's latency split: ``wait`` = webhook POST to the executor's start on the update (ingress, Redis
  queue, wake-up, claim), ``run`` = from there to the sendMessage's arrival (state, QuickJS, commit,
  sender); the start is read from the executors' analytics rows (``executor_split``).

Ratios: Botkiln ÷ aiogram for throughput (done/s) and the p50/p99 latencies of the sustained and max phases.
The header gives the 1-minute load average at the start and the commit measured: on a shared machine
read the ``other`` CPU column before trusting a number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import itertools
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import httpx
import redis
import uvicorn

from botkiln.generator.generators import CompilerGenerator
from botkiln.generator.revision import build_revision
from botkiln.infra.crypto import SecretBox, generate_secret_key, new_webhook_secret
from botkiln.infra.db import bots, create_pool, projects, revisions, users
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_standin import SECRET_HEADER, BotApiStandIn, RateLimits
from botkiln.infra.telegram_standin_updates import chat, user, user_command, user_message
from botkiln.workers.runtime import build_artifact_store

ROOT = Path(__file__).resolve().parent.parent
FAQ_SPEC = ROOT / "examples" / "faq.json"
AIOGRAM_BOT = Path(__file__).resolve().parent / "aiogram_bot.py"
NO_LIMITS = RateLimits(enabled=False)
TELEGRAM_LIMITS = RateLimits()
FAST_RATES = "bot_per_s=100000,bot_burst=100000,chat_per_s=10000,chat_burst=10000"
CYCLE = ["wifi password", "where are you?", "tell me a joke", "/help"]
ANSWER_KEY = {
    "/start": "welcome", "wifi password": "wifi", "where are you?": "address", "tell me a joke": "unknown",
    "/help": "help",
}  # fmt: skip
"""What each user text is answered with: a key of the spec's localization strings (``en``)."""
CLK_TCK = os.sysconf("SC_CLK_TCK")
REDIS_OWNER = "botkiln-bench:owner"
"""Key in the run's Redis db: the pid of the bench run using it (a second run on the same db refuses)."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------- the stand-in, in this process or a child


@dataclass(frozen=True)
class Call:
    """One Bot API call as the stand-in recorded it (what crosses the pipe from a stand-in process)."""

    method: str
    chat_id: int | None
    text: str
    at: float
    error_code: int | None


class StandInHost:
    """A ``BotApiStandIn`` served by uvicorn in a thread, and what the bench asks of it."""

    def __init__(self) -> None:
        self.standin = BotApiStandIn(limits=NO_LIMITS)
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.standin.url = self.url
        config = uvicorn.Config(self.standin.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the stand-in did not start")
            time.sleep(0.01)

    def register(self, username: str) -> tuple[str, int, str]:
        bot = self.standin.register(username=username, first_name="Bean There FAQ")
        return bot.token, bot.id, bot.username

    def open_chats(self, token: str, chat_ids: list[int]) -> None:
        bot = self.standin.bots[token]
        for chat_id in chat_ids:
            self.standin.open_chat(bot, chat(chat_id))

    def flood_limits(self, enabled: bool) -> None:
        self.standin.limiter.limits = TELEGRAM_LIMITS if enabled else NO_LIMITS

    def webhook(self, token: str) -> tuple[str, str | None]:
        hook = self.standin.bots[token].webhook
        return hook.url, hook.secret_token

    def mark(self, token: str) -> int:
        return len(self.standin.bots[token].records)

    def count_ok(self, token: str, method: str, start: int) -> int:
        records = self.standin.bots[token].records[start:]
        return sum(1 for r in records if r.method == method and r.ok)

    def calls(self, token: str, start: int) -> list[Call]:
        out = []
        for r in list(self.standin.bots[token].records[start:]):
            raw = r.params.get("chat_id")
            chat_id = int(raw) if isinstance(raw, int | str) and str(raw).lstrip("-").isdigit() else None
            out.append(Call(r.method, chat_id, str(r.params.get("text", "")), r.at, r.error_code))
        return out

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def _standin_child(conn: multiprocessing.connection.Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    host = StandInHost()
    conn.send(host.url)
    while True:
        name, args = conn.recv()
        if name == "stop":
            host.stop()
            conn.send(None)
            return
        conn.send(getattr(host, name)(*args))


class StandInProcess:
    """The same interface, the stand-in in a child process (its CPU is then not the bench's)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_standin_child, args=(child,), daemon=True, name="standin")
        self._process.start()
        self.url: str = self._conn.recv()
        self.pid = self._process.pid

    def _ask(self, name: str, *args: Any) -> Any:
        self._conn.send((name, args))
        return self._conn.recv()

    def register(self, username: str) -> tuple[str, int, str]:
        result: tuple[str, int, str] = self._ask("register", username)
        return result

    def open_chats(self, token: str, chat_ids: list[int]) -> None:
        self._ask("open_chats", token, chat_ids)

    def flood_limits(self, enabled: bool) -> None:
        self._ask("flood_limits", enabled)

    def webhook(self, token: str) -> tuple[str, str | None]:
        result: tuple[str, str | None] = self._ask("webhook", token)
        return result

    def mark(self, token: str) -> int:
        return int(self._ask("mark", token))

    def count_ok(self, token: str, method: str, start: int) -> int:
        return int(self._ask("count_ok", token, method, start))

    def calls(self, token: str, start: int) -> list[Call]:
        result: list[Call] = self._ask("calls", token, start)
        return result

    def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._ask("stop")
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()


StandIn = StandInHost | StandInProcess


# ---------------------------------------------------------------- CPU accounting from /proc


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, CPU seconds) of ``pid``, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _busy_s() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLK_TCK


@dataclass
class CpuWatch:
    """Which processes belong to which group; ``snapshot`` reads their CPU time."""

    groups: dict[str, list[int]] = field(default_factory=dict)
    redis_port: int = 6379
    database: str = ""

    def _services(self) -> dict[int, str]:
        found: dict[int, str] = {}
        postgres: dict[int, tuple[int, str]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            pid = int(entry.name)
            if comm == "redis-server" and f":{self.redis_port}" in _cmdline(pid):
                found[pid] = "redis"
            elif comm == "postgres":
                stat = _stat(pid)
                if stat is not None:
                    postgres[pid] = (stat[0], _cmdline(pid))
        for pid, (ppid, cmd) in postgres.items():
            if ppid in postgres:  # a child of a postmaster: the bench database's backends and the aux processes
                if "(" not in cmd or (self.database and f" {self.database} " in cmd):
                    found[pid] = "postgres"
            elif any(parent == pid and self.database and f" {self.database} " in c for parent, c in postgres.values()):
                found[pid] = "postgres"  # the postmaster serving the bench database
        return found

    def snapshot(self) -> dict[str, Any]:
        pids: dict[int, str] = {pid: name for name, members in self.groups.items() for pid in members}
        pids.update(self._services())
        cpu = {pid: stat[1] for pid in pids if (stat := _stat(pid)) is not None}
        return {"pids": pids, "cpu": cpu, "busy": _busy_s(), "at": time.monotonic()}

    @staticmethod
    def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        """CPU seconds per group between two snapshots (a process seen only at the end counts from 0)."""
        out: dict[str, float] = {}
        for pid, name in after["pids"].items():
            if pid in after["cpu"]:
                used = after["cpu"][pid] - before["cpu"].get(pid, 0.0)
                out[name] = out.get(name, 0.0) + max(0.0, used)
        out["other"] = max(0.0, after["busy"] - before["busy"] - sum(out.values()))
        out["wall"] = after["at"] - before["at"]
        return out


# ---------------------------------------------------------------- load: plan, deliver, match


@dataclass(frozen=True)
class Planned:
    chat_id: int
    seq: int
    text: str
    update_id: int
    body: bytes


@dataclass
class Sent:
    planned: Planned
    t0: float = 0.0
    acked: float = 0.0
    attempts: list[int | str] = field(default_factory=list)
    delivered: bool = False


_update_ids = itertools.count(500_000_000 + secrets.randbelow(100_000_000))


def make_plan(chat_ids: Sequence[int], updates: int) -> list[Planned]:
    """``updates`` updates over ``chat_ids``, round-robin; a chat's first says /start, then it cycles."""
    plan = []
    for i in range(updates):
        chat_id, seq = chat_ids[i % len(chat_ids)], i // len(chat_ids)
        text = "/start" if seq == 0 else CYCLE[(seq - 1) % len(CYCLE)]
        update = user_command(text, chat_id=chat_id) if text.startswith("/") else user_message(chat_id, text)
        update_id = next(_update_ids)
        update["update_id"] = update_id
        update["message"]["message_id"] = seq * 2 + 1
        update["message"]["date"] = int(time.time())
        plan.append(Planned(chat_id, seq, text, update_id, json.dumps(update).encode()))
    return plan


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    sent: Sent,
    before: asyncio.Task[Sent] | None,
    slots: asyncio.Semaphore,
) -> Sent:
    try:
        if before is not None:
            await before
        sent.t0 = time.time()
        delay = 0.05
        for _ in range(8):
            retry_after = None
            try:
                async with session.post(url, data=sent.planned.body, headers=headers) as response:
                    await response.read()
                    status: int | str = response.status
                    retry_after = response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            sent.attempts.append(status)
            if isinstance(status, int) and 200 <= status < 300:
                sent.acked = time.time()
                sent.delivered = True
                return sent
            await asyncio.sleep(float(retry_after) if retry_after else delay)
            delay *= 2
        return sent
    finally:
        slots.release()


async def deliver(
    url: str, secret: str | None, plan: list[Planned], rate: float | None, connections: int
) -> list[Sent]:
    """POST ``plan`` at ``rate`` updates/s (None: as fast as ``connections`` allow), a chat's updates in order."""
    headers = {"Content-Type": "application/json", **({SECRET_HEADER: secret} if secret else {})}
    slots = asyncio.Semaphore(connections)
    last: dict[int, asyncio.Task[Sent]] = {}
    tasks = []
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections), timeout=timeout) as session:
        started = time.perf_counter()
        for i, planned in enumerate(plan):
            if rate is not None:
                wait = started + i / rate - time.perf_counter()
                if wait > 0.001:
                    await asyncio.sleep(wait)
            await slots.acquire()
            task = asyncio.create_task(_post(session, url, headers, Sent(planned), last.get(planned.chat_id), slots))
            last[planned.chat_id] = task
            tasks.append(task)
        return list(await asyncio.gather(*tasks))


def expected_texts(spec: dict[str, Any]) -> dict[str, str]:
    strings = spec["localization"]["strings"]
    return {said: strings[key]["en"] for said, key in ANSWER_KEY.items()}


@dataclass
class PhaseResult:
    system: str
    phase: str
    updates: int
    chats: int
    rate: float | None
    offered_per_s: float
    done_per_s: float
    span_s: float
    replies: int
    lost: int
    duplicates: int
    out_of_order: int
    webhook_retries: int
    undelivered: int
    flood_429: int
    other_errors: int
    latency_ms: dict[str, float]
    ack_ms: dict[str, float]
    cpu_s: dict[str, float]
    executor_ms: dict[str, float] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def summarize(
    system: str, phase: str, sent: list[Sent], calls: list[Call], answers: dict[str, str], cpu: dict[str, float]
) -> tuple[PhaseResult, dict[int, float]]:
    by_chat: dict[int, list[Sent]] = {}
    for item in sent:
        by_chat.setdefault(item.planned.chat_id, []).append(item)
    replies: dict[int, list[Call]] = {}
    for call in calls:
        if call.method == "sendMessage" and call.error_code is None and call.chat_id is not None:
            replies.setdefault(call.chat_id, []).append(call)
    latencies, lost, duplicates, out_of_order = [], 0, 0, 0
    replied: dict[int, float] = {}
    for chat_id, updates in by_chat.items():
        got = sorted(replies.get(chat_id, []), key=lambda c: c.at)
        updates.sort(key=lambda s: s.planned.seq)
        lost += max(0, len(updates) - len(got))
        duplicates += max(0, len(got) - len(updates))
        for update, reply in zip(updates, got, strict=False):
            latencies.append((reply.at - update.t0) * 1000)
            replied[update.planned.update_id] = reply.at
            want = answers[update.planned.text].replace("{{context.firstName}}", user(chat_id)["first_name"])
            out_of_order += len(got) == len(updates) and reply.text != want
    acks = [(s.acked - s.t0) * 1000 for s in sent if s.delivered]
    first = min(s.t0 for s in sent)
    matched = [c for chat_id in by_chat for c in replies.get(chat_id, [])]
    last = max((c.at for c in matched), default=first)
    span = max(last - first, 1e-9)
    posts = sorted(s.t0 for s in sent)
    offered = (len(posts) - 1) / max(posts[-1] - posts[0], 1e-9) if len(posts) > 1 else 0.0
    result = PhaseResult(
        system=system,
        phase=phase,
        updates=len(sent),
        chats=len(by_chat),
        rate=None,
        offered_per_s=offered,
        done_per_s=len(matched) / span,
        span_s=span,
        replies=len(matched),
        lost=lost,
        duplicates=duplicates,
        out_of_order=out_of_order,
        webhook_retries=sum(1 for s in sent for a in s.attempts if not (isinstance(a, int) and 200 <= a < 300)),
        undelivered=sum(1 for s in sent if not s.delivered),
        flood_429=sum(1 for c in calls if c.error_code == 429),
        other_errors=sum(1 for c in calls if c.error_code not in (None, 429)),
        latency_ms={
            "p50": percentile(latencies, 0.50),
            "p90": percentile(latencies, 0.90),
            "p99": percentile(latencies, 0.99),
            "max": max(latencies, default=float("nan")),
        },
        ack_ms={q: percentile(acks, v) for q, v in (("p50", 0.5), ("p99", 0.99))},
        cpu_s=cpu,
    )
    return result, replied


HOST_ROWS = frozenset({"update_processed", "message_sent", "send_failed", "executor_error"})


def executor_split(redis_url: str, sent: list[Sent], replied: dict[int, float]) -> dict[str, float]:
    """Botkiln only: the webhook-to-sendMessage latency cut where the executor starts on the update.

    ``wait``: webhook POST to the executor's start (ingress, queue, wake-up, claim); ``run``: from there
    to the sendMessage's arrival (state, QuickJS, commit, sender). The start is the time of the update's
    telemetry rows (``UpdateRef.ts``: the executor's clock when it began, 1 ms resolution), read from the
    analytics stream, which nobody drains in this run (deleted after reading). {} when unavailable.
    """
    try:
        from botkiln.infra.analytics_relay import FIELD, decode_rows
        from botkiln.infra.redis_keys import analytics_rows
    except ImportError:
        return {}
    client = redis.Redis.from_url(redis_url)
    try:
        key = analytics_rows()
        entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(key) or []  # type: ignore[assignment]
        client.delete(key)
    finally:
        client.close()
    posted = {s.planned.update_id: s.t0 for s in sent}
    started: dict[int, float] = {}
    for _, fields in entries:
        with contextlib.suppress(ValueError, KeyError):
            for row in decode_rows(fields[FIELD]):
                if row.type not in HOST_ROWS and row.update_id in posted:
                    started[row.update_id] = min(started.get(row.update_id, math.inf), row.ts.timestamp())
    wait = [(at - posted[u]) * 1000 for u, at in started.items()]
    run = [(replied[u] - at) * 1000 for u, at in started.items() if u in replied]
    if not wait:
        return {}
    out = {f"wait_{q}": percentile(wait, v) for q, v in (("p50", 0.5), ("p99", 0.99))}
    out.update({f"run_{q}": percentile(run, v) for q, v in (("p50", 0.5), ("p99", 0.99))})
    return out


@dataclass
class Target:
    """A system under test as the load sees it: its bot's token on the stand-in and its processes."""

    system: str
    token: str
    cpu: CpuWatch
    redis_url: str | None = None
    """Botkiln's Redis: the executors' analytics rows split the latency (``executor_split``)."""


async def run_phase(
    target: Target,
    standin: StandIn,
    phase: str,
    answers: dict[str, str],
    *,
    first_chat: int,
    chats: int,
    updates: int,
    rate: float | None,
    connections: int,
    settle_s: float,
) -> PhaseResult:
    chat_ids = list(range(first_chat, first_chat + chats))
    standin.open_chats(target.token, chat_ids)
    plan = make_plan(chat_ids, updates)
    url, secret = standin.webhook(target.token)
    if not url:
        raise RuntimeError(f"{target.system}: no webhook registered on the stand-in")
    mark = standin.mark(target.token)
    label = f"{rate:g}/s" if rate else "max rate"
    log(f"{target.system} {phase}: {updates} updates over {chats} chats at {label}")
    before = target.cpu.snapshot()
    sent = await deliver(url, secret, plan, rate, connections)
    seen, progress = -1, time.monotonic()
    while True:
        count = standin.count_ok(target.token, "sendMessage", mark)
        if count >= len(plan):
            break
        if count != seen:
            seen, progress = count, time.monotonic()
        elif time.monotonic() - progress > settle_s:
            log(f"{target.system} {phase}: {count}/{len(plan)} replies, none for {settle_s:g} s: giving up")
            break
        await asyncio.sleep(0.1)
    cpu = CpuWatch.delta(before, target.cpu.snapshot())
    result, replied = summarize(target.system, phase, sent, standin.calls(target.token, mark), answers, cpu)
    result.rate = rate
    if target.redis_url is not None:
        result.executor_ms = executor_split(target.redis_url, sent, replied)
    log(
        f"{target.system} {phase}: {result.done_per_s:.0f} replies/s, p50 {result.latency_ms['p50']:.1f} ms, "
        f"p99 {result.latency_ms['p99']:.1f} ms, lost {result.lost}, 429s {result.flood_429}"
    )
    return result


# ---------------------------------------------------------------- subprocesses


class Proc:
    """A subprocess of the bench, its output in a log file; stopped with SIGTERM (SIGKILL after a grace)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log_file = self.log_path.open("ab")
        self.popen = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_text(errors="replace"):
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not print {text!r}:\n{self.tail()}")
            time.sleep(0.1)

    def stop(self, grace: float = 20) -> None:
        stop_all([self], grace)


def stop_all(procs: Sequence[Proc], grace: float = 20) -> None:
    """SIGTERM to every one of ``procs`` at once, then wait for each (SIGKILL after ``grace`` seconds)."""
    for proc in procs:
        if proc.alive():
            proc.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()
        proc.log_file.close()


def botkiln_argv(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "botkiln"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "botkiln", *args]


def wait_http(url: str, timeout: float = 60, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if (proc is not None and not proc.alive()) or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200" + (f":\n{proc.tail()}" if proc else ""))
        time.sleep(0.1)


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@contextlib.contextmanager
def scratch_database(admin_dsn: str) -> Iterator[tuple[str, str]]:
    name = f"botkiln_bench_{secrets.token_hex(4)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield name, with_database(admin_dsn, name)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def scratch_redis(url: str) -> Iterator[str]:
    client = redis.Redis.from_url(url)
    owner = client.get(REDIS_OWNER)
    if owner is not None and Path(f"/proc/{int(owner)}").exists():
        client.close()
        raise RuntimeError(f"{url} is in use by the bench run of pid {int(owner)}: pick another --redis-db")
    try:
        if keys := client.dbsize():
            log(f"{url} held {keys} keys: flushing it (--redis-db picks another)")
        client.flushdb()
        client.set(REDIS_OWNER, os.getpid())
        yield url
    finally:
        client.flushdb()
        client.close()


# ---------------------------------------------------------------- the two systems


@dataclass
class Options:
    updates: int
    chats: int
    rate: float
    connections: int
    burst: int
    burst_chats: int
    settle_s: float


async def phases(
    target: Target,
    standin: StandIn,
    answers: dict[str, str],
    o: Options,
    restart: Callable[[], None] | None = None,
) -> list[PhaseResult]:
    """warm-up, sustained, max (no flood limits), then outbound (Telegram's limits; ``restart`` first)."""

    async def phase(name: str, first_chat: int, chats: int, updates: int, rate: float | None) -> PhaseResult:
        return await run_phase(
            target, standin, name, answers, first_chat=first_chat, chats=chats, updates=updates, rate=rate,
            connections=o.connections, settle_s=o.settle_s,
        )  # fmt: skip

    out = [
        await phase("warm-up", 10_000, 100, 100, None),
        await phase("sustained", 20_000, o.chats, o.updates, o.rate),
        await phase("max", 30_000, o.chats, o.updates, None),
    ]
    if restart is not None:
        await asyncio.to_thread(restart)
    standin.flood_limits(True)
    try:
        out.append(await phase("outbound", 40_000, o.burst_chats, o.burst, None))
    finally:
        standin.flood_limits(False)
    return out


async def prepare_bot(
    dsn: str, settings: Settings, token: str, telegram_id: int, username: str, spec: dict[str, Any]
) -> tuple[str, str]:
    """A user, a project and the FAQ bot with its revision built, stored, recorded and active; (bot id, secret)."""
    box = SecretBox.from_setting(settings.secret_key or "")
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        owner = await users.create_user(pool, email="bench@example.com", password="bench bench bench")
        assert isinstance(owner, users.User), owner
        project = await projects.create_project(pool, name="bench", owner_id=owner.id)
        bot_id, secret = "bench-faq", new_webhook_secret()
        made = await bots.create_bot(
            pool, box, bot_id=bot_id, project_id=project.id, name="Bench FAQ", token=token, webhook_secret=secret,
            created_by=owner.id, telegram_bot_id=telegram_id, telegram_username=username,
        )  # fmt: skip
        assert isinstance(made, bots.Bot), made
        spec = copy.deepcopy(spec)
        spec["meta"]["botId"] = bot_id
        revision = await asyncio.to_thread(build_revision, spec, CompilerGenerator())
        store = build_artifact_store(settings)
        uri = await asyncio.to_thread(store.put_revision, bot_id, revision.rev_hash, revision.files)
        await revisions.record_revision(
            pool, rev=revision.rev, rev_json=revision.files["rev.json"], artifacts_uri=uri, created_by=owner.id
        )
        flipped = await bots.flip_active(pool, bot_id, None, revision.rev_hash)
        assert flipped.flipped, flipped
        return bot_id, secret
    finally:
        await pool.close()


def set_webhook(standin_url: str, token: str, url: str, secret: str) -> None:
    answer = httpx.post(f"{standin_url}/bot{token}/setWebhook", json={"url": url, "secret_token": secret}).json()
    if not answer.get("ok"):
        raise RuntimeError(f"setWebhook failed: {answer}")


def bench_botkiln(args: argparse.Namespace, standin: StandIn, spec: dict[str, Any], work: Path) -> list[PhaseResult]:
    redis_url = f"{args.redis.rstrip('/')}/{args.redis_db}"
    with scratch_database(args.pg_dsn) as (db_name, dsn), scratch_redis(redis_url):
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOTKILN_")}
        serve_port = free_port()
        serve_url = f"http://127.0.0.1:{serve_port}"
        env.update(
            BOTKILN_DATABASE_URL=dsn,
            BOTKILN_REDIS_URL=redis_url,
            BOTKILN_SECRET_KEY=generate_secret_key(),
            BOTKILN_ARTIFACTS=f"file://{work / 'artifacts'}",
            BOTKILN_ANALYTICS_URL=f"chdb://{work / 'analytics'}",
            BOTKILN_TELEGRAM_API_URL=standin.url,
            BOTKILN_PUBLIC_URL=serve_url,
        )
        fast = {**env, "BOTKILN_OUTBOUND_RATES": FAST_RATES}
        migrated = subprocess.run(botkiln_argv("db", "migrate"), env=env, cwd=ROOT, capture_output=True, text=True)
        if migrated.returncode != 0:
            raise RuntimeError(f"botkiln db migrate failed:\n{migrated.stdout}{migrated.stderr}")
        token, telegram_id, username = standin.register("bench_botkiln_bot")
        settings = Settings.from_env(env)
        bot_id, secret = asyncio.run(prepare_bot(dsn, settings, token, telegram_id, username, spec))
        procs: list[Proc] = []
        try:
            serve = Proc("serve", botkiln_argv("serve", "--port", str(serve_port)), fast, work)
            procs.append(serve)
            workers = [
                Proc(f"worker{n}", botkiln_argv("worker", "--threads", str(args.threads)), fast, work)
                for n in range(args.workers)
            ]
            procs += workers
            wait_http(f"{serve_url}/healthz", proc=serve)
            for worker in workers:
                worker.wait_for("botkiln worker:")
            set_webhook(standin.url, token, f"{serve_url}/wh/{bot_id}", secret)
            groups = {"serve": [serve.pid], "workers": [w.pid for w in workers]}
            if isinstance(standin, StandInProcess) and standin.pid is not None:
                groups["stand-in"] = [standin.pid]
            groups["bench"] = [os.getpid()]
            cpu = CpuWatch(groups, urlsplit(args.redis).port or 6379, db_name)
            target = Target("botkiln", token, cpu, redis_url)

            def restart_workers() -> None:
                log("botkiln: restarting the workers with the default outbound rates")
                stop_all(workers)
                workers[:] = [
                    Proc(f"worker{n}-default", botkiln_argv("worker", "--threads", str(args.threads)), env, work)
                    for n in range(args.workers)
                ]
                procs.extend(workers)
                for worker in workers:
                    worker.wait_for("botkiln worker:")
                cpu.groups["workers"] = [w.pid for w in workers]

            return asyncio.run(phases(target, standin, expected_texts(spec), options(args), restart_workers))
        finally:
            stopping = time.monotonic()
            stop_all(procs)
            log(f"botkiln: stopped in {time.monotonic() - stopping:.1f} s")


def bench_aiogram(args: argparse.Namespace, standin: StandIn, spec: dict[str, Any], work: Path) -> list[PhaseResult]:
    token, _, _ = standin.register("bench_aiogram_bot")
    port = free_port()
    argv = [sys.executable, str(AIOGRAM_BOT), "--token", token, "--api-url", standin.url, "--port", str(port),
            "--webhook-url", f"http://127.0.0.1:{port}/webhook", "--secret", secrets.token_urlsafe(32)]  # fmt: skip
    proc = Proc("aiogram", argv, dict(os.environ), work)
    try:
        deadline = time.monotonic() + 60
        while not standin.webhook(token)[0]:  # the bot calls setWebhook on startup
            if not proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the aiogram bot did not register its webhook:\n{proc.tail()}")
            time.sleep(0.1)
        groups = {"aiogram": [proc.pid], "bench": [os.getpid()]}
        if isinstance(standin, StandInProcess) and standin.pid is not None:
            groups["stand-in"] = [standin.pid]
        target = Target("aiogram", token, CpuWatch(groups, urlsplit(args.redis).port or 6379))
        return asyncio.run(phases(target, standin, expected_texts(spec), options(args)))
    finally:
        proc.stop()


def options(args: argparse.Namespace) -> Options:
    return Options(args.updates, args.chats, args.rate, args.connections, args.burst, args.burst_chats, args.settle)


# ---------------------------------------------------------------- report


CPU_GROUPS = ["bench", "stand-in", "serve", "workers", "aiogram", "redis", "postgres", "other"]


def _ms(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"  # NaN: no samples


def allowance_used(r: PhaseResult) -> float:
    """Messages sent over the most the stand-in lets through in the phase's span (full burst, then the rate)."""
    limits = TELEGRAM_LIMITS
    return r.replies / (limits.per_bot_burst + limits.per_bot_per_s * r.span_s)


def ratios(results: list[PhaseResult]) -> dict[str, float]:
    def get(system: str, phase: str) -> PhaseResult | None:
        return next((r for r in results if r.system == system and r.phase == phase), None)

    out: dict[str, float] = {}
    for phase in ("sustained", "max"):
        b, a = get("botkiln", phase), get("aiogram", phase)
        if b is None or a is None:
            continue
        out[f"{phase}_throughput"] = b.done_per_s / a.done_per_s
        for q in ("p50", "p99"):
            out[f"{phase}_{q}"] = b.latency_ms[q] / a.latency_ms[q]
    return out


def print_table(results: list[PhaseResult], config: dict[str, Any]) -> None:
    print(f"\nRuntime plane, {config['cpus']} CPUs (load average {config['loadavg_1min_at_start']:.2f} at start); "
          f"stand-in in {config['standin']}; "
          f"Botkiln: serve x1, worker x{config['workers']} (--threads {config['threads']})")  # fmt: skip
    print(f"commit {config['commit']}; webhook-to-sendMessage latency; {config['connections']} webhook connections"
          " at most\n")  # fmt: skip
    head = ["system", "phase", "updates", "offered/s", "done/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
            "ack p50", "lost", "dup", "order", "wh-retry", "429s"]  # fmt: skip
    print(f"{head[0]:<8} {head[1]:<10}" + "".join(f"{h:>10}" for h in head[2:]))
    for r in results:
        cells = [r.updates, f"{r.offered_per_s:.0f}", f"{r.done_per_s:.1f}", *(_ms(r.latency_ms[q]) for q in
                 ("p50", "p90", "p99", "max")), _ms(r.ack_ms["p50"]), r.lost, r.duplicates, r.out_of_order,
                 r.webhook_retries, r.flood_429]  # fmt: skip
        print(f"{r.system:<8} {r.phase:<10}" + "".join(f"{c!s:>10}" for c in cells))

    print("\nOutbound against Telegram's limit (stand-in: 30 msg/s per bot, burst 30; 1/s per chat, burst 3):")
    print(f"{'system':<8} {'sent ok':>8} {'of':>6} {'span s':>8} {'msgs/s':>8} {'÷ 30/s':>8} {'allowance':>10} "
          f"{'429s':>6} {'lost':>6} {'p50 ms':>9} {'p99 ms':>9}")  # fmt: skip
    for r in results:
        if r.phase == "outbound":
            share = r.done_per_s / TELEGRAM_LIMITS.per_bot_per_s
            print(f"{r.system:<8} {r.replies:>8} {r.updates:>6} {r.span_s:>8.1f} {r.done_per_s:>8.1f} {share:>8.0%} "
                  f"{allowance_used(r):>10.0%} {r.flood_429:>6} {r.lost:>6} {_ms(r.latency_ms['p50']):>9} "
                  f"{_ms(r.latency_ms['p99']):>9}")  # fmt: skip

    print("\nCPU time per update, ms (all cores; own = all but 'other', the rest of the machine's busy time):")
    print(f"{'system':<8} {'phase':<10} {'wall s':>7}" + "".join(f"{g:>9}" for g in CPU_GROUPS) + f"{'own':>9}")
    for r in results:
        per = {g: r.cpu_s.get(g, 0.0) * 1000 / max(r.updates, 1) for g in CPU_GROUPS}
        row = "".join(f"{per[g]:>9.2f}" if g in r.cpu_s else f"{'-':>9}" for g in CPU_GROUPS)
        own = sum(v for g, v in per.items() if g != "other")
        print(f"{r.system:<8} {r.phase:<10} {r.cpu_s['wall']:>7.1f}{row}{own:>9.2f}")

    split = [r for r in results if r.executor_ms]
    if split:
        print("\nBotkiln's latency split, ms: wait = POST to the executor's start (ingress, queue, claim),")
        print("run = executor's start to the sendMessage's arrival (from the executors' analytics rows):")
        print(f"{'phase':<10} {'wait p50':>9} {'wait p99':>9} {'run p50':>9} {'run p99':>9}")
        for r in split:
            e = r.executor_ms
            print(f"{r.phase:<10} {_ms(e['wait_p50']):>9} {_ms(e['wait_p99']):>9} {_ms(e['run_p50']):>9} "
                  f"{_ms(e['run_p99']):>9}")  # fmt: skip

    found = ratios(results)
    if found:
        print("\nBotkiln ÷ aiogram:")
        for phase in ("sustained", "max"):
            if f"{phase}_throughput" in found:
                throughput, p50, p99 = (found[f"{phase}_{k}"] for k in ("throughput", "p50", "p99"))
                print(f"  {phase:<10} throughput {throughput:.2f}x   p50 latency {p50:.2f}x   p99 latency {p99:.2f}x")


def commit() -> str:
    """The measured commit, ``+changes`` when tracked files differ from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], cwd=ROOT, capture_output=True, text=True)
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=5000, help="updates per load phase (default 5000)")
    parser.add_argument("--chats", type=int, default=200, help="chats per load phase (default 200)")
    parser.add_argument("--rate", type=float, default=100.0, help="offered updates/s of the sustained phase")
    parser.add_argument("--connections", type=int, default=40, help="webhook connections at most (Telegram: 40)")
    parser.add_argument("--burst", type=int, default=600, help="updates of the outbound phase (default 600)")
    parser.add_argument("--burst-chats", type=int, default=300, help="chats of the outbound phase (default 300)")
    parser.add_argument("--settle", type=float, default=3.0, help="give up waiting after this long without a reply")
    parser.add_argument("--systems", default="botkiln,aiogram", help="comma-separated: botkiln, aiogram")
    parser.add_argument("--workers", type=int, default=2, help="botkiln worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="--threads of each worker (default 4)")
    parser.add_argument("--standin", choices=["process", "inline"], default="process",
                        help="serve the stand-in from a child process (default) or a thread of the bench")  # fmt: skip
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a DSN allowed to CREATE and DROP DATABASE")  # fmt: skip
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server, without a db number")
    parser.add_argument("--redis-db", type=int, default=15, help="Redis db of the run, flushed before and after")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    parser.add_argument("--logs", type=Path, help="keep the subprocesses' logs in this directory")
    args = parser.parse_args()
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    spec = json.loads(FAQ_SPEC.read_text(encoding="utf-8"))
    started = time.monotonic()
    load = os.getloadavg()[0]
    standin: StandIn = StandInProcess() if args.standin == "process" else StandInHost()
    results: list[PhaseResult] = []
    try:
        with tempfile.TemporaryDirectory(prefix="botkiln-bench-") as tmp:
            for system in systems:
                work = (args.logs or Path(tmp)) / system
                work.mkdir(parents=True, exist_ok=True)
                bench = bench_botkiln if system == "botkiln" else bench_aiogram
                try:
                    results += bench(args, standin, spec, work)
                except Exception:
                    for name in sorted(work.glob("*.log")):
                        print(f"--- {name.name}\n" + "\n".join(name.read_text().splitlines()[-40:]), file=sys.stderr)
                    raise
    finally:
        standin.stop()
    config = {
        "updates": args.updates, "chats": args.chats, "rate": args.rate, "connections": args.connections,
        "burst": args.burst, "burst_chats": args.burst_chats, "workers": args.workers, "threads": args.threads,
        "standin": f"a {'child process' if args.standin == 'process' else 'thread of the bench'}",
        "cpus": os.cpu_count(), "loadavg_1min_at_start": load, "commit": commit(), "fast_rates": FAST_RATES,
        "seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip
    if args.json:
        rows = [{**asdict(r), **({"allowance_used": allowance_used(r)} if r.phase == "outbound" else {})}
                for r in results]  # fmt: skip
        print(json.dumps({"config": config, "results": rows, "ratios": ratios(results)}, indent=2))
    else:
        print_table(results, config)
        print(f"\n({config['seconds']} s in all)")


if __name__ == "__main__":
    main()
