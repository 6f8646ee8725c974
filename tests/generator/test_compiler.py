"""The compiler: bot.js agrees with the reference interpreter call for call, passes the AST
policy, and is deterministic.

Conformance runs every conversation through both engines in lock step (the conformance
harness feeds both the same input for every call) and compares the canonical JSON of each
call's output. On the first difference the test fails with the spec pointer of the step, the
events so far, the exact input and a line diff of both outputs.
"""

from __future__ import annotations

import copy
import difflib
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from botkiln.generator.ast_policy import AST_RULES_VERSION, check_source
from botkiln.generator.compiler import COMPILER_VERSION, compile_spec
from botkiln.generator.generators import sdk_version
from botkiln.generator.url_hosts import spec_url_hosts
from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.canonical import canonical_text, spec_hash
from botkiln.interpreter.conformance import Divergence, Script, derive_scripts, run_script
from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.engine import Interpreter
from botkiln.interpreter.host import Engine, UpdateResult
from botkiln.interpreter.quickjs.engine import QuickJsEngine
from botkiln.interpreter.types import StepInput, StepOutput
from botkiln.interpreter.validation import validate_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


# --- known divergences ------------------------------------------------------------------------


@cache
# --- engines and helpers ----------------------------------------------------------------------


@cache
def _quickjs(source: str) -> QuickJsEngine:
    return QuickJsEngine(source)


def bot_engine(spec: dict[str, Any]) -> Engine:
    """The compiled bot.js of ``spec`` as a step-contract callable (QuickJS sandbox)."""
    return _quickjs(compile_spec(spec))


def _diff(divergence: Divergence) -> str:
    def lines(text: str) -> list[str]:
        try:
            return json.dumps(json.loads(text), indent=1, ensure_ascii=False, sort_keys=True).splitlines()
        except ValueError:
            return [text]

    diff = difflib.unified_diff(
        lines(divergence.expected), lines(divergence.actual), "reference", "bot.js", lineterm="", n=3
    )
    return divergence.render() + "\n" + "\n".join(diff)


def conform(
    spec: dict[str, Any],
    events: list[Any],
    fixture: dict[str, Any] | None = None,
    *,
    bot_username: str | None = None,
) -> list[UpdateResult]:
    """Run ``events`` through both engines, fail on the first difference; the bot's results."""
    assert validate_spec(spec) == [], validate_spec(spec)
    script = Script("case", events, fixture or {}, bot_username)
    _, _, divergence = run_script(spec, bot_engine(spec), script)
    if divergence is not None:
        pytest.fail(_diff(divergence), pytrace=False)
    conversation = Conversation(
        bot_engine(spec), spec, FixtureApi.for_spec(fixture or {}, spec), bot_username=bot_username
    )
    return [conversation.send(event)[1] for event in events]


def same_call(spec: dict[str, Any], data: StepInput) -> StepOutput:
    """One crafted call on both engines; fail if they differ. The bot's output."""
    expected = canonical_text(Interpreter(spec).step(copy.deepcopy(data)))
    output = bot_engine(spec)(data)
    assert canonical_text(output) == expected
    return output


