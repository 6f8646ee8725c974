"""Webhook traffic as Telegram sends it: per chat in order, many chats at once, spread over the ingresses.

``Telegram.send`` delivers a plan (``echo.plan``) with ``in_flight`` requests at most, each
chat's next update only after its previous one was answered 200, and each request to the
next ingress in turn. Like Telegram it retries what was not accepted: after ``Retry-After``
for 429 and 503, with a short backoff after a network error. Any other answer to a valid
update is a failure of the test. ``post`` sends one raw request (the faults tests use it
for what Telegram would never send).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field

import httpx

from botkiln.graphql.ingress import SECRET_HEADER
from tests.runtime.echo import EchoBot, Planned

GIVE_UP_S = 60.0
"""A valid update not accepted within this long fails the test."""


@dataclass
class Sent:
    """What delivering a plan took: when each update was first posted and accepted, every status seen."""

    posted_at: dict[int, float] = field(default_factory=dict)
    accepted_at: dict[int, float] = field(default_factory=dict)
    statuses: Counter[int | str] = field(default_factory=Counter)
    started: float = 0.0
    finished: float = 0.0

    @property
    def seconds(self) -> float:
        """From the first POST to the last acceptance."""
        return self.finished - self.started


class Telegram:
    """The sending side of Telegram for one bot, over the ingress ``urls`` (an async context manager)."""

    def __init__(self, urls: list[str], bot: EchoBot, *, in_flight: int = 32) -> None:
        self.bot = bot
        self.in_flight = in_flight
        self._urls: Iterator[str] = itertools.cycle(urls)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0),
            limits=httpx.Limits(max_connections=in_flight + 8, max_keepalive_connections=in_flight + 8),
        )

    async def __aenter__(self) -> Telegram:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def post(
        self, body: bytes | AsyncIterator[bytes], *, secret: str | None = "", bot_id: str | None = None
    ) -> httpx.Response:
        """One POST to the next ingress with the bot's secret, or ``secret`` (None: no header).

        A ``body`` that is an iterator goes out chunked, without ``Content-Length``.
        """
        headers = {"content-type": "application/json"}
        secret = self.bot.secret if secret == "" else secret
        if secret is not None:
            headers[SECRET_HEADER] = secret
        url = f"{next(self._urls)}/wh/{bot_id or self.bot.bot_id}"
        return await self._http.post(url, content=body, headers=headers)

    async def deliver(self, update: Planned, sent: Sent) -> None:
        """Post ``update`` until it is accepted (200), retrying as Telegram does."""
        sent.posted_at[update.update_id] = time.time()
        deadline = time.monotonic() + GIVE_UP_S
        failures = 0
        while True:
            try:
                response = await self.post(update.body)
            except httpx.TransportError as exc:
                sent.statuses[type(exc).__name__] += 1
                failures += 1
                wait = min(2.0, 0.05 * 2**failures)
            else:
                sent.statuses[response.status_code] += 1
                if response.status_code == 200:
                    sent.accepted_at[update.update_id] = time.time()
                    return
                if response.status_code not in (429, 503):
                    raise AssertionError(
                        f"update {update.update_id} answered {response.status_code} {response.text[:200]}"
                    )
                wait = float(response.headers.get("retry-after", "1"))
            if time.monotonic() + wait > deadline:
                raise AssertionError(f"update {update.update_id} not accepted within {GIVE_UP_S}s ({sent.statuses})")
            await asyncio.sleep(wait)

    async def send(self, planned: Mapping[int, list[Planned]], sent: Sent | None = None) -> Sent:
        """Deliver every planned update: chats interleaved, each chat's in order, ``in_flight`` at once."""
        sent = sent if sent is not None else Sent()
        chats: deque[deque[Planned]] = deque(deque(items) for items in planned.values() if items)
        sent.started = time.time()

        async def lane() -> None:
            while chats:
                pending = chats.popleft()
                await self.deliver(pending.popleft(), sent)
                if pending:
                    chats.append(pending)

        await asyncio.gather(*(lane() for _ in range(self.in_flight)))
        sent.finished = time.time()
        return sent
