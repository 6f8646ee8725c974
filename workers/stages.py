"""The deploy stages before the flip, as a dispatch table: stage name -> handler.

Every handler takes the runtime and the deployment's ``DeployContext``, returns a
one-line detail for the stage record, and raises ``StageFailed`` with a sentence
when the revision must not serve traffic. Failures of the outside world (store,
Redis, database unreachable) propagate as they are: the attempt retries them.

- ``preflight``: the revision row exists; the stored artifacts match rev.json
  (sha256 and size, verified by the store) and rev.json matches the row; the
  spec is valid and hashes to rev.json's specHash; bot.js passes the AST policy;
  for a deploy, bot.js passes the conformance gate again (a rollback skips it:
  the revision passed it when it was built and first deployed); the bot has a value
  for every ``{{secret.NAME}}`` its apiCall headers use (a rollback only warns: it is
  never held back).
- ``compat``: the state shape is compatible with the active revision's spec
  (``workers/compat.py``), unless forced.
- ``stage``: the verified artifacts are copied to ``botkiln:staged:<bot>:<rev>``.
- ``prewarm``: bot.js is loaded into this worker's ``SandboxPool``.
- ``health``: one synthetic update (``/start``, else the first command, else a
  greeting) through the warm sandbox, compared with the reference interpreter.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from botkiln.generator.ast_policy import check_source
from botkiln.generator.revision import MAX_BOT_JS_BYTES, allowed_domains
from botkiln.infra.db import bot_secrets, revisions
from botkiln.infra.db.deployments import Kind
from botkiln.infra.ports import ArtifactCorrupt, ArtifactMissing, StoredRevision
from botkiln.infra.redis_keys import STAGED_TTL_S, staged_revision
from botkiln.interpreter.canonical import spec_hash
from botkiln.interpreter.conformance import Script, check_conformance, derive_scripts, run_script
from botkiln.interpreter.errors import BotkilnError
from botkiln.interpreter.quickjs import PooledEngine, QuickJsEngine, SandboxError
from botkiln.interpreter.templates import secret_names
from botkiln.interpreter.validation import validate_spec
from botkiln.workers.compat import compare_state
from botkiln.workers.runtime import Runtime

_MAX_REASON = 4000


class StageFailed(BotkilnError):
    """The stage refused the revision; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:_MAX_REASON]


@dataclass
class DeployContext:
    """One deployment as the stages see it; preflight fills in the revision."""

    bot_id: str
    rev_hash: str
    kind: Kind
    force: bool
    deployment_id: int
    previous_rev: str | None
    revision: StoredRevision | None = None
    spec: dict[str, Any] | None = None
    source: str | None = None

    def loaded(self) -> tuple[StoredRevision, dict[str, Any], str]:
        """The revision, spec and bot.js preflight loaded."""
        assert self.revision is not None and self.spec is not None and self.source is not None
        return self.revision, self.spec, self.source


async def preflight(rt: Runtime, ctx: DeployContext) -> str:
    record = await revisions.get_revision(rt.db, ctx.bot_id, ctx.rev_hash)
    if record is None:
        raise StageFailed(f"bot {ctx.bot_id} has no revision {ctx.rev_hash}; generate it first")
    try:
        stored = await asyncio.to_thread(rt.store.get_revision, ctx.bot_id, ctx.rev_hash)
    except (ArtifactMissing, ArtifactCorrupt) as exc:
        raise StageFailed(f"artifacts: {exc}") from None
    rev_json = stored.files["rev.json"]
    digest = record.artifacts["rev.json"]
    if (hashlib.sha256(rev_json).hexdigest(), len(rev_json)) != (digest.sha256, digest.size):
        raise StageFailed(f"artifacts: the stored rev.json of {ctx.rev_hash} differs from the recorded one")
    spec, source, detail = await asyncio.to_thread(_verify, stored, ctx.kind)
    ctx.revision, ctx.spec, ctx.source = stored, spec, source
    missing = await bot_secrets.missing_secrets(rt.db, ctx.bot_id, secret_names(spec))
    if missing and ctx.kind != "rollback":
        raise StageFailed(
            f"the apiCall headers need secrets the bot does not have: {', '.join(missing)}; "
            "set them first (setBotSecret, or the console's Secrets panel)"
        )
    if missing:  # a rollback is never held back: its apiCalls send those headers empty
        detail += f"; warning: secrets not set: {', '.join(missing)}"
    return detail


