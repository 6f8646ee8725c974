"""The console's operations over real HTTP: validateSpec, examples, simulate, dead letters, webhook state.

The app runs with a Redis prefix this module knows, so dead letters are made with the
real ``RedisChatQueue`` and ``OutboundSender`` (against the Telegram stand-in) under
the prefix the API reads. A stored revision is built with the compiler and stored as
the generate task would store it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import dramatiq
import httpx
import pytest
import redis.asyncio as aioredis

from botkiln.generator.generators import CompilerGenerator
from botkiln.generator.revision import build_revision
from botkiln.graphql.app import WS_MAX_MESSAGE_BYTES, build_app
from botkiln.infra.artifacts_fs import FsArtifactStore
from botkiln.infra.chat_queue import RedisChatQueue
from botkiln.infra.db import connect, revisions
from botkiln.infra.outbound import BotApiCaller, OutboundLimiter, OutboundSender, RetryPolicy
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_api import BotApiClient
from botkiln.infra.telegram_standin import BotApiStandIn, StandInBot
from botkiln.infra.telegram_standin_updates import chat, user_message
from botkiln.interpreter.canonical import canonical_json
from botkiln.interpreter.conversation import EPOCH_MS
from botkiln.interpreter.types import Action
from botkiln.interpreter.validation import validate_spec
from tests.conftest import minimal_spec
from tests.graphql.support import Api, ServerThread, sign_up
from tests.services import delete_keys

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
SECRET_TEXT = "SECRET-USER-TEXT"

SIMULATE = """
mutation($b: ID!, $i: SimulateInput!) {
  simulate(botId: $b, input: $i) {
    __typename
    ... on Simulated {
      engine revHash now update state
      actions { method params } events { type data } requests { method url request }
    }
    ... on SpecInvalid { errors { pointer code } }
    ... on InvalidInput { field }
    ... on Problem { message }
  }
}
"""
DEAD_LETTERS = """
query($b: ID!, $q: DeadLetterQueue!) {
  deadLetters(botId: $b, queue: $q) {
    __typename queue index chatId at payload
    ... on InboundDeadLetter { updateId reason deliveries payloadText }
    ... on OutboundDeadLetter { method error errorCode attempts dedupKey actionIndex }
  }
}
"""
REPLAY = """
mutation($b: ID!, $q: DeadLetterQueue!, $i: Int) {
  replayDeadLetters(botId: $b, queue: $q, index: $i) {
    __typename
    ... on DeadLettersReplayed { queue replayed kept outcomes { index chatId status error } }
    ... on Problem { message }
  }
}
"""
DROP = """
mutation($b: ID!, $q: DeadLetterQueue!, $i: Int) {
  dropDeadLetters(botId: $b, queue: $q, index: $i) {
    __typename ... on DeadLettersDropped { queue dropped } ... on Problem { message }
  }
}
"""
WEBHOOK = """
query($b: ID!) {
  bot(botId: $b) {
    id
    webhook {
      __typename
      ... on WebhookState { url expectedUrl registered pendingUpdateCount lastErrorMessage lastErrorAt }
      ... on Problem { message }
    }
  }
}
"""


# --- the app, under a Redis prefix this module knows -----------------------------------------------------------------


@pytest.fixture(scope="module")
def queue_prefix() -> str:
    return f"botkiln-test-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def base_url(
    settings: Settings, broker: dramatiq.Broker, api_server: ServerThread, redis_url: str, queue_prefix: str
) -> Iterator[str]:
    """The running API (as conftest's, with the module's own prefix)."""
    app = build_app(settings, broker=broker, redis_prefix=f"{queue_prefix}:")
    api_server.start(app, ws_max_size=WS_MAX_MESSAGE_BYTES)
    yield api_server.url
    delete_keys(redis_url, f"{queue_prefix}:*")


@dataclass
class Rig:
    """A project with a bot (registered with the stand-in) and a member of each role."""

    apis: dict[str, Api]
    project_id: str
    bot_id: str
    bot: StandInBot

    @property
    def owner(self) -> Api:
        return self.apis["owner"]


def create_bot(owner: Api, project_id: str, standin: BotApiStandIn) -> tuple[str, StandInBot]:
    bot = standin.register()
    bot_id = f"console-{secrets.token_hex(4)}"
    created = owner.run(
        'mutation($p: ID!, $b: String!, $t: String!) { createBot(projectId: $p, botId: $b, name: "C", token: $t)'
        " { __typename } }",
        {"p": project_id, "b": bot_id, "t": bot.token},
    ).ok()
    assert created == {"createBot": {"__typename": "BotCreated"}}
    return bot_id, bot


@pytest.fixture(scope="module")
def rig(base_url: str, transcript: list[str], standin: BotApiStandIn) -> Iterator[Rig]:
    apis = {role: Api(base_url, transcript) for role in ("anonymous", "outsider", "viewer", "editor", "owner")}
    users = {role: sign_up(api) for role, api in apis.items() if role != "anonymous"}
    project_id = (
        apis["owner"]
        .run('mutation { createProject(name: "console") { ... on ProjectCreated { project { id } } } }')
        .ok()["createProject"]["project"]["id"]
    )
    for role in ("viewer", "editor"):
        apis["owner"].run(
            "mutation($p: ID!, $e: String!, $r: Role!) { inviteMember(projectId: $p, email: $e, role: $r) {"
            " __typename } }",
            {"p": project_id, "e": users[role]["email"], "r": role.upper()},
        ).ok()
    bot_id, bot = create_bot(apis["owner"], project_id, standin)
    yield Rig(apis, project_id, bot_id, bot)
    for api in apis.values():
        api.close()


def in_redis(redis_url: str, work: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
    """Run ``work`` with an async Redis client of its own, from a synchronous test."""

    async def go() -> T:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await work(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def in_db(dsn: str, work: Callable[[Any], Awaitable[T]]) -> T:
    async def go() -> T:
        conn = await connect(dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


# --- validateSpec and examples ---------------------------------------------------------------------------------------


def test_validate_spec_answers_every_problem_with_its_pointer_and_code(rig: Rig) -> None:
    # Given a spec whose command names a missing flow, whose step jumps nowhere and with a stray field
    broken = minimal_spec()
    broken["commands"][0]["flow"] = "nowhere"
    broken["flows"][0]["steps"][0]["next"] = "confirm"
    broken["meta"]["colour"] = "blue"
    query = "query($s: JSON!) { validateSpec(spec: $s) { pointer code message hint } }"
    # When the editor asks the server
    problems = rig.apis["viewer"].run(query, {"s": broken}).ok()["validateSpec"]
    # Then every problem comes back, sorted by pointer, exactly as the validator says it
    expected = [
        {"pointer": e.pointer, "code": e.code, "message": e.message, "hint": e.hint} for e in validate_spec(broken)
    ]
    assert problems == expected
    assert [(p["pointer"], p["code"]) for p in problems] == [
        ("/commands/0/flow", "unresolved-flow"),
        ("/flows/0/steps/0/next", "unresolved-step"),
        ("/meta/colour", "schema-additional-properties"),
    ]
    assert rig.apis["outsider"].run(query, {"s": minimal_spec()}).ok() == {"validateSpec": []}
    assert rig.apis["anonymous"].run(query, {"s": minimal_spec()}).codes == ["UNAUTHENTICATED"]


def test_a_spec_over_the_size_limit_is_a_problem_too(rig: Rig) -> None:
    big = minimal_spec()
    big["localization"]["strings"]["hello"]["en"] = "x" * (600 * 1024)
    problems = rig.owner.run("query($s: JSON!) { validateSpec(spec: $s) { pointer code } }", {"s": big}).ok()
    assert {"pointer": "", "code": "spec-too-large"} in problems["validateSpec"]


def test_examples_lists_the_five_example_specs_with_their_fixtures(rig: Rig) -> None:
    query = "{ examples { name title description locales spec apiFixture } }"
    examples = rig.apis["outsider"].run(query).ok()["examples"]
    assert [e["name"] for e in examples] == ["booking", "faq", "lead_capture", "quiz", "support"]
    for example in examples:
        on_disk = json.loads((ROOT / "examples" / f"{example['name']}.json").read_text("utf-8"))
        assert example["spec"] == on_disk and validate_spec(example["spec"]) == []
        assert example["title"] == on_disk["meta"]["name"] and example["locales"] == on_disk["meta"]["locales"]
        assert "/start" in example["description"]
    by_name = {e["name"]: e for e in examples}
    assert "PUT https://quiz.harbourmuseum.example/api/scores/*" in by_name["quiz"]["apiFixture"]
    assert rig.apis["anonymous"].run(query).codes == ["UNAUTHENTICATED"]


# --- simulate --------------------------------------------------------------------------------------------------------


def booking_spec(bot_id: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((ROOT / "examples" / "booking.json").read_text("utf-8"))
    spec["meta"]["botId"] = bot_id
    return spec


BOOKING_FIXTURE = json.loads((ROOT / "examples" / "fixtures" / "booking.api.json").read_text("utf-8"))
GOLDEN = ROOT / "tests" / "examples"


def golden(name: str, count: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The first ``count`` (event, expected output) pairs of an example's golden conversation."""
    events = [json.loads(line) for line in (GOLDEN / f"{name}.events.jsonl").read_text().splitlines() if line]
    outputs = [json.loads(line) for line in (GOLDEN / f"{name}.golden.jsonl").read_text().splitlines() if line]
    return list(zip(events, outputs, strict=False))[:count]


