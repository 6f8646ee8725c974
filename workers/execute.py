"""execute(): the Dramatiq actor that drains chat queues, and how work reaches it.

- The ingress calls ``ChatReady.notify`` when an enqueue made a chat ready (its queue was
  empty): a wake token for executors lingering in ``drain`` (instant), and, unless more drains
  are lingering than tokens are waiting (``wake.lua``), an ``execute`` message for a worker
  thread (the message is only a wake-up: the chat queue is the truth, an extra message costs
  one empty claim). Skipping the message when a drain waits saves its enqueue, fetch, ack and
  dispatch; if that drain gave up in between, the chat waits for the next claim or the pump.
- ``execute`` drains until no chat is ready; when its budget runs out first it sends
  itself again, so one message never holds a thread for long.
- ``pump`` runs in every worker process: at most once per interval across all of them
  (a Redis ``SET NX PX`` key), if chats are ready or leases have expired (a dead
  executor's chat), it pushes wake tokens and sends a message. A lost notification or a
  crashed executor therefore delays an update by at most a lease plus an interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import dramatiq
from redis.asyncio import Redis

from botkiln.infra.lua_scripts import lua_script
from botkiln.infra.redis_keys import PREFIX, ChatQueueKeys, RuntimeKeys
from botkiln.workers.executor import Executor

_log = logging.getLogger(__name__)

ACTOR = "botkiln.execute"
RUNTIME_QUEUE = "runtime"
MAX_WAKE_TOKENS = 256
LINGER_MARGIN_MS = 100
"""A drain this close to the end of its wait is not counted on to take a token."""
TIME_LIMIT_MS = 3_600_000
"""An update may wait long on Telegram's ``retry_after``; the drain budget keeps messages short otherwise."""

ExecutorSource = Callable[[], Executor]


def declare(broker: dramatiq.Broker, executor: ExecutorSource) -> dramatiq.Actor[[], None]:
    """Declare ``execute`` on ``broker``'s runtime queue."""

    async def execute() -> None:
        drained = await executor().drain()
        if drained.more:
            await asyncio.to_thread(actor.send)

    actor: dramatiq.Actor[[], None] = dramatiq.actor(
        broker=broker, actor_name=ACTOR, queue_name=RUNTIME_QUEUE, max_retries=0, time_limit=TIME_LIMIT_MS
    )(execute)
    return actor


async def wake(redis: Redis, keys: RuntimeKeys, tokens: int = 1) -> None:
    """Push ``tokens`` wake tokens (the list stays capped)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.lpush(keys.wake, *([b"1"] * tokens))
        pipe.ltrim(keys.wake, 0, MAX_WAKE_TOKENS - 1)
        await pipe.execute()


async def send_execute(broker: dramatiq.Broker) -> None:
    """Send one ``execute`` message (off the event loop: Dramatiq's broker is synchronous)."""
    await asyncio.to_thread(broker.get_actor(ACTOR).send)


class ChatReady:
    """The ingress's hook: a chat became ready."""

    def __init__(self, redis: Redis, broker: dramatiq.Broker, *, prefix: str = PREFIX) -> None:
        self._redis = redis
        self._broker = broker
        self._keys = RuntimeKeys(prefix)
        self._wake = lua_script(redis, "wake")

    async def notify(self) -> bool:
        """Wake an idle executor, and send a message unless a lingering one takes the token.

        True if a message was sent. Failures are logged (the pump catches up).
        """
        try:
            keys = [self._keys.wake, self._keys.lingering]
            if int(await self._wake(keys=keys, args=[MAX_WAKE_TOKENS, LINGER_MARGIN_MS])):
                return False
            await send_execute(self._broker)
        except Exception as exc:
            _log.warning("could not notify executors (%s); the pump will", type(exc).__name__)
            return False
        return True


async def pump_once(redis: Redis, broker: dramatiq.Broker, *, prefix: str = PREFIX, interval_ms: int = 1000) -> bool:
    """One pump pass (see the module docstring); True if it found work and sent a wake-up."""
    keys, queue_keys = RuntimeKeys(prefix), ChatQueueKeys(prefix)
    if not await redis.set(keys.pump, b"1", nx=True, px=interval_ms):
        return False
    now_ms = int(time.time() * 1000)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(queue_keys.ready)
        pipe.zcount(queue_keys.leases, "-inf", now_ms)
        ready, expired = await pipe.execute()
    work = int(ready) + int(expired)
    if not work:
        return False
    await wake(redis, keys, min(work, MAX_WAKE_TOKENS))
    await send_execute(broker)
    return True


async def pump(redis: Redis, broker: dramatiq.Broker, *, prefix: str = PREFIX, interval_s: float = 1.0) -> None:
    """Run ``pump_once`` every ``interval_s`` until cancelled."""
    while True:
        try:
            await pump_once(redis, broker, prefix=prefix, interval_ms=int(interval_s * 1000))
        except Exception as exc:
            _log.warning("runtime pump pass failed (%s)", type(exc).__name__)
        await asyncio.sleep(interval_s)
