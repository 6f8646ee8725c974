"""The reference interpreter against docs/botspec.md, one behaviour per test."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from botkiln.interpreter.canonical import canonical_json
from botkiln.interpreter.engine import Interpreter
from botkiln.interpreter.events import build_context, normalize_update
from tests.interpreter.helpers import spec_with, talk, texts, types


def _reply(id_: str, key: str, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "type": "reply", "text": key, **extra}


def test_start_command_runs_the_flow_and_completes_it() -> None:
    spec = spec_with(
        [{"id": "main", "steps": [_reply("a", "hi"), _reply("b", "there")]}], {"hi": "Hi", "there": "There"}
    )
    [result] = talk(spec, [{"text": "/start"}])
    assert texts(result) == ["Hi", "There"]
    assert types(result) == ["command", "flow_started", "step_completed", "step_completed", "flow_completed"]
    assert result.state is not None and result.state["cursor"] is None


def test_command_args_go_to_args_var_and_mentions_of_other_bots_are_ignored() -> None:
    spec = spec_with(
        [{"id": "main", "steps": [_reply("a", "hi")]}], {"hi": "ref={{state.ref}}"}, vars={"ref": {"type": "string"}}
    )
    spec["commands"][0]["argsVar"] = "ref"
    spec_obj = Interpreter(spec)
    update: dict[str, Any] = {
        "update_id": 1,
        "message": {"message_id": 1, "chat": {"id": 5, "type": "group"}, "text": "/START@Shop_Bot   promo 1 "},
    }
    event = normalize_update(update, bot_username="shop_bot")
    out = spec_obj.step({"event": event, "state": None, "context": build_context(event, spec, now=1)})
    assert out["actions"][0]["params"]["text"] == "ref=promo 1"
    other = normalize_update(
        {**update, "message": {**update["message"], "text": "/start@other_bot"}}, bot_username="shop_bot"
    )
    assert other["kind"] == "ignored" and other["reason"] == "other_bot"


def test_ask_waits_then_takes_the_answer_and_continues() -> None:
    spec = spec_with(
        [{"id": "main", "steps": [{"id": "q", "type": "ask", "var": "name", "prompt": "q"}, _reply("r", "r")]}],
        {"q": "Name?", "r": "Hello {{state.name}}!"},
        vars={"name": {"type": "string"}},
    )
    first, second = talk(spec, [{"text": "/start"}, {"text": "Ann"}])
    assert texts(first) == ["Name?"]
    assert first.state is not None and first.state["cursor"] == {
        "flow": "main",
        "step": "q",
        "since": first.state["updatedAt"],
    }
    assert texts(second) == ["Hello Ann!"]
    assert types(second) == ["answer_received", "step_completed", "step_completed", "flow_completed"]


def test_a_sticker_while_asking_resends_the_prompt_and_keeps_waiting() -> None:
    spec = spec_with(
        [{"id": "main", "steps": [{"id": "q", "type": "ask", "var": "name", "prompt": "q"}]}],
        {"q": "Name?"},
        vars={"name": {}},
    )
    _, result = talk(spec, [{"text": "/start"}, {"media": "sticker"}])
    assert texts(result) == ["Name?"]
    assert types(result) == ["answer_rejected"]
    assert result.state is not None and result.state["cursor"] is not None


def test_a_command_during_an_ask_abandons_it() -> None:
    spec = spec_with(
        [{"id": "main", "steps": [{"id": "q", "type": "ask", "var": "name", "prompt": "q"}]}],
        {"q": "Name?"},
        vars={"name": {}},
    )
    _, result = talk(spec, [{"text": "/start"}, {"text": "/start"}])
    assert types(result) == ["command", "flow_abandoned", "flow_started", "awaiting_answer"]


def test_validate_converts_numbers_and_routes_failures_back_to_the_ask() -> None:
    spec = spec_with(
        [
            {
                "id": "main",
                "steps": [
                    {"id": "q", "type": "ask", "var": "age", "prompt": "q"},
                    {
                        "id": "v",
                        "type": "validate",
                        "var": "age",
                        "schema": {"type": "integer", "minimum": 18},
                        "error": "bad",
                    },
                    _reply("ok", "ok"),
                ],
            }
        ],
        {"q": "Age?", "bad": "A whole number from 18, please.", "ok": "Age {{state.age}}"},
        vars={"age": {"type": "number"}},
    )
    _, bad, worse, good = talk(
        spec,
        [
            {"text": "/start"},
            {"text": "12"},
            {"text": "18.5"},
            {"text": " 042 "},
        ],
    )
    assert texts(bad) == ["A whole number from 18, please.", "Age?"]
    assert "validation_failed" in types(bad)
    assert bad.state is not None and "age" not in bad.state["vars"]
    assert texts(worse) == ["A whole number from 18, please.", "Age?"]
    assert texts(good) == ["A whole number from 18, please.", "Age?"]  # leading zero is not a decimal


def test_validated_number_is_stored_as_a_number() -> None:
    spec = spec_with(
        [
            {
                "id": "main",
                "steps": [
                    {"id": "q", "type": "ask", "var": "n", "prompt": "q"},
                    {"id": "v", "type": "validate", "var": "n", "schema": {"type": "number", "maximum": 10}},
                ],
            }
        ],
        {"q": "N?"},
        vars={"n": {"type": "number"}},
    )
    _, result = talk(spec, [{"text": "/start"}, {"text": "2.50"}])
    assert result.state is not None and result.state["vars"]["n"] == 2.5


def test_save_evaluates_against_the_old_state_and_keeps_typed_templates() -> None:
    spec = spec_with(
        [
            {
                "id": "main",
                "steps": [
                    {"id": "s1", "type": "save", "set": {"a": 1, "b": {"value": {"k": [1, 2]}}}},
                    {
                        "id": "s2",
                        "type": "save",
                        "set": {
                            "a": {"increment": 2.5},
                            "c": "{{state.a}}",
                            "d": "a={{state.a}}",
                            "b": {"unset": True},
                        },
                    },
                    _reply("r", "r"),
                ],
            }
        ],
        {"r": "{{state.a}}|{{state.c}}|{{state.d}}|{{state.b}}"},
        vars={"a": {}, "b": {}, "c": {}, "d": {}},
    )
    [result] = talk(spec, [{"text": "/start"}])
    assert result.state is not None
    assert result.state["vars"] == {"a": 3.5, "c": 1, "d": "a=1"}
    assert texts(result) == ["3.5|1|a=1|"]


def test_goto_conditions_choose_branches() -> None:
    flows = [
        {
            "id": "main",
            "steps": [
                {"id": "s", "type": "save", "set": {"n": 5, "tags": {"value": ["vip", "new"]}}},
                {
                    "id": "g",
                    "type": "goto",
                    "when": {
                        "all": [
                            {"left": "state.n", "op": "ge", "right": 5},
                            {"left": "state.tags", "op": "contains", "right": "vip"},
                            {"not": {"left": "state.missing", "op": "exists"}},
                        ]
                    },
                    "next": "yes",
                    "elseNext": "no",
                },
                _reply("no", "no", next="#end"),
                _reply("yes", "yes", next="@other"),
            ],
        },
        {"id": "other", "steps": [_reply("o", "o")]},
    ]
    spec = spec_with(flows, {"no": "no", "yes": "yes", "o": "other"}, vars={"n": {}, "tags": {}, "missing": {}})
    [result] = talk(spec, [{"text": "/start"}])
    assert texts(result) == ["yes", "other"]
    assert types(result)[-3:] == ["flow_started", "step_completed", "flow_completed"]
    assert result.events[-3] == {"type": "flow_started", "flow": "other", "via": "goto"}


def test_transition_limit_aborts_an_endless_loop() -> None:
    spec = spec_with([{"id": "main", "steps": [{"id": "g", "type": "goto", "next": "g"}]}], {})
    [result] = talk(spec, [{"text": "/start"}])
    assert result.events[-2:] == [
        {"type": "limit_reached", "limit": "transitions"},
        {"type": "flow_aborted", "flow": "main", "reason": "transitions"},
    ]
    assert sum(1 for e in result.events if e["type"] == "step_completed") == 200


def test_action_limit_stops_at_thirty_messages() -> None:
    spec = spec_with([{"id": "main", "steps": [_reply("r", "r", next="r")]}], {"r": "spam"})
    [result] = talk(spec, [{"text": "/start"}])
    assert len(result.actions) == 30
    assert result.events[-1] == {"type": "flow_aborted", "flow": "main", "reason": "actions"}


def test_api_call_pends_then_maps_the_result() -> None:
    flows = [
        {
            "id": "main",
            "steps": [
                {
                    "id": "c",
                    "type": "apiCall",
                    "method": "POST",
                    "url": "https://api.example.com/v1/items?q={{state.q}}",
                    "body": {"q": "{{state.q}}", "n": "{{state.n}}", "s": "n={{state.n}}"},
                    "map": {"id": "/item/id", "gone": "/nope"},
                },
                _reply("r", "r"),
            ],
        }
    ]
    spec = spec_with(
        flows,
        {"r": "id {{state.id}}"},
        vars={"q": {}, "n": {}, "id": {}, "gone": {}},
        security={"allowedDomains": ["api.example.com"]},
    )
    spec["flows"][0]["steps"].insert(0, {"id": "s", "type": "save", "set": {"q": "a b&c/é", "n": 7}})
    api = {"POST https://api.example.com/v1/items*": {"status": 201, "body": {"item": {"id": "X1"}}}}
    [result] = talk(spec, [{"text": "/start"}], api)
    [request] = result.requests
    assert request["url"] == "https://api.example.com/v1/items?q=a%20b%26c%2F%C3%A9"
    assert request["body"] == {"q": "a b&c/é", "n": 7, "s": "n=7"}
    assert texts(result) == ["id X1"]
    assert result.state is not None and result.state["vars"]["gone"] is None
    assert {"type": "api_ok", "flow": "main", "step": "c", "status": 201} in result.events


@pytest.mark.parametrize("failure", [{"error": "timeout"}, {"status": 503}])
def test_api_errors_go_to_on_error_or_abort(failure: dict[str, Any]) -> None:
    call = {"id": "c", "type": "apiCall", "method": "GET", "url": "https://api.example.com/x"}
    flows = [{"id": "main", "steps": [call, _reply("ok", "ok"), _reply("sorry", "sorry")]}]
    spec = spec_with(flows, {"ok": "ok", "sorry": "sorry"}, security={"allowedDomains": ["api.example.com"]})
    api = {"GET https://api.example.com/x": failure}
    [aborted] = talk(spec, [{"text": "/start"}], api)
    assert texts(aborted) == []
    assert aborted.events[-1] == {"type": "flow_aborted", "flow": "main", "reason": "api_error"}
    call["onError"] = "sorry"
    [handled] = talk(spec, [{"text": "/start"}], api)
    assert texts(handled) == ["sorry"]


def test_third_api_call_in_one_update_hits_the_limit() -> None:
    call = {"type": "apiCall", "method": "GET", "url": "https://api.example.com/x"}
    flows = [{"id": "main", "steps": [{"id": f"c{i}", **call} for i in range(3)]}]
    spec = spec_with(flows, {}, security={"allowedDomains": ["api.example.com"]})
    [result] = talk(spec, [{"text": "/start"}], {"GET https://api.example.com/x": {"status": 200, "body": {}}})
    assert len(result.requests) == 2
    assert result.events[-2:] == [
        {"type": "limit_reached", "limit": "apiCalls"},
        {"type": "flow_aborted", "flow": "main", "reason": "apiCalls"},
    ]


def test_callbacks_are_always_answered_and_routed() -> None:
    flows = [
        {
            "id": "main",
            "steps": [
                {
                    "id": "q",
                    "type": "ask",
                    "var": "pick",
                    "prompt": "q",
                    "buttons": {"inline": [[{"text": "a", "data": "A"}], [{"text": "h", "data": "help"}]]},
                },
                _reply("r", "r"),
            ],
        },
        {"id": "help", "steps": [_reply("h", "h")]},
        {"id": "item", "steps": [_reply("i", "i")]},
    ]
    spec = spec_with(
        flows,
        {"q": "Pick", "a": "A", "h": "Help!", "r": "You picked {{state.pick}}", "i": "Item {{state.item}}", "t": "ok"},
        vars={"pick": {}, "item": {}},
        callbacks=[{"data": "help", "flow": "help", "toast": "t"}, {"prefix": "item:", "flow": "item", "var": "item"}],
    )
    start, picked, helped, item, stale = talk(
        spec,
        [{"text": "/start"}, {"callback": "A"}, {"callback": "help"}, {"callback": "item:42"}, {"callback": "zzz"}],
    )
    assert start.actions[0]["params"]["reply_markup"] == {
        "inline_keyboard": [[{"text": "A", "callback_data": "A"}], [{"text": "Help!", "callback_data": "help"}]]
    }
    assert picked.actions[0] == {"method": "answerCallbackQuery", "params": {"callback_query_id": "cb2"}}
    assert texts(picked) == ["You picked A"]
    assert helped.actions[0]["params"] == {"callback_query_id": "cb3", "text": "ok"}
    assert texts(item) == ["Item 42"]
    assert types(stale) == ["callback_unmatched"] and len(stale.actions) == 1


def test_intents_match_words_by_locale_priority_and_cooldown() -> None:
    flows = [{"id": "a", "steps": [_reply("a", "a")]}, {"id": "b", "steps": [_reply("b", "b")]}]
    spec = spec_with(
        flows,
        {"a": "A", "b": "B"},
        intents=[
            {"id": "low", "flow": "a", "keywords": {"en": ["price"]}},
            {
                "id": "high",
                "flow": "b",
                "priority": 5,
                "cooldownSec": 60,
                "keywords": {"en": ["how much"], "ru": ["сколько"]},
            },
        ],
    )
    spec["meta"]["locales"] = ["en", "ru"]
    r1, r2, r3, r4, r5 = talk(
        spec,
        [
            {"text": "HOW   much is the price?"},
            {"text": "how much, price"},
            {"text": "how muchness"},
            {"text": "Сколько?", "lang": "ru-RU", "wait": 60},
            {"text": "prices"},
        ],
    )
    assert texts(r1) == ["B"]
    assert types(r2)[:2] == ["intent_cooldown", "intent_matched"] and texts(r2) == ["A"]
    assert texts(r3) == [] and types(r3) == ["unhandled"]
    assert texts(r4) == ["B"]
    assert texts(r5) == []


def test_long_texts_split_at_newlines_and_markup_goes_last() -> None:
    long = ("x" * 3000 + "\n") * 3
    spec = spec_with(
        [{"id": "main", "steps": [_reply("r", "r", buttons={"keyboard": [["b"]]})]}],
        {"r": "{{state.t}}", "b": "   "},
        vars={"t": {}},
    )
    spec["flows"][0]["steps"].insert(0, {"id": "s", "type": "save", "set": {"t": long}})
    [result] = talk(spec, [{"text": "/start"}])
    chunks = texts(result)
    assert [len(c) for c in chunks] == [3001, 3001, 3001]
    assert "reply_markup" not in result.actions[0]["params"]
    assert result.actions[-1]["params"]["reply_markup"]["keyboard"] == [[{"text": "·"}]]


def test_blank_text_sends_nothing_and_says_so() -> None:
    spec = spec_with(
        [{"id": "main", "steps": [_reply("r", "r")]}],
        {"r": "{{state.t}}"},
        vars={"t": {"type": "string", "default": " \n"}},
    )
    [result] = talk(spec, [{"text": "/start"}])
    assert result.actions == [] and "empty_text" in types(result)


def test_long_caption_is_sent_as_text_after_the_photo() -> None:
    spec = spec_with(
        [
            {
                "id": "main",
                "steps": [
                    {
                        "id": "p",
                        "type": "reply",
                        "media": {"kind": "photo", "source": "https://x.example/p.jpg", "caption": "c"},
                    }
                ],
            }
        ],
        {"c": "y" * 1025},
    )
    [result] = talk(spec, [{"text": "/start"}])
    assert [a["method"] for a in result.actions] == ["sendPhoto", "sendMessage"]
    assert "caption" not in result.actions[0]["params"]


def test_state_limit_refuses_the_write_and_aborts() -> None:
    spec = spec_with(
        [{"id": "main", "steps": [{"id": "s", "type": "save", "set": {"big": "z" * 300}}, _reply("r", "r")]}],
        {"r": "r"},
        vars={"big": {}},
    )
    spec["state"]["maxBytes"] = 256
    [result] = talk(spec, [{"text": "/start"}])
    assert result.state is not None and result.state["vars"] == {}
    assert result.events[-2:] == [
        {"type": "limit_reached", "limit": "state"},
        {"type": "flow_aborted", "flow": "main", "reason": "state"},
    ]


def test_variable_and_state_ttls_expire() -> None:
    spec = spec_with(
        [
            {
                "id": "main",
                "steps": [{"id": "s", "type": "save", "set": {"code": "1234", "keep": "k"}}, _reply("r", "r")],
            },
            {"id": "show", "steps": [_reply("x", "x")]},
        ],
        {"r": "r", "x": "[{{state.code}}|{{state.keep}}]"},
        vars={"code": {"type": "string", "ttlSec": 10}, "keep": {}},
    )
    spec["commands"].append({"command": "show", "flow": "show"})
    spec["meta"]["retention"] = {"stateTtlSec": 3600}
    _, soon, later, much_later = talk(
        spec,
        [
            {"text": "/start"},
            {"text": "/show", "wait": 5},
            {"text": "/show", "wait": 10},
            {"text": "/show", "wait": 3600},
        ],
    )
    assert texts(soon) == ["[1234|k]"]
    assert texts(later) == ["[|k]"]
    assert texts(much_later) == ["[|]"] and types(much_later)[0] == "state_expired"


def test_cursor_naming_a_missing_step_is_reset() -> None:
    spec = spec_with([{"id": "main", "steps": [_reply("r", "r")]}], {"r": "r"})
    engine = Interpreter(spec)
    event = normalize_update(
        {"update_id": 1, "message": {"message_id": 1, "chat": {"id": 1, "type": "private"}, "text": "hi"}}
    )
    state = {
        "vars": {},
        "cursor": {"flow": "gone", "step": "q", "since": 0},
        "cooldowns": {},
        "setAt": {},
        "updatedAt": 0,
    }
    out = engine.step({"event": event, "state": state, "context": build_context(event, spec, now=5)})  # type: ignore[typeddict-item]
    assert out["events"][:2] == [{"type": "cursor_reset", "flow": "gone", "step": "q"}, {"type": "unhandled"}]


def test_telemetry_filter_only_changes_events() -> None:
    spec = spec_with([{"id": "main", "steps": [_reply("r", "r")]}], {"r": "r"})
    [full] = talk(spec, [{"text": "/start"}])
    spec["telemetry"] = {"exclude": ["step_completed"]}
    [filtered] = talk(spec, [{"text": "/start"}])
    spec["telemetry"] = {"enabled": False}
    [off] = talk(spec, [{"text": "/start"}])
    assert full.actions == filtered.actions == off.actions
    assert "step_completed" not in types(filtered) and off.events == []


def test_step_is_pure_and_deterministic(spec: dict[str, Any]) -> None:
    engine = Interpreter(spec)
    event = normalize_update(
        {"update_id": 1, "message": {"message_id": 1, "chat": {"id": 1, "type": "private"}, "text": "/start"}}
    )
    data = {"event": event, "state": None, "context": build_context(event, spec, now=7)}
    before = copy.deepcopy(data)
    outputs = {canonical_json(engine.step(data)) for _ in range(3)}  # type: ignore[arg-type]
    assert len(outputs) == 1 and data == before