def as_input(event: dict[str, Any]) -> dict[str, Any]:
    """A short-form event of ``botkiln simulate`` as a ``SimulateEvent``."""
    names = {"text": "text", "callback": "callback", "chat": "chatId", "name": "userName", "lang": "language"}
    return {names[k]: v for k, v in event.items()}


def converse(
    api: Api, bot_id: str, source: dict[str, Any], events: list[dict[str, Any]], fixture: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run ``events`` one simulate call each, passing the state back and the clock on as the CLI does."""
    state, now, replies = None, EPOCH_MS, []
    for event in events:
        now += 1000
        data = {**source, "event": as_input(event), "state": state, "now": now, "apiFixture": fixture}
        reply = api.run(SIMULATE, {"b": bot_id, "i": data}).ok()["simulate"]
        assert reply["__typename"] == "Simulated", reply
        state = reply["state"]
        replies.append(reply)
    return replies


def produced(reply: dict[str, Any]) -> dict[str, Any]:
    """A simulate answer in the shape of a golden line (``botkiln simulate`` output)."""
    return {
        "actions": reply["actions"],
        "events": [e["data"] for e in reply["events"]],
        "requests": [r["request"] for r in reply["requests"]],
        "state": reply["state"],
    }


def test_a_draft_replays_the_booking_conversation_passing_the_state_back(rig: Rig) -> None:
    # Given the booking example as a draft and its golden conversation's first five updates
    pairs = golden("booking", 5)
    # When a viewer simulates them one call at a time, passing each answer's state to the next
    replies = converse(rig.apis["viewer"], rig.bot_id, {"spec": booking_spec(rig.bot_id)},
                       [event for event, _ in pairs], BOOKING_FIXTURE)  # fmt: skip
    # Then every update produced what `botkiln simulate` recorded (each call is update 1, so callback ids are cb1)
    for number, ((_, expected), reply) in enumerate(zip(pairs, replies, strict=True), start=1):
        assert reply["engine"] == "REFERENCE" and reply["revHash"] is None
        want = json.loads(json.dumps(expected).replace(f'"cb{number}"', '"cb1"'))
        assert produced(reply) == {k: want[k] for k in ("actions", "events", "requests", "state")}, number
    # /start greets and renders the service buttons; the apiCall was answered from the fixture
    start = replies[0]["actions"][1]["params"]["reply_markup"]["inline_keyboard"]
    assert [row[0]["callback_data"] for row in start] == ["haircut", "beard", "haircut+beard"]
    assert replies[0]["update"]["message"]["from"]["first_name"] == "Priya"
    [request] = replies[4]["requests"]
    assert (request["method"], request["url"]) == (
        "GET",
        "https://api.fadeco.example/v1/slots?service=haircut%2Bbeard&day=tue",
    )


def test_without_a_fixture_every_api_call_fails_as_a_network_error(rig: Rig) -> None:
    events = [event for event, _ in golden("booking", 5)]
    last = converse(rig.owner, rig.bot_id, {"spec": booking_spec(rig.bot_id)}, events)[-1]
    assert [r["url"] for r in last["requests"]] == [
        "https://api.fadeco.example/v1/slots?service=haircut%2Bbeard&day=tue"
    ]
    assert {"type": "api_error", "error": "network"}.items() <= next(
        e["data"] for e in last["events"] if e["type"] == "api_error"
    ).items()


def test_an_invalid_draft_gives_its_problems_and_runs_nothing(rig: Rig) -> None:
    broken = minimal_spec()
    broken["flows"][0]["steps"][0]["next"] = "confirm"
    reply = rig.apis["viewer"].run(SIMULATE, {"b": rig.bot_id, "i": {"spec": broken, "event": {"text": "/start"}}})
    answer = reply.ok()["simulate"]
    assert answer["__typename"] == "SpecInvalid"
    assert answer["errors"] == [{"pointer": "/flows/0/steps/0/next", "code": "unresolved-step"}]


NEW_STATE: dict[str, Any] = {"vars": {}, "cursor": None, "cooldowns": {}, "setAt": {}, "updatedAt": None}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"spec": None}, "input"),
        ({"revHash": "abc"}, "input"),
        ({"event": {"text": "hi", "callback": "x"}}, "input.event"),
        ({"event": {}}, "input.event"),
        ({"event": {"callback": "x" * 65}}, "input.event.callback"),
        ({"event": {"text": "hi", "language": "english please"}}, "input.event.language"),
        ({"state": {"vars": {}}}, "input.state"),
        ({"state": {**NEW_STATE, "cursor": 1}}, "input.state"),
        ({"state": {**NEW_STATE, "setAt": {"x": "soon"}}}, "input.state"),
        ({"state": {**NEW_STATE, "vars": {"x": "y" * (300 * 1024)}}}, "input.state"),
        ({"now": 1.5}, "input.now"),
        ({"apiFixture": {"GET https://x.example/": {"nope": 1}}}, "input.apiFixture"),
    ],
)  # fmt: skip
def test_unusable_simulate_input_is_invalid_input(rig: Rig, change: dict[str, Any], field: str) -> None:
    data = {"spec": minimal_spec(), "event": {"text": "/start"}} | change
    answer = rig.owner.run(SIMULATE, {"b": rig.bot_id, "i": data}).ok()["simulate"]
    assert (answer["__typename"], answer["field"]) == ("InvalidInput", field), answer


@pytest.fixture(scope="module")
def stored_booking(rig: Rig, settings: Settings, database: str) -> str:
    """The booking example built by the compiler and stored as a revision of the rig's bot: its revHash."""
    revision = build_revision(booking_spec(rig.bot_id), CompilerGenerator())
    uri = FsArtifactStore.from_url(settings.artifacts_url).put_revision(rig.bot_id, revision.rev_hash, revision.files)
    in_db(database, lambda conn: revisions.record_revision(
        conn, rev=revision.rev, rev_json=revision.files["rev.json"], artifacts_uri=uri, created_by=None))  # fmt: skip
    return revision.rev_hash


def test_a_stored_revision_in_quickjs_acts_byte_for_byte_like_the_draft(rig: Rig, stored_booking: str) -> None:
    events = [event for event, _ in golden("booking", 5)]
    draft = converse(rig.apis["viewer"], rig.bot_id, {"spec": booking_spec(rig.bot_id)}, events, BOOKING_FIXTURE)
    stored = converse(rig.apis["viewer"], rig.bot_id, {"revHash": stored_booking}, events, BOOKING_FIXTURE)
    assert [s["engine"] for s in stored] == ["QUICKJS"] * 5 and stored[0]["revHash"] == stored_booking
    for d, s in zip(draft, stored, strict=True):
        assert canonical_json(s["actions"]) == canonical_json(d["actions"])
        assert canonical_json(s["state"]) == canonical_json(d["state"])
        assert canonical_json(s["requests"]) == canonical_json(d["requests"])


def test_an_unknown_or_foreign_revision_is_not_found(rig: Rig, stored_booking: str, standin: BotApiStandIn) -> None:
    missing = {"revHash": "0" * 64, "event": {"text": "/start"}}
    answer = rig.owner.run(SIMULATE, {"b": rig.bot_id, "i": missing}).ok()["simulate"]
    assert answer == {"__typename": "NotFound", "message": "that revision does not exist or is not visible to you"}
    other_id, _ = create_bot(rig.owner, rig.project_id, standin)
    foreign = {"revHash": stored_booking, "event": {"text": "/start"}}
    assert rig.owner.run(SIMULATE, {"b": other_id, "i": foreign}).ok()["simulate"]["__typename"] == "NotFound"


def test_simulate_needs_the_viewer_role_on_the_bot(rig: Rig) -> None:
    data = {"spec": minimal_spec(), "event": {"text": "/start"}}
    for role in ("anonymous", "outsider"):
        reply = rig.apis[role].run(SIMULATE, {"b": rig.bot_id, "i": data})
        assert reply.data is None and reply.codes == ["FORBIDDEN"]


# --- dead letters ----------------------------------------------------------------------------------------------------


def dead_letter_updates(redis_url: str, prefix: str, bot_id: str, letters: list[tuple[int, int, bytes]]) -> None:
    """Enqueue each ``(chat, update, payload)`` into an idle chat, claim it and dead-letter it."""

    async def work(client: aioredis.Redis) -> None:
        queue = RedisChatQueue(client, prefix=prefix)
        for chat_id, update_id, payload in letters:
            await queue.enqueue(bot_id, chat_id, update_id, payload)
            claim = await queue.claim("test", 10_000)
            assert claim is not None and claim.update_id == update_id
            assert await queue.dead_letter(claim, f"TypeError: update {update_id} broke the bot")

    in_redis(redis_url, work)


def update_json(chat_id: int, update_id: int) -> bytes:
    return json.dumps({"update_id": update_id, "message": {"chat": {"id": chat_id}, "text": SECRET_TEXT}}).encode()


def test_inbound_dead_letters_are_listed_replayed_and_dropped(rig: Rig, redis_url: str, queue_prefix: str,
                                                              database: str) -> None:  # fmt: skip
    # Given three dead-lettered updates, one of them not JSON
    dead_letter_updates(redis_url, queue_prefix, rig.bot_id, [
        (7, 70, update_json(7, 70)), (8, 80, b"\xff not json"), (7, 71, update_json(7, 71)),
    ])  # fmt: skip
    editor = rig.apis["editor"]
    listed = editor.run(DEAD_LETTERS, {"b": rig.bot_id, "q": "INBOUND"}).ok()["deadLetters"]
    assert [(e["__typename"], e["index"], e["chatId"], e["updateId"]) for e in listed] == [
        ("InboundDeadLetter", 0, "7", "70"), ("InboundDeadLetter", 1, "8", "80"), ("InboundDeadLetter", 2, "7", "71"),
    ]  # fmt: skip
    assert listed[0]["payload"] == json.loads(update_json(7, 70)) and listed[0]["payloadText"] is None
    assert listed[1]["payload"] is None and listed[1]["payloadText"] == "\\xff not json"
    assert listed[0]["reason"] == "TypeError: update 70 broke the bot" and listed[0]["deliveries"] == 1
    assert listed[0]["at"].endswith("+00:00") and listed[0]["queue"] == "INBOUND"
    # When the editor replays the second, then asks for one that is not there
    replayed = editor.run(REPLAY, {"b": rig.bot_id, "q": "INBOUND", "i": 1}).ok()["replayDeadLetters"]
    assert replayed == {"__typename": "DeadLettersReplayed", "queue": "INBOUND", "replayed": 1, "kept": 0,
                        "outcomes": [{"index": 1, "chatId": "8", "status": "REQUEUED", "error": None}]}  # fmt: skip
    missing = editor.run(REPLAY, {"b": rig.bot_id, "q": "INBOUND", "i": 5}).ok()["replayDeadLetters"]
    assert missing["__typename"] == "NotFound" and f"entry 5 of dlq:in:{rig.bot_id}" in missing["message"]

    # Then it is queued in its chat again, and the others keep their order
    async def queued(client: aioredis.Redis) -> list[tuple[int, int, bytes]]:
        queue = RedisChatQueue(client, prefix=queue_prefix)
        seen = []
        while (claim := await queue.claim("test", 10_000)) is not None:
            seen.append((claim.chat_id, claim.update_id, claim.payload))
            assert await queue.ack(claim)
        return seen

    assert in_redis(redis_url, queued) == [(8, 80, b"\xff not json")]
    left = editor.run(DEAD_LETTERS, {"b": rig.bot_id, "q": "INBOUND"}).ok()["deadLetters"]
    assert [(e["index"], e["updateId"]) for e in left] == [(0, "70"), (1, "71")]
    # Dropping every entry empties the queue; an empty queue drops nothing
    dropped = editor.run(DROP, {"b": rig.bot_id, "q": "INBOUND", "i": None}).ok()["dropDeadLetters"]
    assert dropped == {"__typename": "DeadLettersDropped", "queue": "INBOUND", "dropped": 2}
    assert editor.run(DEAD_LETTERS, {"b": rig.bot_id, "q": "INBOUND"}).ok() == {"deadLetters": []}
    assert editor.run(DROP, {"b": rig.bot_id, "q": "INBOUND"}).ok()["dropDeadLetters"]["dropped"] == 0
    # And both changes are in the audit log
    sql = "SELECT action, detail FROM audit_log WHERE bot_id = $1 AND action LIKE 'dlq.%' ORDER BY id"
    audited = in_db(database, lambda conn: conn.fetch(sql, rig.bot_id))
    assert [(r["action"], r["detail"]) for r in audited if r["detail"]["queue"] == "in"] == [
        ("dlq.replay", {"queue": "in", "index": 1, "replayed": 1, "kept": 0}),
        ("dlq.drop", {"queue": "in", "index": "all", "dropped": 2}),
    ]


def send_failing(
    redis_url: str, prefix: str, rig: Rig, standin: BotApiStandIn, actions: list[Action], key: str
) -> None:
    """Send ``actions`` while the stand-in answers 502 to the first: it is dead-lettered after one attempt."""

    async def work(client: aioredis.Redis) -> None:
        async with httpx.AsyncClient() as http:

            def api(token: str) -> BotApiCaller:
                return BotApiClient(http, token, base_url=standin.url)

            limiter = OutboundLimiter(client, prefix=prefix)
            sender = OutboundSender(client, limiter, api, prefix=prefix, retry=RetryPolicy(attempts=1))
            rig.bot.faults.fail(1)
            await sender.send(rig.bot_id, rig.bot.token, 501, actions, dedup_key=key)

    in_redis(redis_url, work)


def message(text: str) -> Action:
    return {"method": "sendMessage", "params": {"chat_id": 501, "text": text}}


def test_outbound_dead_letters_are_listed_replayed_and_dropped(
    rig: Rig, standin: BotApiStandIn, redis_url: str, queue_prefix: str, transcript: list[str]
) -> None:
    # Given two actions Telegram did not take: one it will take now, one it refuses every time (empty text)
    standin.open_chat(rig.bot, chat(501))
    send_failing(redis_url, queue_prefix, rig, standin, [message(SECRET_TEXT)], "u1")
    send_failing(redis_url, queue_prefix, rig, standin, [message(" ")], "u2")
    editor = rig.apis["editor"]
    listed = editor.run(DEAD_LETTERS, {"b": rig.bot_id, "q": "OUTBOUND"}).ok()["deadLetters"]
    assert [(e["__typename"], e["index"], e["chatId"], e["method"], e["errorCode"], e["dedupKey"]) for e in listed] == [
        ("OutboundDeadLetter", 0, "501", "sendMessage", 502, "u1"),
        ("OutboundDeadLetter", 1, "501", "sendMessage", 502, "u2"),
    ]
    assert listed[0]["payload"] == message(SECRET_TEXT) and listed[0]["attempts"] == 1
    assert listed[0]["error"] == "sendMessage (502): Bad Gateway" and listed[0]["actionIndex"] == 0
    # When the editor replays every entry
    replayed = editor.run(REPLAY, {"b": rig.bot_id, "q": "OUTBOUND"}).ok()["replayDeadLetters"]
    # Then the first reaches Telegram and leaves the queue; the second is refused again and stays
    assert replayed["replayed"] == 1 and replayed["kept"] == 1
    assert replayed["outcomes"] == [
        {"index": 0, "chatId": "501", "status": "SENT", "error": None},
        {"index": 1, "chatId": "501", "status": "FAILED",
         "error": "sendMessage (400): Bad Request: message text is empty"},
    ]  # fmt: skip
    sent = [c.params["text"] for c in standin.calls(rig.bot, "sendMessage") if c.ok]
    assert sent == [SECRET_TEXT]
    [kept] = editor.run(DEAD_LETTERS, {"b": rig.bot_id, "q": "OUTBOUND"}).ok()["deadLetters"]
    assert (kept["index"], kept["dedupKey"]) == (0, "u2")
    # A missing index is NotFound; dropping the kept one empties the queue
    missing = editor.run(DROP, {"b": rig.bot_id, "q": "OUTBOUND", "i": 1}).ok()["dropDeadLetters"]
    assert missing["__typename"] == "NotFound"
    negative = editor.run(DROP, {"b": rig.bot_id, "q": "OUTBOUND", "i": -1}).ok()["dropDeadLetters"]
    assert negative["__typename"] == "InvalidInput"
    dropped = editor.run(DROP, {"b": rig.bot_id, "q": "OUTBOUND", "i": 0}).ok()["dropDeadLetters"]
    assert dropped == {"__typename": "DeadLettersDropped", "queue": "OUTBOUND", "dropped": 1}
    assert editor.run(DEAD_LETTERS, {"b": rig.bot_id, "q": "OUTBOUND"}).ok() == {"deadLetters": []}
    assert rig.bot.token not in "".join(transcript)


def test_a_viewer_can_neither_list_nor_replay_nor_drop_dead_letters(
    rig: Rig, redis_url: str, queue_prefix: str
) -> None:
    dead_letter_updates(redis_url, queue_prefix, rig.bot_id, [(9, 90, update_json(9, 90))])
    for role in ("anonymous", "outsider", "viewer"):
        api = rig.apis[role]
        for query, variables in (
            (DEAD_LETTERS, {"b": rig.bot_id, "q": "INBOUND"}),
            (REPLAY, {"b": rig.bot_id, "q": "INBOUND", "i": 0}),
            (DROP, {"b": rig.bot_id, "q": "INBOUND", "i": 0}),
        ):
            reply = api.run(query, variables)
            assert reply.data is None and reply.codes == ["FORBIDDEN"], (role, query)
    # Nothing moved: the editor still sees the entry, then clears it
    listed = rig.apis["editor"].run(DEAD_LETTERS, {"b": rig.bot_id, "q": "INBOUND"}).ok()["deadLetters"]
    assert [e["updateId"] for e in listed] == ["90"]
    assert rig.apis["editor"].run(DROP, {"b": rig.bot_id, "q": "INBOUND"}).ok()["dropDeadLetters"]["dropped"] == 1


def test_dead_letter_paging_is_checked(rig: Rig) -> None:
    query = "query($b: ID!) { deadLetters(botId: $b, queue: INBOUND, first: 0) { index } }"
    assert rig.owner.run(query, {"b": rig.bot_id}).codes == ["BAD_USER_INPUT"]


# --- webhook state ---------------------------------------------------------------------------------------------------


def test_webhook_state_comes_from_telegram_without_secrets(rig: Rig, standin: BotApiStandIn, base_url: str) -> None:
    # Given a bot registered through the API: Telegram delivers to this platform
    bot_id, bot = create_bot(rig.owner, rig.project_id, standin)
    expected = f"{base_url}/wh/{bot_id}"
    state = rig.apis["editor"].run(WEBHOOK, {"b": bot_id}).ok()["bot"]["webhook"]
    assert state == {"__typename": "WebhookState", "url": expected, "expectedUrl": expected, "registered": True,
                     "pendingUpdateCount": 0, "lastErrorMessage": None, "lastErrorAt": None}  # fmt: skip
    # When someone points the webhook elsewhere (credentials, the token and a query in the URL) and a delivery fails
    elsewhere = f"http://user:pw@127.0.0.1:9/hook/{bot.token}/in?secret=s3cr3t"
    set_webhook = httpx.post(f"{standin.url}/bot{bot.token}/setWebhook", json={"url": elsewhere})
    assert set_webhook.json()["ok"]
    assert not standin.send_update(bot, user_message(42, "hello")).delivered
    # Then the console sees where, without the secrets, and the error
    state = rig.owner.run(WEBHOOK, {"b": bot_id}).ok()["bot"]["webhook"]
    assert state["url"] == "http://127.0.0.1:9/hook/<redacted>/in?…"
    assert (state["registered"], state["pendingUpdateCount"]) == (False, 1)
    assert state["lastErrorMessage"].startswith("Connection failed") and state["lastErrorAt"] is not None
    # A Telegram failure is a union member with the reason, never a masked error
    bot.faults.fail(1)
    unavailable = rig.owner.run(WEBHOOK, {"b": bot_id}).ok()["bot"]["webhook"]
    assert unavailable == {"__typename": "TelegramUnavailable", "message": "Telegram: Bad Gateway"}
    standin.revoke(bot.token)
    rejected = rig.owner.run(WEBHOOK, {"b": bot_id}).ok()["bot"]["webhook"]
    assert rejected["__typename"] == "TokenRejected"


def test_webhook_state_needs_the_editor_role(rig: Rig) -> None:
    reply = rig.apis["viewer"].run(WEBHOOK, {"b": rig.bot_id})
    # The viewer still reads the bot; only the webhook is refused
    assert reply.data == {"bot": {"id": rig.bot_id, "webhook": None}}
    assert reply.codes == ["FORBIDDEN"]


def test_simulate_state_is_a_copy_the_client_owns(rig: Rig) -> None:
    # The same call twice gives the same answer: nothing was kept on the server
    data = {"spec": booking_spec(rig.bot_id), "event": {"text": "/start", "chatId": 3}, "now": EPOCH_MS}
    first = rig.apis["viewer"].run(SIMULATE, {"b": rig.bot_id, "i": copy.deepcopy(data)}).ok()
    again = rig.apis["viewer"].run(SIMULATE, {"b": rig.bot_id, "i": data}).ok()
    assert first == again and first["simulate"]["state"]["cursor"]["step"] == "ask_service"
