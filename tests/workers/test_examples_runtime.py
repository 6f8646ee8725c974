"""The example bots' golden conversations through the real runtime: queue → executor → QuickJS → stand-in.

Each event of ``tests/examples/NAME.events.jsonl`` is expanded as ``botkiln simulate``
expands it, queued, and handled by the executor on the compiled revision with the
example's API fixture and the conversation's clock. The Bot API calls the stand-in
receives, and the chat state left in Redis, must equal the golden line exactly.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.db import Pool
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_standin import BotApiStandIn
from botkiln.infra.telegram_standin_updates import chat
from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.engine import Interpreter
from botkiln.workers import WorkerOptions
from botkiln.workers.active import ActiveBot
from botkiln.workers.runtime import build_executor, open_runtime
from tests.examples.test_golden import EXAMPLES, EXAMPLES_DIR, HERE, _events
from tests.services import delete_keys
from tests.workers.runtime_support import activate, live_bot, served_standin
from tests.workers.support import SECRET_KEY

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandIn]:
    made, server = served_standin()
    yield made
    server.stop()


def _golden(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (HERE / f"{name}.golden.jsonl").read_text("utf-8").splitlines()]


@pytest.mark.parametrize("name", EXAMPLES)
async def test_the_golden_conversation_is_what_telegram_receives(
    name: str,
    settings: Settings,
    pool: Pool,
    store: FsArtifactStore,
    owner: tuple[UUID, UUID],
    standin: BotApiStandIn,
    redis_url: str,
) -> None:
    spec = json.loads((EXAMPLES_DIR / f"{name}.json").read_text("utf-8"))
    fixture = json.loads((EXAMPLES_DIR / "fixtures" / f"{name}.api.json").read_text("utf-8"))
    mentioned = re.findall(r"/\w+@(\w+)", (HERE / f"{name}.events.jsonl").read_text("utf-8"))
    bot = standin.register(username=mentioned[0] if mentioned else f"{name}_test_bot")
    bot_id = await live_bot(pool, owner, bot.token, username=bot.username)
    spec["meta"]["botId"] = bot_id
    await activate(pool, store, bot_id, spec)
    api = FixtureApi.for_spec(fixture, spec)
    talk = Conversation(Interpreter(spec).step, spec, api)  # only its expansion of events and its clock are used

    def performer(active: ActiveBot) -> FixtureApi:
        return api

    prefix = f"test-gold-{secrets.token_hex(4)}"
    configured = dataclasses.replace(
        settings, secret_key=SECRET_KEY, telegram_api_url=standin.url,
        outbound_rates=(("bot_per_s", 1000.0), ("bot_burst", 100.0), ("chat_per_s", 500.0), ("chat_burst", 50.0),
                        ("group_per_min", 6000.0), ("group_burst", 50.0)),
    )  # fmt: skip
    rt = await open_runtime(configured, WorkerOptions(redis_prefix=prefix, api_performer=performer))
    assert rt.http is not None
    executor = build_executor(rt, rt.http, analytics=None, clock=lambda: talk.now / 1000)
    executor.options = dataclasses.replace(executor.options, linger_s=0.01)
    try:
        seen = 0
        for number, (item, golden) in enumerate(
            zip(_events(HERE / f"{name}.events.jsonl"), _golden(name), strict=True)
        ):
            update = talk.expand(item)
            talk._advance(item, update)
            chat_id = golden["chat"]
            standin.open_chat(bot, chat(chat_id))
            if "callback_query" in update:
                bot.callbacks[update["callback_query"]["id"]] = None  # Telegram issued this query
            await executor.queue.enqueue(bot_id, chat_id, update["update_id"], json.dumps(update).encode())
            assert (await executor.drain()).handled == 1
            calls = standin.calls(bot)[seen:]
            seen += len(calls)
            assert all(c.ok for c in calls), (number, [c.description for c in calls if not c.ok])
            got = [{"method": c.method, "params": c.params} for c in calls]
            assert got == golden["actions"], f"event {number} of {name}"
            state = await executor.states.load(bot_id, chat_id)
            assert state == golden["state"], f"state after event {number} of {name}"
        assert await executor.queue.dead_letters(bot_id) == []
    finally:
        await rt.aclose()
        delete_keys(redis_url, f"{prefix}:*")


def test_the_examples_all_have_goldens() -> None:
    assert sorted(p.stem for p in Path(EXAMPLES_DIR).glob("*.json")) == sorted(EXAMPLES)