def _spec(flows: list[dict[str, Any]], strings: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A spec with /start -> the first flow; strings in "en" (a dict value gives several locales)."""
    declared = extra.pop("vars", {})
    spec: dict[str, Any] = {
        "schema_ver": 1,
        "meta": {"botId": "t", "name": "T", "locales": ["en"], "defaultLocale": "en"},
        "commands": [{"command": "start", "flow": flows[0]["id"]}],
        "flows": flows,
        "state": {"vars": {name: {"type": "json", **decl} for name, decl in declared.items()}},
        "localization": {"strings": {k: v if isinstance(v, dict) else {"en": v} for k, v in strings.items()}},
    }
    for key, value in extra.items():
        if key == "meta":
            spec["meta"].update(value)
        else:
            spec[key] = value
    return spec


def _input(spec: dict[str, Any], event: dict[str, Any], **fields: Any) -> StepInput:
    fields_of_event = "updateId chatId chatType userId firstName lastName username languageCode messageId"
    base: dict[str, Any] = dict.fromkeys([*fields_of_event.split(), "text", "media", "command", "args"])
    base.update(dict.fromkeys(["callbackId", "data", "reason"]))
    context = {"botId": spec["meta"]["botId"], "revision": "r", "now": 1_767_225_600_000, "locale": "en", "chatId": 1}
    data: dict[str, Any] = {"event": {**base, **event}, "state": None, "context": context, **fields}
    return data  # type: ignore[return-value]


def texts(result: UpdateResult) -> list[str]:
    return [a["params"]["text"] for a in result.actions if "text" in a["params"] and a["method"] == "sendMessage"]


def types(result: UpdateResult) -> list[str]:
    return [e["type"] for e in result.events]


def _reply(step_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "reply", "text": text, **extra}


# --- the examples -----------------------------------------------------------------------------


def _example(path: Path) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    spec = json.loads(path.read_text("utf-8"))
    fixture_path = ROOT / "examples" / "fixtures" / f"{path.stem}.api.json"
    fixture = json.loads(fixture_path.read_text("utf-8")) if fixture_path.exists() else {}
    events_path = ROOT / "tests" / "examples" / f"{path.stem}.events.jsonl"
    lines = events_path.read_text("utf-8").splitlines() if events_path.exists() else []
    return spec, fixture, [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_agrees_with_the_reference_on_recorded_and_derived_conversations(path: Path) -> None:
    spec, fixture, events = _example(path)
    scripts = ([Script(path.stem, events, fixture)] if events else []) + derive_scripts(spec)
    for script in scripts:
        _, _, divergence = run_script(spec, bot_engine(spec), script)
        if divergence is not None:
            pytest.fail(_diff(divergence), pytrace=False)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_compiled_example_passes_the_ast_policy(path: Path) -> None:
    spec = json.loads(path.read_text("utf-8"))
    allowed = [*spec.get("security", {}).get("allowedDomains", []), *spec_url_hosts(spec)]
    report = check_source(compile_spec(spec), allowed_domains=allowed)
    assert report.ok, report.render("bot.js")


def test_the_policy_flags_only_the_spec_own_urls_when_given_just_the_api_allow_list() -> None:
    # Given a bot whose media and URL button name hosts outside security.allowedDomains
    spec = json.loads((ROOT / "examples" / "faq.json").read_text("utf-8"))
    # When its bot.js is checked against the API allow-list alone
    report = check_source(compile_spec(spec), allowed_domains=spec.get("security", {}).get("allowedDomains", []))
    # Then the only findings are those hosts, which come from the spec, not from the compiler
    assert {v.rule for v in report.violations} == {"url-not-allowed"}
    assert {v.message.split("`")[1] for v in report.violations} == set(spec_url_hosts(spec))


# --- layout and determinism -------------------------------------------------------------------


def test_first_line_names_compiler_sdk_ast_rules_and_spec_hash() -> None:
    spec, _, _ = _example(ROOT / "examples" / "faq.json")
    first = compile_spec(spec).split("\n", 1)[0]
    assert first == (
        f"// botkiln compiler {COMPILER_VERSION} · sdk {sdk_version()} · ast-rules {AST_RULES_VERSION} "
        f"· spec sha256:{spec_hash(spec)}"
    )


def test_compiling_twice_or_with_reordered_keys_gives_identical_bytes() -> None:
    spec, _, _ = _example(ROOT / "examples" / "booking.json")

    def reorder(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reorder(value[k]) for k in reversed(list(value))}
        if isinstance(value, list):
            return [reorder(v) for v in value]
        return value

    source = compile_spec(spec)
    assert compile_spec(copy.deepcopy(spec)) == source
    assert compile_spec(reorder(spec)) == source


def test_a_different_spec_gives_a_different_header_hash() -> None:
    spec, _, _ = _example(ROOT / "examples" / "faq.json")
    other = copy.deepcopy(spec)
    other["localization"]["strings"]["help"]["en"] += "!"
    first, second = compile_spec(spec).split("\n", 1)[0], compile_spec(other).split("\n", 1)[0]
    assert first != second and first.split("sha256:")[0] == second.split("sha256:")[0]


def test_steps_are_functions_with_their_json_pointer_and_targets_resolved() -> None:
    spec, _, _ = _example(ROOT / "examples" / "faq.json")
    source = compile_spec(spec)
    assert "// /flows/4/steps/0 (reply)\nfunction s4_0_menu(run) {" in source
    assert "  return s4_1_more;\n}" in source
    assert "\nfunction step(input) {\n  return runBot(BOT, input);\n}\n" in source
    assert source.count('"use strict";') == 1


# --- targeted conformance cases ---------------------------------------------------------------

STEPS_SPEC = _spec(
    [
        {
            "id": "main",
            "steps": [
                _reply(
                    "hello",
                    "hello",
                    media={"kind": "photo", "source": "AgADBAADq", "caption": "cap"},
                    buttons={"keyboard": [["b1", "b2"], ["blank"]]},
                ),
                {
                    "id": "doc",
                    "type": "reply",
                    "media": {"kind": "document", "source": "https://files.example.com/a.pdf"},
                    "buttons": {
                        "inline": [[{"text": "b1", "data": "x"}, {"text": "b2", "url": "https://example.com/x"}]]
                    },
                },
                _reply("rm", "hello", buttons={"remove": True}),
                {
                    "id": "ask_name",
                    "type": "ask",
                    "var": "name",
                    "prompt": "ask",
                    "buttons": {"keyboard": [["b1"]], "oneTime": False},
                },
                {
                    "id": "check_name",
                    "type": "validate",
                    "var": "name",
                    "regex": "[a-zа-яёα-ωά-ώ ]{2,20}",
                    "ignoreCase": True,
                    "error": "bad",
                },
                {"id": "ask_age", "type": "ask", "var": "age", "prompt": "ask"},
                {
                    "id": "check_age",
                    "type": "validate",
                    "var": "age",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 120},
                    "error": "bad",
                },
                {"id": "ask_email", "type": "ask", "var": "email", "prompt": "ask"},
                {
                    "id": "check_email",
                    "type": "validate",
                    "var": "email",
                    "schema": {
                        "type": "string",
                        "pattern": "[^@\\s]+@[^@\\s]+\\.[a-z]{2,}",
                        "minLength": 6,
                        "maxLength": 30,
                    },
                },
                {
                    "id": "ask_code",
                    "type": "ask",
                    "var": "code",
                    "prompt": "ask",
                    "buttons": {"inline": [[{"text": "b1", "data": "A1"}]]},
                },
                {
                    "id": "check_code",
                    "type": "validate",
                    "var": "code",
                    "schema": {"type": "string", "enum": ["A1", "B2"]},
                    "onFail": "ask_code",
                    "error": "bad",
                },
                {"id": "ask_amount", "type": "ask", "var": "amount", "prompt": "ask"},
                {
                    "id": "check_amount",
                    "type": "validate",
                    "var": "amount",
                    "schema": {"type": "number", "enum": [42, -7.5, 0]},
                    "onFail": "@main",
                },
                {
                    "id": "calc",
                    "type": "save",
                    "set": {
                        "n": {"increment": 0.1},
                        "obj": {
                            "value": {"b": [1, {"x": None}], "10": "ten", "2": "two", "é": True, "a": "{{state.name}}"}
                        },
                        "note": "Hi {{state.name}}, {{ context.firstName }}!",
                        "copy": "{{state.obj}}",
                        "age": "{{state.age}}",
                        "flag": True,
                        "nothing": None,
                        "count": 5,
                        "code": {"unset": True},
                    },
                },
                {
                    "id": "branch",
                    "type": "goto",
                    "when": {
                        "all": [
                            {"left": "state.age", "op": "ge", "right": 18},
                            {"left": "state.name", "op": "ne", "right": "x"},
                            {
                                "any": [
                                    {"left": "state.copy.b.1.x", "op": "exists"},
                                    {"left": "state.obj.10", "op": "eq", "right": "ten"},
                                ]
                            },
                            {"not": {"left": "state.code", "op": "exists"}},
                        ]
                    },
                    "next": "summary",
                    "elseNext": "minor",
                },
                _reply("minor", "minor", next="#end"),
                _reply("summary", "summary"),
            ],
        }
    ],
    {
        "hello": "Hello {{context.firstName}} {{context.username}} #{{context.chatId}} {{context.locale}}",
        "cap": "   ",
        "b1": "One",
        "b2": "Two",
        "blank": "{{state.nothing}}",
        "ask": "Answer please",
        "bad": "Wrong: {{state.name}}",
        "minor": "Too young ({{state.age}})",
        "summary": "{{state.note}} n={{state.n}} copy={{state.copy}} obj.b={{state.obj.b}} age={{state.age}} "
        "flag={{state.flag}} nothing=[{{state.nothing}}] amount={{state.amount}} code={{state.code}} "
        "proto=[{{state.obj.__proto__}}{{state.obj.constructor}}] first={{state.obj.b.0}} miss={{state.obj.b.9}}",
    },
    vars={
        k: {}
        for k in ["name", "age", "email", "code", "amount", "n", "obj", "note", "copy", "flag", "nothing", "count"]
    },
)


def test_every_step_type_and_validation_form_agrees() -> None:
    results = conform(
        STEPS_SPEC,
        [
            {"text": "/start", "name": "Zoë"},
            {"text": "X"},
            {"text": "ΣΟΦΊΑ Мария"},
            {"media": "sticker"},
            {"text": "12.5"},
            {"text": " 33 "},
            {"text": "a@b.c"},
            {"text": "Ann@Example.org"},
            {"callback": "B3"},
            {"callback": "A1"},
            {"text": "-7.50"},
        ],
    )
    assert types(results[-1])[-1] == "flow_completed"
    assert any("copy=" in t for t in texts(results[-1]))


def test_number_conversions_and_a_failed_number_validation_restarting_the_flow_agree() -> None:
    events = [
        {"text": "/start"},
        {"text": "Ann"},
        {"text": "200"},
        {"text": "0.5"},
        {"text": "-0"},
        {"text": "a@bc.de"},
    ]
    events += [{"text": "A1"}, {"text": "41"}, {"text": "Bob"}, {"text": "00"}, {"text": "9007199254740993"}]
    conform(STEPS_SPEC, events)


API_SPEC = _spec(
    [
        {
            "id": "api",
            "steps": [
                {"id": "q", "type": "save", "set": {"q": "a b&c/é 😀 {{state.name}}", "name": "Zoë"}},
                {
                    "id": "get",
                    "type": "apiCall",
                    "method": "GET",
                    "url": "https://api.example.com/v1/items/{{state.q}}?n={{state.n}}&o={{state.obj}}",
                    "map": {
                        "res": "",
                        "status": "/status",
                        "item": "/items/0/name",
                        "esc": "/a~1b/~0c",
                        "none": "/items/x",
                    },
                    "onError": "failed",
                },
                {
                    "id": "post",
                    "type": "apiCall",
                    "method": "POST",
                    "url": "https://api.example.com/v1/x",
                    "headers": {"Authorization": "Bearer {{secret.TOKEN}}", "X-Id": "42"},
                    "body": {
                        "name": "{{state.name}}",
                        "typed": "{{state.res}}",
                        "text": "n={{state.item}}",
                        "nested": ["{{state.res.items}}", 1.5, None, True, {"k": "{{ state.status }}"}],
                        "__proto__": "{{state.q}}",
                        "constructor": "{{state.none}}",
                    },
                    "timeoutMs": 1000,
                    "retries": 0,
                    "backoffMs": 0,
                    "map": {"n": "/n"},
                },
                _reply("ok", "ok"),
                _reply("failed", "failed", next="#end"),
            ],
        }
    ],
    {
        "ok": "res={{state.res}} status={{state.status}} item={{state.item}} esc={{state.esc}} "
        "none={{state.none}} n={{state.n}}",
        "failed": "failed {{state.res}}",
    },
    vars={k: {} for k in ["q", "name", "n", "obj", "res", "status", "item", "esc", "none"]},
    security={"allowedDomains": ["api.example.com"], "maxApiResponseKB": 2},
)

API_BODY = {
    "b": 1,
    "10": 2,
    "2": [3, '\u2028\u0001\x7f"\\'],
    "__proto__": {"x": 1},
    "constructor": "c",
    "a/b": {"~c": 5},
    "items": [{"name": "first"}, {"name": "second 😀"}],
    "status": "ok",
    "n": 1e21,
}


def test_api_calls_with_typed_bodies_url_encoding_pointers_and_errors_agree() -> None:
    fixture = {
        "GET https://api.example.com/v1/items/*": [
            {"status": 200, "body": API_BODY},
            {"status": 503},
            {"error": "timeout"},
            {"status": 200, "body": API_BODY},
        ],
        "POST https://api.example.com/v1/x": [
            {"status": 201, "body": {"n": -0.0}},
            {"error": "not_json", "status": 200},
        ],
    }
    results = conform(API_SPEC, [{"text": "/start"}] * 4, fixture)
    assert (
        results[0].requests[0]["url"].startswith("https://api.example.com/v1/items/a%20b%26c%2F%C3%A9%20%F0%9F%98%80")
    )
    assert [types(r)[-1] for r in results] == ["flow_completed", "flow_completed", "flow_completed", "flow_aborted"]


def test_pointer_indexes_past_zero_resolve_as_rfc_6901_says() -> None:
    spec = _spec(
        [
            {
                "id": "api",
                "steps": [
                    {
                        "id": "get",
                        "type": "apiCall",
                        "method": "GET",
                        "url": "https://api.example.com/x",
                        "map": {"item": "/items/1/name", "big": "/items/10", "lead": "/items/01"},
                    }
                ],
            }
        ],
        {},
        vars={"item": {}, "big": {}, "lead": {}},
        security={"allowedDomains": ["api.example.com"]},
    )
    fixture = {"GET https://api.example.com/x": {"status": 200, "body": API_BODY}}
    script = Script("pointer", [{"text": "/start"}], fixture)
    conversation = Conversation(bot_engine(spec), spec, FixtureApi.for_spec(fixture, spec))
    _, result = conversation.send({"text": "/start"})
    assert result.state is not None
    assert result.state["vars"] == {"item": "second 😀", "big": None, "lead": None}
    _, _, divergence = run_script(spec, bot_engine(spec), script)
    assert divergence is None, _diff(divergence)


def test_limits_on_transitions_actions_api_calls_and_state_size_agree() -> None:
    spec = _spec(
        [
            {"id": "loop", "steps": [{"id": "g", "type": "goto", "next": "g"}]},
            {"id": "spam", "steps": [_reply("r", "long", next="r")]},
            {
                "id": "apis",
                "steps": [
                    {"id": f"a{i}", "type": "apiCall", "method": "GET", "url": f"https://api.example.com/{i}"}
                    for i in range(3)
                ],
            },
            {
                "id": "late",
                "steps": [
                    {"id": "a", "type": "apiCall", "method": "GET", "url": "https://api.example.com/late"},
                    {"id": "n", "type": "save", "set": {"n": {"increment": 1}}},
                    {"id": "g", "type": "goto", "when": {"left": "state.n", "op": "lt", "right": 1000}, "next": "n"},
                ],
            },
            {
                "id": "fill",
                "steps": [{"id": "ask", "type": "ask", "var": "blob", "prompt": "long"}, _reply("ok", "ok")],
            },
            {"id": "big", "steps": [{"id": "s", "type": "save", "set": {"copy": "{{state.blob}}{{state.blob}}"}}]},
        ],
        {"long": "x" * 3000 + "\n" + "y" * 1000, "ok": "ok"},
        commands=[
            {"command": "loop", "flow": "loop"},
            {"command": "spam", "flow": "spam"},
            {"command": "apis", "flow": "apis"},
            {"command": "late", "flow": "late"},
            {"command": "start", "flow": "fill"},
            {"command": "big", "flow": "big", "argsVar": "args"},
        ],
        vars={"n": {}, "blob": {}, "copy": {}, "args": {}},
        state={"vars": {k: {"type": "json"} for k in ["n", "blob", "copy", "args"]}, "maxBytes": 256},
        security={"allowedDomains": ["api.example.com"]},
    )
    fixture = {"GET https://api.example.com/*": {"status": 200, "body": {}}}
    events: list[Any] = [{"text": c, "chat": i} for i, c in enumerate(["/loop", "/spam", "/apis", "/late"], start=1)]
    # 256 bytes is {"blob":"..."} with 245 bytes of payload: exactly at the limit, then one over
    events += [{"text": "/start", "chat": 5}, {"text": "é" * 122 + "x", "chat": 5}]
    events += [{"text": "/start", "chat": 6}, {"text": "😀" * 61 + "xy", "chat": 6}]
    events += [{"text": "/start", "chat": 7}, {"text": '"' * 122, "chat": 7}, {"text": "/big " + "a" * 300, "chat": 8}]
    events += [{"text": t, "chat": 9} for t in ["/start", "abc", "/big"]]
    events += [{"text": t, "chat": 10} for t in ["/start", "b" * 120, "/big"]]
    results = conform(spec, events, fixture)
    assert results[0].events[-2] == {"type": "limit_reached", "limit": "transitions"}
    assert len(results[1].actions) == 30 and results[1].events[-1] == {
        "type": "flow_aborted",
        "flow": "spam",
        "reason": "actions",
    }
    assert len(results[2].requests) == 2 and results[2].events[-1] == {
        "type": "flow_aborted",
        "flow": "apis",
        "reason": "apiCalls",
    }
    assert results[3].events[-1] == {"type": "flow_aborted", "flow": "late", "reason": "transitions"}
    assert [types(results[i])[-1] for i in (5, 7, 9, 13, 16)] == [
        "flow_completed",
        "flow_aborted",
        "flow_completed",
        "flow_completed",
        "flow_aborted",
    ]
    assert results[10].events[-1] == {"type": "flow_aborted", "flow": "big", "reason": "state"}


ROUTING_SPEC = _spec(
    [
        {
            "id": "menu",
            "steps": [
                {
                    "id": "pick",
                    "type": "ask",
                    "var": "pick",
                    "prompt": "pick",
                    "buttons": {"inline": [[{"text": "pick", "data": "item:1"}]]},
                },
                _reply("echo", "echo"),
            ],
        },
        {"id": "cb", "steps": [_reply("got", "got")]},
        {"id": "greet", "steps": [_reply("hi", "hi")]},
        {"id": "other", "steps": [_reply("o", "other")]},
    ],
    {
        "pick": {"en": "Pick one", "ru": "Выберите"},
        "echo": {"en": "You picked {{state.pick}} / {{state.item}}", "ru": "Вы выбрали {{state.pick}}"},
        "got": "got {{state.item}} {{state.arg}}",
        "hi": {"en": "Hi!", "ru": "Привет!"},
        "other": "other",
        "toast": {"en": "Working on it…", "ru": "Секунду"},
    },
    meta={"locales": ["en", "ru"], "defaultLocale": "en"},
    commands=[
        {"command": "start", "flow": "menu"},
        {"command": "set", "flow": "cb", "argsVar": "arg"},
        {"command": "constructor", "flow": "other"},
    ],
    callbacks=[
        {"data": "exact", "flow": "cb", "toast": "toast"},
        {"prefix": "item:", "var": "item", "flow": "cb"},
        {"prefix": "item:special", "flow": "other"},
    ],
    intents=[
        {"id": "hello", "flow": "greet", "keywords": {"en": ["hello", "good morning"], "ru": ["привет"]}},
        {"id": "constructor", "flow": "greet", "priority": 5, "cooldownSec": 10, "keywords": {"en": ["HELLO"]}},
        {
            "id": "scripts",
            "flow": "other",
            "priority": 1,
            "keywords": {"en": ["ΣΟΦΊΑ", "İstanbul", "ÉCOLE", "wi-fi", "«цена»"]},
        },
    ],
    vars={"pick": {}, "item": {}, "arg": {}},
)


def test_callbacks_commands_asks_and_intents_route_alike() -> None:
    events: list[Any] = [
        {"text": "/start"},
        {"callback": "exact"},
        {"text": "/start"},
        {"media": "sticker"},
        {"callback": "nomatch"},
        {"callback": "nomatch"},
        {"callback": "item:special"},
        {"text": "/set  a b  "},
        {"text": "/constructor"},
        {"text": "/__proto__"},
        {"text": "/tostring"},
        {"text": "Hello there", "wait": 1},
        {"text": "hello!", "wait": 3},
        {"text": "good  MORNING", "wait": 11},
        {"text": "привет", "lang": "ru"},
        {"text": "hello", "lang": "ru-RU", "wait": 20},
        {"text": "σοφία?"},
        {"text": "istanbul"},
        {"text": "İstanbul."},
        {"text": "école wi fi"},
        {"text": "WI-FI"},
        {"text": "ЦЕНА!"},
        {"media": "photo", "caption": "hello"},
        {"text": "nothing here"},
        {"text": "/start@other_bot"},
        {"text": "/start@routing_bot"},
        {"update_id": 999, "edited_message": {"message_id": 1, "chat": {"id": 1, "type": "private"}, "text": "x"}},
    ]
    results = conform(ROUTING_SPEC, events, bot_username="routing_bot")
    assert results[1].actions[0] == {
        "method": "answerCallbackQuery",
        "params": {"callback_query_id": "cb2", "text": "Working on it…"},
    }
    assert "flow_abandoned" in types(results[1]) and "callback_unmatched" in types(results[5])
    assert "intent_cooldown" in types(results[12])
    assert types(results[-3]) == ["update_ignored"]


def test_a_fallback_flow_catches_what_nothing_else_routes() -> None:
    spec = copy.deepcopy(ROUTING_SPEC)
    spec["fallback"] = {"flow": "other"}
    conform(spec, [{"text": "nothing here"}, {"media": "sticker"}, {"callback": "nomatch"}])


def test_state_and_variable_expiry_agree() -> None:
    spec = _spec(
        [
            {
                "id": "main",
                "steps": [{"id": "s", "type": "save", "set": {"a": 1, "p": 2, "q": 3}}, _reply("r", "show")],
            },
            {"id": "show", "steps": [_reply("r", "show")]},
        ],
        {"show": "a={{state.a}} p={{state.p}} q={{state.q}} d={{state.d}}"},
        commands=[{"command": "start", "flow": "main"}, {"command": "show", "flow": "show"}],
        vars={"a": {"ttlSec": 5}, "p": {"pii": True}, "q": {}, "d": {"default": {"k": [1]}}},
        meta={"retention": {"stateTtlSec": 60, "piiTtlSec": 120}},
    )
    waits = [0, 3, 6, 40, 50, 50, 50, 61, 0]
    events = [{"text": "/start"}] + [{"text": "/show", "wait": w} for w in waits]
    results = conform(spec, events)
    assert "state_expired" in types(results[-2])


def test_text_splitting_captions_and_blank_texts_agree() -> None:
    spec = _spec(
        [
            {
                "id": "echo",
                "steps": [
                    {"id": "ask", "type": "ask", "var": "t", "prompt": "prompt"},
                    _reply("twice", "twice", next="ask"),
                ],
            },
            {
                "id": "media",
                "steps": [
                    {
                        "id": "m",
                        "type": "reply",
                        "text": "t",
                        "media": {"kind": "photo", "source": "file_1", "caption": "t"},
                        "buttons": {"remove": True},
                    }
                ],
            },
        ],
        {"prompt": "Say something", "twice": "{{state.t}}\n{{state.t}}", "t": "{{state.t}}"},
        commands=[{"command": "start", "flow": "echo"}, {"command": "media", "flow": "media"}],
        vars={"t": {}},
    )
    answers = [
        "😀" * 4096,
        "слово " * 700,
        "a" + " " * 4094 + "b",
        " " * 4096,
        "\n" + "x" * 4095,
        "x" * 3000 + "\n\n" + "y" * 1000,
        "🙂 " * 1100,
        "\r\n\t ",
    ]
    events: list[Any] = [{"text": "/start"}] + [{"text": a} for a in answers]
    events += [{"text": "/media"}, {"text": "/start"}, {"text": "é" * 1024}, {"text": "/media"}]
    events += [
        {"text": "/start"},
        {"text": "é" * 1025},
        {"text": "/media"},
        {"text": "/start"},
        {"text": "   "},
        {"text": "/media"},
    ]
    results = conform(spec, events)
    assert all(len(t) <= 4096 for r in results for t in texts(r))
    assert "empty_text" in types(results[4])


def test_numbers_print_and_add_as_doubles() -> None:
    spec = _spec(
        [
            {
                "id": "main",
                "steps": [
                    {
                        "id": "s1",
                        "type": "save",
                        "set": {
                            "big": {"value": 1e21},
                            "small": 1e-7,
                            "f": 0.1,
                            "negz": -0.0,
                            "i": 9007199254740991,
                            "m": {"value": [1.0, 2.5, -0.0]},
                        },
                    },
                    {
                        "id": "s2",
                        "type": "save",
                        "set": {
                            "f": {"increment": 0.2},
                            "i": {"increment": 2},
                            "s": {"increment": 1.5},
                            "big": {"increment": 1},
                        },
                    },
                    {"id": "s3", "type": "save", "set": {"neg": {"increment": -0.0}, "half": {"increment": 5e-324}}},
                    _reply("r", "r"),
                    {
                        "id": "g",
                        "type": "goto",
                        "when": {"left": "state.f", "op": "gt", "right": 0.3},
                        "next": "yes",
                        "elseNext": "#end",
                    },
                    _reply("yes", "yes"),
                ],
            }
        ],
        {
            "r": "{{state.big}} {{state.small}} {{state.f}} {{state.negz}} {{state.i}} {{state.m}} {{state.s}} "
            "{{state.neg}} {{state.half}} {{context.now}}",
            "yes": "yes",
        },
        vars={k: {} for k in ["big", "small", "f", "negz", "i", "m", "s", "neg", "half"]},
    )
    [result] = conform(spec, [{"text": "/start"}])
    assert texts(result)[0].startswith("1e+21 1e-7 0.30000000000000004 0 9007199254740992 [1,2.5,0] 1.5 0 5e-324")


def test_conditions_compare_by_code_point_and_never_across_types() -> None:
    checks = [
        ("lt", "state.s", "\uff01"),
        ("gt", "state.s", "\uff01"),
        ("lt", "state.n", "3"),
        ("ge", "state.n", 2),
        ("eq", "state.t", 1),
        ("eq", "state.n", 2.0),
        ("in", "state.n", [1, 2]),
        ("in", "state.o", [{"b": 2, "a": 1}]),
        ("contains", "state.s", "😀"),
        ("contains", "state.l", {"a": 1}),
        ("contains", "state.o", "a"),
        ("ne", "state.o", {"a": 1}),
        ("exists", "state.o.__proto__", None),
        ("exists", "context.username", None),
        ("eq", "context.locale", "en"),
        ("le", "state.s", "😀"),
        ("eq", "state.l.1.0", "x"),
    ]
    steps: list[dict[str, Any]] = [
        {
            "id": "s",
            "type": "save",
            "set": {"s": "😀", "n": 2, "t": True, "o": {"value": {"a": 1, "b": 2}}, "l": {"value": [{"a": 1}, ["x"]]}},
        }
    ]
    for i, (op, left, right) in enumerate(checks):
        when = {"left": left, "op": op} | ({} if op == "exists" else {"right": right})
        after = f"c{i + 1}" if i + 1 < len(checks) else "#end"
        steps.append({"id": f"c{i}", "type": "goto", "when": when, "next": f"y{i}", "elseNext": after})
        steps.append(_reply(f"y{i}", f"y{i}", next=after))
    strings = {f"y{i}": f"check {i} holds" for i in range(len(checks))}
    spec = _spec([{"id": "main", "steps": steps}], strings, vars={k: {} for k in "sntol"})
    [result] = conform(spec, [{"text": "/start"}])
    assert texts(result)[0] == "check 1 holds"


def test_telemetry_filters_apply_at_output_only() -> None:
    spec = copy.deepcopy(STEPS_SPEC)
    spec["telemetry"] = {"exclude": ["step_completed", "awaiting_answer", "flow_started"]}
    conform(spec, [{"text": "/start"}, {"text": "Ann"}])
    spec["telemetry"] = {"enabled": False}
    [result, _] = conform(spec, [{"text": "/start"}, {"text": "Ann"}])
    assert result.events == [] and result.actions


def test_goto_emits_step_completed_as_the_doc_says() -> None:
    # docs/botspec.md §7.1: after every handler not stopped by a limit, step_completed
    spec = _spec([{"id": "main", "steps": [{"id": "g", "type": "goto", "next": "r"}, _reply("r", "r")]}], {"r": "r"})
    [result] = conform(spec, [{"text": "/start"}])
    assert result.events[2] == {"type": "step_completed", "flow": "main", "step": "g", "stepType": "goto"}


# --- crafted calls ------------------------------------------------------------------------------


def test_a_cursor_naming_no_ask_is_reset_and_context_gaps_read_as_null() -> None:
    spec = copy.deepcopy(STEPS_SPEC)
    spec["meta"].update({"locales": ["en", "de"], "defaultLocale": "en"})
    state = {
        "vars": {"name": "Ann"},
        "cursor": {"flow": "main", "step": "hello", "since": 1},
        "cooldowns": {},
        "setAt": {},
        "updatedAt": 5,
    }
    data = _input(spec, {"kind": "message", "text": "hi"}, state=state)
    output = same_call(spec, data)
    assert output["events"][0] == {"type": "cursor_reset", "flow": "main", "step": "hello"}
    data = _input(spec, {"kind": "message", "command": "start", "args": ""})
    data["context"] = {"now": 7, "locale": "fr"}
    output = same_call(spec, data)
    assert output["actions"][0]["params"]["chat_id"] is None
    gone = dict(state, cursor={"flow": "nope", "step": "x", "since": 1})
    same_call(spec, _input(spec, {"kind": "callback", "data": "A1", "callbackId": "q"}, state=gone))


def test_a_resumed_call_continues_from_the_pending_counters() -> None:
    first = bot_engine(API_SPEC)(_input(API_SPEC, {"kind": "message", "command": "start", "args": ""}))
    pending = first["pending"]
    for result in [
        {"ok": True, "status": 200, "body": API_BODY},
        {"ok": False, "error": "http", "status": 500},
        {"ok": True, "status": 204},
    ]:
        data = _input(API_SPEC, {"kind": "message", "command": "start", "args": ""}, state=first["state"])
        data["resume"] = {"pending": pending, "result": result}  # type: ignore[typeddict-item]
        same_call(API_SPEC, data)


# --- the SDK against the reference helpers ------------------------------------------------------


@cache
def _sdk() -> Any:
    import quickjs

    from botkiln.generator.compiler import sdk_source

    context = quickjs.Context()
    context.eval(sdk_source())
    return context


def _js(call: str, *args: Any) -> Any:
    return json.loads(_sdk().eval(f"JSON.stringify({call}({', '.join(json.dumps(a) for a in args)}))"))


def test_sdk_fold_words_and_compare_match_the_reference_text_helpers() -> None:
    from botkiln.interpreter.text import compare, fold, words

    every = "".join(chr(c) for c in range(0x600) if not 0xD800 <= c <= 0xDFFF) + "İΣς😀Ꭰ"
    assert _js("fold", every) == fold(every)
    sample = "Ölçü «ΣΟΦΊΑ» İstanbul—wi-fi_ok…\u00a0x\u000by 😀! «цена»"
    assert _js("words", sample) == list(words(sample))
    pairs = [("\uff01", "😀"), ("😀", "😁"), ("a", "ab"), ("", ""), ("é", "e\u0301"), ("\ud7ff", "\ue000")]
    assert [_js("compareText", a, b) for a, b in pairs] == [compare(a, b) for a, b in pairs]


REGEX_CASES: list[tuple[str, list[str]]] = [
    ("", ["", "a"]),
    ("^a$", ["a", "aa", ""]),
    ("a|", ["", "a", "b"]),
    ("()*", ["", "a"]),
    ("(a?){3,5}", ["", "aaa", "aaaaa", "aaaaaa"]),
    ("((a*)*)*b", ["b", "aaab", "aaa"]),
    ("(a|ab)*c", ["abac", "ababc", "abc", "aabbc"]),
    ("a{2,}b{0,2}c{3}", ["aaccc", "aabbccc", "abccc", "aabbbccc"]),
    ("[^\\d\\s]+", ["abc", "a1", "é😀", ""]),
    ("\\u{1F600}.\\u0041", ["😀xA", "😀😀A", "😀A"]),
    ("[а-яё]+", ["ёлка", "ЁЛКА", "elka"]),
    ("[\\w-]+\\.[a-z]{2,}", ["my-site.com", "x.c", "a_b.org"]),
    ("[-a]+[a-]", ["-a-", "aa", "-"]),
    ("\\.\\-\\/\\^\\$\\\\", [".-/^$\\"]),
    ("[^@\\s]+@[^@\\s]+\\.[a-z]{2,}", ["a@b.co", "A@B.CO", "a@@b.co"]),
    (".{2,5}", ["ab", "😀😀", "a", "abcdef"]),
    ("x?y+z*", ["y", "xyyzz", "xz"]),
    ("\\S\\s\\W\\D", ["a\t!x", "a b c"]),
    ("[\\u0000-\\u001f]*", ["\u0001\u0002", "a"]),
    ("(?:σοφία|sofia)", ["ΣΟΦΊΑ", "sofia", "SOFIA"]),
    ("istanbul", ["İstanbul", "ISTANBUL", "istanbul"]),
]


@pytest.mark.parametrize(("pattern", "values"), REGEX_CASES, ids=[p or "empty" for p, _ in REGEX_CASES])
def test_sdk_regex_matcher_agrees_with_the_reference_dialect(pattern: str, values: list[str]) -> None:
    from botkiln.interpreter.regex_dialect import compile_pattern

    regex = compile_pattern(pattern)
    for value in [*values, "a" * 4097]:
        for ignore_case in (False, True):
            got = _sdk().eval(
                f"rxMatch(rxCompile({json.dumps(pattern)}), {json.dumps(value)}, {json.dumps(ignore_case)})"
            )
            assert got == regex.fullmatch(value, ignore_case=ignore_case), (pattern, value, ignore_case)


def test_sdk_regex_rejects_what_the_dialect_rejects() -> None:
    from botkiln.interpreter.regex_dialect import check_pattern

    for pattern in [
        "(a",
        "a)",
        "[]",
        "a**",
        "a{2,1}",
        "a{101}",
        "\\b",
        "(?=a)",
        "[z-a]",
        "\\1",
        "a{1",
        "x" * 257,
        "$a",
        "a^",
    ]:
        assert check_pattern(pattern) is not None
        with pytest.raises(quickjs_error()):
            _sdk().eval(f"rxCompile({json.dumps(pattern)})")


def quickjs_error() -> type[Exception]:
    import quickjs

    return quickjs.JSException  # type: ignore[no-any-return]


def _patterns() -> Any:
    from hypothesis import strategies as st

    atoms = st.sampled_from(["a", "b", "é", ".", "[ab]", "[^a]", "[a-c]", "\\d", "\\w", "\\s", "[é-ж]", "\\u{1F600}"])
    quantifiers = st.sampled_from(["", "", "*", "+", "?", "{2}", "{0,2}", "{1,}", "{2,3}"])

    def alternation(inner: Any) -> Any:
        groups = st.tuples(st.sampled_from(["(", "(?:"]), inner).map(lambda t: f"{t[0]}{t[1]})")
        return st.lists(st.tuples(atoms | groups, quantifiers).map("".join), max_size=4).map("".join)

    sequence = st.recursive(
        st.lists(st.tuples(atoms, quantifiers).map("".join), max_size=4).map("".join),
        lambda inner: st.lists(alternation(inner), min_size=1, max_size=3).map("|".join),
        max_leaves=6,
    )
    return sequence


def test_sdk_regex_matcher_agrees_with_the_reference_on_generated_patterns() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from botkiln.interpreter.regex_dialect import check_pattern, compile_pattern

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(pattern=_patterns(), values=st.lists(st.text("abcÉé1 ж😀", max_size=8), min_size=1, max_size=6))
    def agree(pattern: str, values: list[str]) -> None:
        if check_pattern(pattern) is not None:
            return
        regex = compile_pattern(pattern)
        both = "(v) => [rxMatch(rx, v, false), rxMatch(rx, v, true)]"
        js = f"(function (rx) {{ return JSON.stringify({json.dumps(values)}.map({both})); }})"
        js += f"(rxCompile({json.dumps(pattern)}))"
        expected = [[regex.fullmatch(v), regex.fullmatch(v, ignore_case=True)] for v in values]
        assert json.loads(_sdk().eval(js)) == expected, pattern

    agree()


def test_validate_without_on_fail_returns_to_the_nearest_ask_and_literal_conditions_agree() -> None:
    steps = [
        {"id": "a", "type": "ask", "var": "a", "prompt": "p"},
        _reply("r", "p"),
        {"id": "v", "type": "validate", "var": "a", "regex": "\\d+", "error": "p"},
        {"id": "g", "type": "goto", "when": {"any": [False, {"not": True}, {"all": []}]}, "next": "yes"},
        {"id": "h", "type": "goto", "when": {"any": []}, "next": "yes", "elseNext": "#end"},
        _reply("yes", "p"),
    ]
    results = conform(
        _spec([{"id": "main", "steps": steps}], {"p": "p {{state.a}}"}, vars={"a": {}}),
        [
            {"text": "/start"},
            {"text": "x"},
            {"text": "12"},
        ],
    )
    assert types(results[1])[-1] == "awaiting_answer" and texts(results[2])[-1] == "p 12"


def test_unresolved_names_in_an_invalid_spec_still_compile_to_ends() -> None:
    # Behaviour on invalid specs is undefined, but the compiler does not crash on them.
    steps = [
        _reply("r", "missing", next="nowhere"),
        {"id": "v", "type": "validate", "var": "a", "regex": "x"},
        {"id": "w", "type": "validate", "var": "a", "schema": {"type": "string", "pattern": "x"}},
    ]
    source = compile_spec(_spec([{"id": "main", "steps": steps}], {}, vars={"a": {}}))
    assert source.count("rxCompile(") == 2  # the SDK's definition and one shared RX_0
    assert 'reply(run, "main", "r", -1, null, null);\n  return END;' in source
    assert 'validationFailed(run, "main", "v", "a", -1);\n  return END;' in source
