"""Every Redis key and channel Botkiln uses, in one place (STYLE rule 7).

| key or channel | type | meaning |
|---|---|---|
| ``botkiln:progress:bot:<botId>`` | pub/sub channel | progress events of one bot's tasks (``infra/progress.py``) |
| ``botkiln:progress:all`` | pub/sub channel | the same events for every bot |
| ``botkiln:flips`` | pub/sub channel | ``{botId, revHash}`` after every flip: runtime nodes drop what they cached |
| ``botkiln:staged:<botId>:<revHash>`` | hash, TTL 7 days | a deploy's verified artifacts by file name (a) |
| ``botkiln-dramatiq:*`` | Dramatiq's own | the broker's queues, delay queues, acks, heartbeats (b) |

(a) fields ``bot.js``, ``spec.json``, ``rev.json``: runtime nodes load a staged
revision from here without going to the artifact store.
(b) ``DRAMATIQ_NAMESPACE``; tests pass their own namespace to ``build_broker``.

Pub/sub channels ignore the database number: every process on one Redis server
shares them, so subscribers filter by bot id rather than rely on a database.
"""

from __future__ import annotations

PREFIX = "botkiln"

PROGRESS_ALL = f"{PREFIX}:progress:all"
"""Channel: every bot's progress events."""

FLIPS = f"{PREFIX}:flips"
"""Channel: revision-flip invalidations ``{"botId", "revHash"}``."""

DRAMATIQ_NAMESPACE = f"{PREFIX}-dramatiq"
"""Prefix of the keys Dramatiq's Redis broker owns."""

STAGED_TTL_S = 7 * 24 * 3600
"""How long a staged copy of a revision stays in Redis."""


def progress_channel(bot_id: str) -> str:
    """Channel: one bot's progress events."""
    return f"{PREFIX}:progress:bot:{bot_id}"


def staged_revision(bot_id: str, rev_hash: str) -> str:
    """Hash: a staged revision's artifacts, by file name."""
    return f"{PREFIX}:staged:{bot_id}:{rev_hash}"
