"""End to end in one process: stand-in user → webhook ingress → chat queue → Dramatiq executor → stand-in."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import dramatiq
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from botkiln.graphql.app import build_app
from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.db import Pool
from botkiln.infra.metrics import REGISTRY
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_standin import BotApiStandIn, StandInBot, Webhook
from botkiln.infra.telegram_standin_updates import chat, user_callback, user_command, user_message
from botkiln.workers import WorkerOptions
from tests.conftest import minimal_spec
from tests.graphql.support import ServerThread
from tests.services import delete_keys
from tests.workers.runtime_support import activate, live_bot, served_standin
from tests.workers.support import SECRET_KEY

pytestmark = pytest.mark.anyio

PREFIX = f"test-e2e-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandIn]:
    made, server = served_standin()
    yield made
    server.stop()


@pytest.fixture(scope="module")
def settings(database: str, artifacts_dir: Path, redis_url: str, standin: BotApiStandIn) -> Iterator[Settings]:
    """The module's services, a secret key (executors decrypt tokens) and the stand-in as Telegram."""
    yield Settings(
        database_url=database, artifacts_url=f"file://{artifacts_dir}", redis_url=redis_url, secret_key=SECRET_KEY,
        telegram_api_url=standin.url, outbound_rates=(("bot_per_s", 1000.0), ("chat_per_s", 200.0)),
        executor_lease_ms=2000,
    )  # fmt: skip
    delete_keys(redis_url, f"{PREFIX}:*")


@pytest.fixture(scope="module")
def options() -> WorkerOptions:
    return WorkerOptions(redis_prefix=PREFIX, recovery_interval_s=0, pump_interval_s=0.2, active_ttl_s=0.5)


@pytest.fixture(scope="module")
def api(settings: Settings, broker: dramatiq.Broker, worker: dramatiq.Worker) -> Iterator[str]:
    server = ServerThread()
    server.start(build_app(settings, broker=broker, redis_prefix=f"{PREFIX}:"))
    yield server.url
    server.stop()


async def _bot(pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn, api: str,
               spec_name: str = "minimal") -> tuple[StandInBot, str]:  # fmt: skip
    bot = standin.register()
    secret = secrets.token_hex(16)
    bot_id = await live_bot(pool, owner, bot.token, username=bot.username, webhook_secret=secret)
    spec = minimal_spec()
    spec["meta"]["botId"] = bot_id
    spec["flows"][0]["steps"][0] = {
        "id": "hello", "type": "reply", "text": "hello",
        "buttons": {"inline": [[{"text": "hello", "data": "again"}]]},
    }  # fmt: skip
    spec["callbacks"] = [{"data": "again", "flow": "main"}]
    await activate(pool, store, bot_id, spec)
    bot.webhook = Webhook(url=f"{api}/wh/{bot_id}", secret_token=secret)
    return bot, bot_id


def _replies(standin: BotApiStandIn, bot: StandInBot, chat_id: int) -> list[str]:
    return [
        str(c.params.get("text"))
        for c in standin.calls(bot, "sendMessage")
        if c.ok and int(c.params["chat_id"]) == chat_id
    ]


