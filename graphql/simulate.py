"""The simulator: ``simulate(botId, input)`` runs ONE update through a bot and changes nothing.

Either engine, as the runtime would run it (``interpreter/host.handle_update``):

- ``input.spec`` (a draft): validated first (``SpecInvalid`` lists every problem), then
  run by the reference interpreter;
- ``input.revHash`` (a stored revision of this bot): its ``bot.js`` and ``spec.json``
  from the artifact store, run in QuickJS through the API's warm ``SandboxPool``.

The event is a short form expanded as ``interpreter/conversation.Conversation.expand``
does (``text`` or ``callback``, a chat id, the user's first name and language). The
client keeps the chat's state: it passes back the previous ``state`` (null: a chat
never seen) and may fix ``now`` (ms; default the server's clock). apiCalls are
answered by ``interpreter/api_fixture.FixtureApi`` from ``input.apiFixture`` (default
none: every request fails as a network error, outside the spec's allow-list
``forbidden``); the simulator never makes a network call. A failing ``bot.js`` (an
exception, a time or memory limit) is ``SimulationFailed``.

Caps: the spec as the validator's (512 KiB), ``state`` and ``apiFixture`` 256 KiB of
JSON each, text 4096 characters, callback data 64 bytes (Telegram's limits). Engine
work runs in a worker thread, off the event loop. A viewer may simulate: nothing is
stored, sent or audited.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from enum import Enum
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from botkiln.graphql.context import Context
from botkiln.graphql.permissions import CanViewBot
from botkiln.graphql.results import InvalidInput, NotFound, Problem, SpecInvalid, SpecProblem, invalid, not_found
from botkiln.infra.chat_state import MAX_STATE_BYTES
from botkiln.infra.db import bots, revisions
from botkiln.infra.ports import ArtifactCorrupt, ArtifactMissing
from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.canonical import MAX_SAFE_INTEGER, normalize
from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.engine import Interpreter
from botkiln.interpreter.errors import UnusableInput
from botkiln.interpreter.host import Engine, UpdateResult, handle_update
from botkiln.interpreter.quickjs import PooledEngine, SandboxError
from botkiln.interpreter.types import State
from botkiln.interpreter.validation import validate_spec

MAX_FIXTURE_BYTES = 256 * 1024
MAX_TEXT = 4096
MAX_CALLBACK_BYTES = 64
MAX_NAME = 64
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,3}$")
_STATE_KEYS = frozenset({"vars", "cursor", "cooldowns", "setAt", "updatedAt"})


@strawberry.enum(description="Which engine ran the update.")
class SimulationEngine(Enum):
    REFERENCE = "reference"
    QUICKJS = "quickjs"


@strawberry.input(description="One incoming update in short form: exactly one of `text` and `callback`.")
class SimulateEvent:
    text: str | None = strawberry.field(default=None, description="A text message (`/cmd args` is a command).")
    callback: str | None = strawberry.field(default=None, description="A press of an inline button with this data.")
    chat_id: int = strawberry.field(default=1, description="The chat (> 0 a private chat, < 0 a group).")
    user_name: str = strawberry.field(default="Tester", description="The sender's first name.")
    language: str = strawberry.field(default="en", description="The sender's language_code.")


@strawberry.input(description="What to simulate: exactly one of `spec` (a draft) and `revHash` (a stored revision).")
class SimulateInput:
    event: SimulateEvent
    spec: JSON | None = strawberry.field(default=None, description="A draft spec, run by the reference interpreter.")
    rev_hash: str | None = strawberry.field(default=None, description="A revision of the bot, run in QuickJS.")
    state: JSON | None = strawberry.field(
        default=None, description="The chat's state from the previous call (null: a new chat)."
    )
    now: float | None = strawberry.field(default=None, description="The time of the update in ms (default: now).")
    api_fixture: JSON | None = strawberry.field(
        default=None,
        description='Scripted apiCall answers: {"METHOD URL": result or [results…]} (`botkiln simulate --api`). '
        "Unmatched requests fail as network errors.",
    )


@strawberry.type(description="A Bot API call the bot would make.")
class SimulatedAction:
    method: str
    params: JSON


@strawberry.type(description="One telemetry event; `data` is the whole event, `type` included.")
class SimulatedTelemetry:
    type: str
    data: JSON


@strawberry.type(description="An HTTP request of an apiCall, answered from the fixture (never sent).")
class SimulatedRequest:
    method: str
    url: str
    request: JSON = strawberry.field(description="The whole request: headers, body, timeoutMs, retries, ….")


@strawberry.type(description="What the update produced; pass `state` back with the chat's next update.")
class Simulated:
    engine: SimulationEngine
    rev_hash: str | None
    now: float = strawberry.field(description="The update's time in ms.")
    update: JSON = strawberry.field(description="The Telegram update the event expanded to.")
    actions: list[SimulatedAction]
    state: JSON
    events: list[SimulatedTelemetry]
    requests: list[SimulatedRequest]


@strawberry.type(description="The bot's code failed on this update (an exception, a time or memory limit).")
class SimulationFailed(Problem):
    pass


SimulateResult = Annotated[
    Simulated | SpecInvalid | SimulationFailed | NotFound | InvalidInput, strawberry.union("SimulateResult")
]


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_time(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and value.is_integer())


def _state_problem(state: Any) -> str | None:
    """Why ``state`` is not a chat state (docs/botspec.md §5), or None."""
    if state is None:
        return None
    if not isinstance(state, dict) or set(state) != _STATE_KEYS:
        return f"a state is null or an object with exactly {', '.join(sorted(_STATE_KEYS))}"
    if not isinstance(state["vars"], dict):
        return "state.vars must be an object"
    for name in ("cooldowns", "setAt"):
        value = state[name]
        if not isinstance(value, dict) or not all(_is_time(v) for v in value.values()):
            return f"state.{name} must map names to times in ms"
    if state["updatedAt"] is not None and not _is_time(state["updatedAt"]):
        return "state.updatedAt must be null or a time in ms"
    cursor = state["cursor"]
    if cursor is not None and not (
        isinstance(cursor, dict)
        and set(cursor) == {"flow", "step", "since"}
        and isinstance(cursor["flow"], str)
        and isinstance(cursor["step"], str)
        and _is_time(cursor["since"])
    ):
        return "state.cursor must be null or {flow, step, since}"
    return None


def _check(data: SimulateInput) -> InvalidInput | None:
    if (data.spec is None) == (data.rev_hash is None):
        return invalid("input", "give exactly one of spec (a draft) and revHash (a stored revision)")
    event = data.event
    if (event.text is None) == (event.callback is None):
        return invalid("input.event", "give exactly one of text and callback")
    if event.text is not None and not 1 <= len(event.text) <= MAX_TEXT:
        return invalid("input.event.text", f"1 to {MAX_TEXT} characters")
    if event.callback is not None and not 1 <= len(event.callback.encode()) <= MAX_CALLBACK_BYTES:
        return invalid("input.event.callback", f"1 to {MAX_CALLBACK_BYTES} bytes, as Telegram allows")
    if event.chat_id == 0:
        return invalid("input.event.chatId", "a chat id is not 0 (> 0 a private chat, < 0 a group)")
    if not 1 <= len(event.user_name) <= MAX_NAME:
        return invalid("input.event.userName", f"1 to {MAX_NAME} characters")
    if not _LANGUAGE.match(event.language):
        return invalid("input.event.language", 'a language tag such as "en" or "pt-BR"')
    if data.now is not None and not (data.now.is_integer() and 0 <= data.now <= MAX_SAFE_INTEGER):
        return invalid("input.now", f"a whole number of ms from 0 to {MAX_SAFE_INTEGER}")
    if data.state is not None and _json_size(data.state) > MAX_STATE_BYTES:
        return invalid("input.state", f"at most {MAX_STATE_BYTES} bytes of JSON")
    problem = _state_problem(data.state)
    if problem is not None:
        return invalid("input.state", problem)
    if data.api_fixture is not None:
        if not isinstance(data.api_fixture, dict):
            return invalid("input.apiFixture", 'an object: {"METHOD URL": result or [results…]}')
        if _json_size(data.api_fixture) > MAX_FIXTURE_BYTES:
            return invalid("input.apiFixture", f"at most {MAX_FIXTURE_BYTES} bytes of JSON")
    return None


def _short_form(event: SimulateEvent) -> dict[str, Any]:
    item: dict[str, Any] = {"chat": event.chat_id, "name": event.user_name, "lang": event.language}
    if event.text is not None:
        item["text"] = event.text
    else:
        item["callback"] = event.callback
    return item


def _run(
    engine: Engine,
    spec: dict[str, Any],
    data: SimulateInput,
    api: FixtureApi,
    now: int,
    *,
    bot_username: str | None,
    revision: str,
) -> tuple[dict[str, Any], UpdateResult]:
    update = Conversation(engine, spec, api, bot_username=bot_username, revision=revision).expand(
        _short_form(data.event)
    )
    state = cast(State | None, normalize(data.state))
    result = handle_update(engine, spec, update, state, now=now, api=api, bot_username=bot_username, revision=revision)
    return update, result


def _draft(
    spec: Any, data: SimulateInput, now: int, bot_username: str | None
) -> SpecInvalid | InvalidInput | tuple[dict[str, Any], UpdateResult]:
    errors = validate_spec(spec)
    if errors:
        noun = "problem" if len(errors) == 1 else "problems"
        return SpecInvalid(
            message=f"the spec has {len(errors)} {noun}; the first: {errors[0]}",
            errors=[SpecProblem.from_error(e) for e in errors],
        )
    api = _fixture_api(data, spec)
    if isinstance(api, InvalidInput):
        return api
    return _run(Interpreter(spec).step, spec, data, api, now, bot_username=bot_username, revision="draft")


def _fixture_api(data: SimulateInput, spec: dict[str, Any]) -> FixtureApi | InvalidInput:
    try:
        return FixtureApi.for_spec(cast(dict[str, Any], data.api_fixture or {}), spec)
    except UnusableInput as exc:
        return invalid("input.apiFixture", str(exc))


def _simulated(
    engine: SimulationEngine, rev_hash: str | None, now: int, update: dict[str, Any], result: UpdateResult
) -> Simulated:
    return Simulated(
        engine=engine,
        rev_hash=rev_hash,
        now=float(now),
        update=cast(JSON, update),
        actions=[SimulatedAction(method=a["method"], params=cast(JSON, a["params"])) for a in result.actions],
        state=cast(JSON, result.state),
        events=[SimulatedTelemetry(type=str(e.get("type")), data=cast(JSON, e)) for e in result.events],
        requests=[SimulatedRequest(method=r["method"], url=r["url"], request=cast(JSON, r)) for r in result.requests],
    )


async def _stored(
    info: Info[Context, None], bot_id: str, rev_hash: str
) -> tuple[dict[str, Any], str] | NotFound | SimulationFailed:
    services = info.context.services
    if await revisions.get_revision(services.db, bot_id, rev_hash) is None:
        return not_found("that revision")
    try:
        stored = await asyncio.to_thread(services.store.get_revision, bot_id, rev_hash)
    except ArtifactMissing:
        return not_found("that revision's artifacts")
    except ArtifactCorrupt as exc:
        return SimulationFailed(message=f"the revision's artifacts are damaged: {exc}")
    return json.loads(stored.files["spec.json"]), stored.files["bot.js"].decode("utf-8")


@strawberry.type
class SimulateMutation:
    @strawberry.mutation(
        permission_classes=[CanViewBot],
        description="Run one update through a draft spec or a stored revision; nothing is stored or sent.",
    )
    async def simulate(self, info: Info[Context, None], bot_id: strawberry.ID, input: SimulateInput) -> SimulateResult:
        refused = _check(input)
        if refused is not None:
            return refused
        services = info.context.services
        bot = await bots.get_bot(services.db, str(bot_id))
        if bot is None:
            return not_found("that bot")
        now = int(input.now) if input.now is not None else int(time.time() * 1000)
        try:
            if input.spec is not None:
                drafted = await asyncio.to_thread(_draft, input.spec, input, now, bot.telegram_username)
                if isinstance(drafted, SpecInvalid | InvalidInput):
                    return drafted
                return _simulated(SimulationEngine.REFERENCE, None, now, *drafted)
            assert input.rev_hash is not None
            loaded = await _stored(info, bot.id, input.rev_hash)
            if isinstance(loaded, NotFound | SimulationFailed):
                return loaded
            spec, source = loaded
            api = _fixture_api(input, spec)
            if isinstance(api, InvalidInput):
                return api
            engine = PooledEngine(services.sandboxes, input.rev_hash, source)
            update, result = await asyncio.to_thread(
                _run, engine, spec, input, api, now, bot_username=bot.telegram_username, revision=input.rev_hash
            )
            return _simulated(SimulationEngine.QUICKJS, input.rev_hash, now, update, result)
        except SandboxError as exc:
            return SimulationFailed(message=f"bot.js failed: {exc}")
