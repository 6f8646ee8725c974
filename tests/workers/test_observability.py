"""Deploys and rollbacks through a real worker: stage histograms, outcome counters, spans across Dramatiq.

``serve``'s metrics endpoint is tested in test_worker_metrics.py: Dramatiq's event loop is one per
process, so a second worker must not run beside this module's.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import dramatiq
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from botkiln.infra.db import Pool
from botkiln.infra.metrics import REGISTRY
from botkiln.infra.tracing import start_span
from botkiln.workers import enqueue_deploy, enqueue_rollback
from botkiln.workers.deploy_policy import STAGES
from tests.workers.support import created, deployed, generated, new_bot, spec_for, wait_task

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("worker")]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def finished_span(spans: InMemorySpanExporter, name: str, within: float = 10.0) -> ReadableSpan:
    """The span ``name`` once it ended (the worker ends its consumer span after the task's last write)."""
    for _ in range(int(within / 0.05)):
        found = [s for s in spans.get_finished_spans() if s.name == name]
        if found:
            return found[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no span {name!r} in {[s.name for s in spans.get_finished_spans()]}")


async def test_a_deploy_is_traced_from_its_enqueuer_through_every_stage_and_measured(
    pool: Pool, broker: dramatiq.Broker, owner: tuple[UUID, UUID], spans: InMemorySpanExporter
) -> None:
    # Given a generated revision and the counters as they are
    bot_id = await new_bot(pool, owner)
    rev = await generated(pool, broker, bot_id, spec_for(bot_id))
    stages = {s: sample("botkiln_deploy_stage_seconds_count", stage=s) for s in STAGES}
    succeeded = sample("botkiln_deploys_total", outcome="succeeded")
    spans.clear()
    # When it is deployed from inside a span (as the API's mutation does)
    with start_span("request") as request:
        task = created(
            await enqueue_deploy(pool, broker, bot_id=bot_id, rev_hash=rev, user_id=owner[0], idempotency_key="o1")
        )
    assert (await wait_task(pool, task.id)).status == "succeeded"
    consumer = await finished_span(spans, "dramatiq botkiln.deploy")
    # Then the worker's span continues the request's trace, the deploy span is its child and each stage the deploy's
    trace_id = request.get_span_context().trace_id
    assert consumer.kind == SpanKind.CONSUMER and consumer.context is not None and consumer.parent is not None
    assert (consumer.context.trace_id, consumer.parent.span_id) == (trace_id, request.get_span_context().span_id)
    deploy = next(s for s in spans.get_finished_spans() if s.name == "deploy")
    assert deploy.parent is not None and deploy.parent.span_id == consumer.context.span_id
    assert deploy.attributes is not None and deploy.attributes["botkiln.revision"] == rev
    assert deploy.context is not None
    deploy_id = deploy.context.span_id
    children = [s for s in spans.get_finished_spans() if s.parent is not None and s.parent.span_id == deploy_id]
    assert [s.name for s in sorted(children, key=lambda s: s.start_time or 0)] == [f"deploy.{s}" for s in STAGES]
    # And each stage was timed once, and the deploy counted as succeeded
    assert {s: sample("botkiln_deploy_stage_seconds_count", stage=s) - stages[s] for s in STAGES} == dict.fromkeys(
        STAGES, 1
    )
    assert sample("botkiln_deploys_total", outcome="succeeded") - succeeded == 1
    # And the runtime's warm pool is counted: the deploy pre-warmed the revision
    assert sample("botkiln_sandbox_pool_size") >= 1


async def test_a_refused_deploy_counts_as_failed_and_a_rollback_as_rolled_back(
    pool: Pool, broker: dramatiq.Broker, owner: tuple[UUID, UUID]
) -> None:
    # Given a bot with two revisions deployed one after the other
    bot_id = await new_bot(pool, owner)
    first = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="Hello"))
    second = await generated(pool, broker, bot_id, spec_for(bot_id, greeting="Hi"))
    assert (await deployed(pool, broker, bot_id, first)).status == "succeeded"
    assert (await deployed(pool, broker, bot_id, second)).status == "succeeded"
    failed = sample("botkiln_deploys_total", outcome="failed")
    rolled_back = sample("botkiln_deploys_total", outcome="rolled_back")
    rollbacks = sample("botkiln_rollback_seconds_count")
    # When a revision that does not exist is deployed, then the last flip is undone
    missing = await deployed(pool, broker, bot_id, "0" * 64)
    assert missing.status == "failed"
    task = created(await enqueue_rollback(pool, broker, bot_id=bot_id, user_id=owner[0], idempotency_key="r1"))
    assert (await wait_task(pool, task.id)).status == "succeeded"
    # Then one deploy failed and one rollback flipped, its duration observed
    assert sample("botkiln_deploys_total", outcome="failed") - failed == 1
    assert sample("botkiln_deploys_total", outcome="rolled_back") - rolled_back == 1
    assert sample("botkiln_rollback_seconds_count") - rollbacks == 1
    assert sample("botkiln_rollback_seconds_sum") > 0