async def _until(check: object, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("the bot did not answer in time")
        await asyncio.sleep(0.02)


async def test_webhook_updates_reach_telegram_through_the_workers(
    pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn, api: str
) -> None:
    bot, _ = await _bot(pool, store, owner, standin, api)
    standin.open_chat(bot, chat(5))
    delivery = await standin.asend_update(bot, user_command(f"/start@{bot.username}", chat_id=5))
    assert delivery.delivered and delivery.attempts == [200]
    await _until(lambda: len(_replies(standin, bot, 5)) == 2)
    assert _replies(standin, bot, 5) == ["Hello", "Your name?"]
    first = standin.calls(bot, "sendMessage")[0]
    assert first.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "again"
    await standin.asend_update(bot, user_message(5, "Grace"))
    await _until(lambda: len(_replies(standin, bot, 5)) == 3)
    assert _replies(standin, bot, 5)[-1] == "Bye Grace"


async def test_a_callback_is_answered_and_an_update_for_another_bot_never_crosses(
    pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn, api: str
) -> None:
    bot, _ = await _bot(pool, store, owner, standin, api)
    other, _ = await _bot(pool, store, owner, standin, api)
    for b in (bot, other):
        standin.open_chat(b, chat(6))
    await standin.asend_update(bot, user_command("/start", chat_id=6))
    await _until(lambda: len(_replies(standin, bot, 6)) == 2)
    message_id = standin.calls(bot, "sendMessage")[0].result["message_id"]
    await standin.asend_update(bot, user_callback("again", message_id, chat_id=6))
    await _until(lambda: len(standin.calls(bot, "answerCallbackQuery")) == 1 and len(_replies(standin, bot, 6)) == 4)
    assert _replies(standin, bot, 6) == ["Hello", "Your name?", "Hello", "Your name?"]
    assert standin.calls(other) == []


async def test_many_chats_in_parallel_each_in_order(
    pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn, api: str
) -> None:
    bot, _ = await _bot(pool, store, owner, standin, api)
    chats = list(range(300, 340))
    for chat_id in chats:
        standin.open_chat(bot, chat(chat_id))

    async def converse(chat_id: int) -> None:
        for text in ("/start", f"name{chat_id}", "/start", f"again{chat_id}"):
            update = user_command(text, chat_id=chat_id) if text.startswith("/") else user_message(chat_id, text)
            assert (await standin.asend_update(bot, update)).delivered

    await asyncio.gather(*(converse(c) for c in chats))
    await _until(lambda: sum(len(_replies(standin, bot, c)) for c in chats) == 6 * len(chats), within=60)
    for chat_id in chats:
        replies = _replies(standin, bot, chat_id)
        # Per-chat order: each answer follows its own question, whatever the interleaving across chats.
        assert replies == ["Hello", "Your name?", f"Bye name{chat_id}", "Hello", "Your name?", f"Bye again{chat_id}"]


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_webhook_is_traced_to_its_telegram_calls_and_measured(
    pool: Pool, store: FsArtifactStore, owner: tuple[UUID, UUID], standin: BotApiStandIn, api: str,
    spans: InMemorySpanExporter,
) -> None:  # fmt: skip
    # Given a live bot, tracing on, and the counters as they are
    bot, _ = await _bot(pool, store, owner, standin, api)
    standin.open_chat(bot, chat(9))
    done = _sample("botkiln_updates_total", {"outcome": "done"})
    sent = _sample("botkiln_outbound_sends_total", {"outcome": "sent"})
    steps = _sample("botkiln_executor_seconds_count", {"phase": "sandbox_step"})
    # When Telegram delivers /start
    await standin.asend_update(bot, user_command("/start", chat_id=9))
    await _until(lambda: len(_replies(standin, bot, 9)) == 2)
    await _until(lambda: len([s for s in spans.get_finished_spans() if s.name == "update"]) == 1)
    # Then one trace links the webhook, the update's execution and both Telegram calls
    finished = spans.get_finished_spans()
    webhook = next(s for s in finished if s.name == "webhook")
    update = next(s for s in finished if s.name == "update")
    calls = [s for s in finished if s.name == "telegram.sendMessage"]
    assert update.parent is not None and update.parent.span_id == webhook.context.span_id
    assert len(calls) == 2 and {s.context.trace_id for s in [*calls, update]} == {webhook.context.trace_id}
    assert any(s.name == "sandbox.step" and s.context.trace_id == webhook.context.trace_id for s in finished)
    # ... and the executor's metrics counted it
    assert _sample("botkiln_updates_total", {"outcome": "done"}) - done == 1
    assert _sample("botkiln_outbound_sends_total", {"outcome": "sent"}) - sent == 2
    assert _sample("botkiln_executor_seconds_count", {"phase": "sandbox_step"}) - steps >= 1
