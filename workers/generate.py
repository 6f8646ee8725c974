"""generate(task): a spec version -> a revision (artifacts stored, revision row recorded).

Payload: ``{"specVersion": n, "generator": "compiler" | "llm"}``. The attempt loads
the spec version, computes the revHash from the deterministic build inputs and,
when that revision is already recorded and stored, finishes at once (``reused``):
the same spec with the same build inputs never builds twice. Otherwise it runs
``build_revision`` (AST policy and conformance gates) off the event loop, stores
the artifacts create-only (an identical copy already there is fine) and records
the row. Result: ``{"revHash", "reused"}``. Events: GenerateStarted,
GenerateProgress{message}, GenerateSucceeded{revHash} or GenerateFailed{reason}.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import dramatiq

from botkiln.generator.generators import build_generator
from botkiln.generator.revision import BuildFailed, Revision, build_revision, rev_hash
from botkiln.infra.db import revisions, specs
from botkiln.infra.ports import ArtifactCorrupt, ArtifactExists, ArtifactMissing
from botkiln.infra.progress import EventType, progress_event
from botkiln.infra.settings import SettingsError
from botkiln.interpreter.errors import SpecInvalid
from botkiln.workers.attempt import CONTROL_QUEUE, MAX_RETRIES, Attempt, TaskFailed, retry_when, run_attempt
from botkiln.workers.runtime import Runtime, RuntimeSource

KIND = "generate"
ACTOR = "botkiln.generate"
_MAX_REASON = 4000


async def run_generate(rt: Runtime, task_id: UUID) -> None:
    """Run one attempt of a generate task."""
    await run_attempt(rt, task_id, KIND, _generate, _failed)


def _event(attempt: Attempt, type: EventType, **fields: Any) -> Any:
    assert attempt.task.bot_id is not None
    return progress_event(type, bot_id=attempt.task.bot_id, task_id=attempt.task_id, **fields)


async def _generate(attempt: Attempt) -> None:
    rt, task = attempt.rt, attempt.task
    bot_id, version = task.bot_id, int(task.payload["specVersion"])
    name = str(task.payload.get("generator", "compiler"))
    assert bot_id is not None
    await attempt.emit(_event(attempt, "GenerateStarted", message=f"spec version {version}, generator {name}"))
    saved = await specs.get_spec_version(rt.db, bot_id, version)
    if saved is None:
        raise TaskFailed(f"bot {bot_id} has no spec version {version}")
    spec = saved.spec
    if spec.get("meta", {}).get("botId") != bot_id:
        raise TaskFailed(f"spec version {version} names bot {spec.get('meta', {}).get('botId')!r}, not {bot_id!r}")
    try:
        generator = build_generator(name)
    except KeyError:
        raise TaskFailed(f"unknown generator {name!r}; use compiler or llm") from None
    except SettingsError as exc:
        raise TaskFailed(str(exc)) from None
    expected = rev_hash(spec, generator)
    recorded = await revisions.get_revision(rt.db, bot_id, expected)
    if recorded is not None and await asyncio.to_thread(rt.store.exists, bot_id, expected):
        await attempt.complete(rt.db, {"revHash": expected, "reused": True})
        await attempt.emit(_event(attempt, "GenerateSucceeded", rev_hash=expected, message="already built"))
        return
    revision = await _build(attempt, spec, generator, version)
    attempt.check()
    await attempt.emit(_event(attempt, "GenerateProgress", message="storing artifacts"))
    files, rev, uri = await _store(rt, bot_id, revision)
    await revisions.record_revision(
        rt.db, rev=rev, rev_json=files["rev.json"], artifacts_uri=uri, created_by=task.actor_id
    )
    await attempt.complete(rt.db, {"revHash": revision.rev_hash, "reused": False})
    await attempt.emit(_event(attempt, "GenerateSucceeded", rev_hash=revision.rev_hash))


async def _build(attempt: Attempt, spec: dict[str, Any], generator: Any, version: int) -> Revision:
    """``build_revision`` in a thread; its progress lines become GenerateProgress events, in order."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    async def pump() -> None:
        while (line := await lines.get()) is not None:
            await attempt.emit(_event(attempt, "GenerateProgress", message=line))

    def progress(line: str) -> None:
        loop.call_soon_threadsafe(lines.put_nowait, line)

    pumping = asyncio.create_task(pump())
    try:
        return await asyncio.to_thread(
            build_revision,
            spec,
            generator,
            spec_version=version,
            max_attempts=getattr(generator, "max_attempts", 1),
            progress=progress,
        )
    except SpecInvalid as exc:
        shown = "; ".join(str(e) for e in exc.errors[:10])
        more = f" (and {len(exc.errors) - 10} more)" if len(exc.errors) > 10 else ""
        raise TaskFailed(f"the spec is invalid: {shown}{more}"[:_MAX_REASON]) from None
    except BuildFailed as exc:
        raise TaskFailed(f"build failed at {exc.stage}: {exc.detail}"[:_MAX_REASON], stage=exc.stage) from None
    finally:
        lines.put_nowait(None)
        await pumping


async def _store(rt: Runtime, bot_id: str, revision: Revision) -> tuple[dict[str, bytes], dict[str, Any], str]:
    """Store the artifacts; if another build stored this revHash first, use that copy."""
    try:
        uri = await asyncio.to_thread(rt.store.put_revision, bot_id, revision.rev_hash, revision.files)
        return revision.files, revision.rev, uri
    except ArtifactExists:
        try:
            stored = await asyncio.to_thread(rt.store.get_revision, bot_id, revision.rev_hash)
        except (ArtifactMissing, ArtifactCorrupt) as exc:
            raise TaskFailed(f"revision {revision.rev_hash} is partly stored with other bytes: {exc}") from None
        return dict(stored.files), dict(stored.rev), stored.uri


async def _failed(attempt: Attempt, failure: TaskFailed) -> None:
    await attempt.emit(_event(attempt, "GenerateFailed", reason=failure.reason, stage=failure.stage))


def declare(broker: dramatiq.Broker, runtime: RuntimeSource) -> dramatiq.Actor[[str], None]:
    """Declare the generate actor on ``broker``."""

    async def generate(task_id: str) -> None:
        await run_generate(runtime(), UUID(task_id))

    return dramatiq.actor(
        broker=broker,
        actor_name=ACTOR,
        queue_name=CONTROL_QUEUE,
        max_retries=MAX_RETRIES,
        min_backoff=1_000,
        max_backoff=60_000,
        retry_when=retry_when,
        time_limit=15 * 60_000,
    )(generate)