def _verify(stored: StoredRevision, kind: Kind) -> tuple[dict[str, Any], str, str]:
    spec: dict[str, Any] = json.loads(stored.files["spec.json"])
    errors = validate_spec(spec)
    if errors:
        raise StageFailed(
            f"spec.json is invalid: {errors[0]}" + (f" (and {len(errors) - 1} more)" if errors[1:] else "")
        )
    if spec_hash(spec) != stored.rev.get("specHash") or spec["meta"]["botId"] != stored.bot_id:
        raise StageFailed("spec.json does not hash to rev.json's specHash or names another bot")
    try:
        source = stored.files["bot.js"].decode("utf-8")
    except UnicodeDecodeError:
        raise StageFailed("bot.js is not UTF-8") from None
    policy = check_source(source, allowed_domains=allowed_domains(spec), max_bytes=MAX_BOT_JS_BYTES)
    if not policy.ok:
        raise StageFailed(f"AST policy: {policy.render()}")
    if kind == "rollback":
        return spec, source, "artifacts verified, spec valid, AST policy passed (conformance passed at build)"
    try:
        report = check_conformance(spec, QuickJsEngine(source), derive_scripts(spec))
    except SandboxError as exc:
        raise StageFailed(f"conformance: bot.js does not load in QuickJS: {exc}") from None
    if report.divergence is not None:
        raise StageFailed(f"conformance: {report.divergence.render()}")
    return (
        spec,
        source,
        (
            f"artifacts verified, spec valid, AST policy passed, conformance: {report.scripts} conversations, "
            f"{report.calls} calls agreed"
        ),
    )


async def compat(rt: Runtime, ctx: DeployContext) -> str:
    _, spec, _ = ctx.loaded()
    if ctx.previous_rev is None:
        return "first deployment: no state to keep"
    if ctx.previous_rev == ctx.rev_hash:
        return "the same revision is active"
    try:
        active = await asyncio.to_thread(rt.store.get_revision, ctx.bot_id, ctx.previous_rev)
    except (ArtifactMissing, ArtifactCorrupt) as exc:
        if ctx.force:
            return f"forced: the active revision could not be read ({exc})"
        raise StageFailed(f"cannot compare with the active revision {ctx.previous_rev}: {exc}") from None
    report = compare_state(json.loads(active.files["spec.json"]), spec)
    if report.ok:
        return report.describe()
    if ctx.force:
        return f"forced: {report.describe()}"
    raise StageFailed(f"{report.describe()}; deploy with forceIncompatible to override")


async def stage(rt: Runtime, ctx: DeployContext) -> str:
    revision, _, _ = ctx.loaded()
    key = staged_revision(ctx.bot_id, ctx.rev_hash)
    async with rt.redis.pipeline(transaction=True) as pipe:
        for name, data in revision.files.items():
            pipe.hset(key, name, data)
        pipe.expire(key, STAGED_TTL_S)
        await pipe.execute()
    size = sum(len(data) for data in revision.files.values())
    return f"{size} bytes staged at {key}"


async def prewarm(rt: Runtime, ctx: DeployContext) -> str:
    _, _, source = ctx.loaded()
    try:
        loaded = await asyncio.to_thread(rt.sandboxes.prewarm, ctx.rev_hash, source)
    except SandboxError as exc:
        raise StageFailed(f"bot.js does not load in a sandbox: {exc}") from None
    return "sandbox loaded" if loaded else "sandbox already warm"


def synthetic_update(spec: dict[str, Any]) -> dict[str, Any]:
    """The health check's update (a short form of ``Conversation``)."""
    commands = [c["command"] for c in spec.get("commands", [])]
    if commands:
        return {"text": "/start" if "start" in commands else f"/{commands[0]}", "chat": 1}
    return {"text": "hello", "chat": 1}


async def health(rt: Runtime, ctx: DeployContext) -> str:
    _, spec, source = ctx.loaded()
    update = synthetic_update(spec)
    engine = PooledEngine(rt.sandboxes, ctx.rev_hash, source)
    _, calls, divergence = await asyncio.to_thread(run_script, spec, engine, Script("health", [update]))
    if divergence is not None:
        raise StageFailed(f"the answer to {update['text']!r} differs from the reference: {divergence.render()}")
    return f"{update['text']!r}: {calls} call(s) identical to the reference interpreter"


StageHandler = Callable[[Runtime, DeployContext], Awaitable[str]]

STAGE_HANDLERS: dict[str, StageHandler] = {
    "preflight": preflight,
    "compat": compat,
    "stage": stage,
    "prewarm": prewarm,
    "health": health,
}
"""Every stage before ``flip`` (which ``workers/deploy.py`` runs in one transaction)."""
