"""Golden conversations for the example bots in ``examples/``.

Each example ``NAME`` has a scripted conversation ``NAME.events.jsonl`` (the short
forms of ``botkiln simulate --help``) and its expected output ``NAME.golden.jsonl``:
one canonical JSON line per event, exactly what
``botkiln simulate examples/NAME.json --events ... --api examples/fixtures/NAME.api.json``
prints. The conversation runs in-process through the same host code the CLI uses.

The golden files were checked by hand against docs/botspec.md before they were
frozen. To rewrite them after an intended behaviour change, run
``BOTKILN_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/examples`` and review
the diff like any other change.
"""

from __future__ import annotations

import difflib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from botkiln.infra.cli import main
from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.canonical import canonical_text
from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.engine import Interpreter

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "examples"
HERE = Path(__file__).resolve().parent
EXAMPLES = ("faq", "lead_capture", "booking", "quiz", "support")
UPDATE_ENV = "BOTKILN_UPDATE_GOLDEN"

Record = dict[str, Any]


def _load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def _events(path: Path) -> list[Any]:
    """Event lines as ``botkiln simulate`` reads them (blank and # lines skipped)."""
    lines = path.read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


@cache
def conversation(name: str) -> tuple[Record, ...]:
    """The output records of example ``name``'s scripted conversation, one per event."""
    spec = _load(EXAMPLES_DIR / f"{name}.json")
    fixture = _load(EXAMPLES_DIR / "fixtures" / f"{name}.api.json")
    talk = Conversation(Interpreter(spec).step, spec, FixtureApi.for_spec(fixture, spec))
    records: list[Record] = []
    for number, item in enumerate(_events(HERE / f"{name}.events.jsonl"), start=1):
        chat, result = talk.send(item)
        # Round-trip through canonical JSON so records compare like the golden lines.
        records.append(json.loads(canonical_text({"update": number, "chat": chat, **result.as_json()})))
    return tuple(records)


def golden_lines(name: str) -> list[str]:
    """The lines ``botkiln simulate`` prints for example ``name``."""
    return [canonical_text(record) for record in conversation(name)]


def _pretty(line: str) -> list[str]:
    return json.dumps(json.loads(line), indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _explain(name: str, expected: list[str], actual: list[str]) -> str:
    events = _events(HERE / f"{name}.events.jsonl")
    parts = [f"{name}: the conversation no longer matches {name}.golden.jsonl"]
    if len(expected) != len(actual):
        parts.append(f"  {len(expected)} golden lines, {len(actual)} produced")
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        if want == got:
            continue
        event = json.dumps(events[index], ensure_ascii=False) if index < len(events) else "?"
        parts.append(f"\n--- update {index + 1}: {event}")
        diff = difflib.unified_diff(_pretty(want), _pretty(got), "golden", "actual", lineterm="", n=2)
        parts.extend(diff)
    parts.append(f"\nIf the change is intended: {UPDATE_ENV}=1 pytest tests/examples, then review the diff.")
    return "\n".join(parts)


def by_update(name: str, number: int) -> Record:
    """The record of update ``number`` (1-based) of example ``name``."""
    record = conversation(name)[number - 1]
    assert record["update"] == number
    return record


def texts(record: Record) -> list[str]:
    """Texts of every sendMessage of an update."""
    return [a["params"]["text"] for a in record["actions"] if a["method"] == "sendMessage"]


def types(record: Record) -> list[str]:
    """Telemetry types of an update, in order."""
    return [e["type"] for e in record["events"]]


def state_vars(record: Record) -> dict[str, Any]:
    """The chat's variables after an update."""
    variables: dict[str, Any] = record["state"]["vars"]
    return variables


# -- the golden files --------------------------------------------------------
@pytest.mark.parametrize("name", EXAMPLES)
def test_conversation_matches_golden(name: str) -> None:
    actual = golden_lines(name)
    path = HERE / f"{name}.golden.jsonl"
    if os.environ.get(UPDATE_ENV) == "1":
        path.write_text("".join(line + "\n" for line in actual), "utf-8")
        return
    assert path.exists(), f"missing {path.name}; create it with {UPDATE_ENV}=1"
    expected = path.read_text("utf-8").splitlines()
    if expected != actual:
        pytest.fail(_explain(name, expected, actual), pytrace=False)


@pytest.mark.parametrize("name", EXAMPLES)
def test_conversation_length(name: str) -> None:
    count = len(_events(HERE / f"{name}.events.jsonl"))
    assert 8 <= count <= 25


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_spec_validates(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["spec", "validate", str(EXAMPLES_DIR / f"{name}.json")])
    out = capsys.readouterr().out
    assert code == 0, out


# -- faq ---------------------------------------------------------------------
def test_faq_intent_cooldown_falls_through_then_expires() -> None:
    first, cooling, later = by_update("faq", 2), by_update("faq", 3), by_update("faq", 4)
    assert types(first)[0] == "intent_matched"
    assert types(cooling)[:2] == ["intent_cooldown", "flow_started"]
    assert cooling["events"][1] == {"type": "flow_started", "flow": "unknown", "via": "fallback"}
    assert {"type": "intent_matched", "intent": "hours"} in later["events"]
    assert later["state"]["cooldowns"] == {"hours": later["state"]["updatedAt"]}


def test_faq_russian_priority_and_locale_fallback() -> None:
    assert texts(by_update("faq", 8))[0].startswith("Привет, Дима!")
    both = by_update("faq", 10)  # mentions opening hours (priority 10) and prices
    assert both["events"][0] == {"type": "intent_matched", "intent": "hours"}
    assert texts(both) == ["Мы работаем пн–пт 7:30–19:00, сб–вс 9:00–17:00."]
    french = by_update("faq", 17)  # fr is not a bot locale: English texts
    assert texts(french) == ["Bean There, Kastanienallee 12, Berlin."]


def test_faq_media_and_buttons() -> None:
    photo, more = by_update("faq", 6)["actions"]
    assert photo == {
        "method": "sendPhoto",
        "params": {"chat_id": 1, "photo": "https://cdn.beanthere.example/menu.jpg", "caption": "Our menu"},
    }
    assert more["method"] == "sendMessage"
    markup = by_update("faq", 7)["actions"][0]["params"]["reply_markup"]
    assert markup == {"inline_keyboard": [[{"text": "Open the map", "url": "https://maps.example.com/?q=Bean+There"}]]}


def test_faq_state_expires_after_thirty_days() -> None:
    record = by_update("faq", 20)
    assert types(record)[0] == "state_expired"
    assert {"type": "intent_matched", "intent": "hours"} in record["events"]


# -- lead_capture ------------------------------------------------------------
def _requests(name: str) -> list[dict[str, Any]]:
    return [request for record in conversation(name) for request in record["requests"]]


def test_lead_crm_request_is_typed_and_keeps_the_secret_placeholder() -> None:
    request = by_update("lead_capture", 10)["requests"][0]
    assert request["method"] == "POST"
    assert request["url"] == "https://crm.example.com/api/v1/leads"
    body = request["body"]
    assert body["budget"] == 12000 and isinstance(body["budget"], int)  # a number, not "12000"
    assert body["timelineMonths"] == 0.5
    assert body["tags"] == ["telegram", "inbound"]
    assert body["telegram"] == {"chatId": 101, "username": None, "locale": "en"}
    assert body["summary"] == "Anna Schmidt <Anna.Schmidt@Example.COM>, budget 12000 EUR"
    assert isinstance(body["receivedAt"], int)
    assert request["headers"]["Authorization"] == "Bearer {{secret.CRM_TOKEN}}"
    for r in _requests("lead_capture"):
        assert r["headers"]["Authorization"] == "Bearer {{secret.CRM_TOKEN}}"
    assert (request["timeoutMs"], request["retries"], request["backoffMs"]) == (4000, 2, 300)
    assert request["maxResponseBytes"] == 32 * 1024


def test_lead_validation_and_mapped_response() -> None:
    rejected = by_update("lead_capture", 2)
    assert "validation_failed" in types(rejected) and "name" not in state_vars(rejected)
    assert texts(rejected) == ["Please write your name (at least 2 letters).", "What's your name?"]
    email = by_update("lead_capture", 5)  # ignoreCase: upper-case letters pass
    assert state_vars(email)["email"] == "Anna.Schmidt@Example.COM"
    done = by_update("lead_capture", 10)
    assert state_vars(done)["budget"] == 12000
    assert state_vars(done)["lead_id"] == "PP-2026-0142"
    assert texts(done)[0].startswith("Got it! Your enquiry number is PP-2026-0142. Mara Lindqvist")


def test_lead_missing_translation_falls_back_to_the_default_locale() -> None:
    german = by_update("lead_capture", 21)  # note.no_lead has no "de" text
    assert texts(german) == ["There's no enquiry to add a note to yet — send /start first."]
    assert texts(by_update("lead_capture", 19))[0].startswith("Welches Budget")


def test_lead_crm_error_apologises() -> None:
    failed = by_update("lead_capture", 20)
    assert {"type": "api_error", "flow": "lead", "step": "send_crm", "error": "http", "status": 503} in failed["events"]
    assert texts(failed)[0].startswith("Entschuldigung")
    assert "lead_id" not in state_vars(failed)


def test_lead_pii_expires_after_pii_ttl() -> None:
    before, after = by_update("lead_capture", 23), by_update("lead_capture", 24)
    assert {"name", "email", "contact_line"} <= set(state_vars(before))
    assert not {"name", "email", "contact_line"} & set(state_vars(after))
    assert state_vars(after)["lead_id"] == "PP-2026-0142"  # not PII: kept
    assert before["events"] == [{"type": "update_ignored", "reason": "edited"}]


def test_goto_step_completed_as_the_document_says() -> None:
    jumped = by_update("booking", 3)  # check_service ok, then goto to_day -> @choose_day
    assert {"type": "step_completed", "flow": "book", "step": "to_day", "stepType": "goto"} in jumped["events"]


# -- booking -----------------------------------------------------------------
def test_booking_query_string_is_percent_encoded() -> None:
    request = by_update("booking", 5)["requests"][0]
    assert request["method"] == "GET" and request["body"] is None
    assert request["url"] == "https://api.fadeco.example/v1/slots?service=haircut%2Bbeard&day=tue"
    assert request["headers"] == {"X-Api-Key": "{{secret.FADECO_KEY}}"}


def test_booking_branches() -> None:
    assert texts(by_update("booking", 4))[0] == "We're closed on Sundays — pick another day?"
    assert texts(by_update("booking", 5))[0] == "Sorry, that day is fully booked. How about another day?"
    saturday = by_update("booking", 6)
    assert texts(saturday)[0].startswith("Heads-up: on weekends")
    button = saturday["actions"][-1]["params"]["reply_markup"]["inline_keyboard"][0][0]
    assert button == {"text": "Earliest: 10:30 with Sam", "callback_data": "earliest"}
    booked = by_update("booking", 8)
    assert booked["requests"][0]["body"]["time"] == "10:30"
    assert booked["requests"][0]["body"]["price"] == 43
    assert {"type": "flow_started", "flow": "confirm", "via": "goto"} in booked["events"]


def test_booking_cancel_routes() -> None:
    pressed = by_update("booking", 12)
    assert pressed["actions"][0] == {
        "method": "answerCallbackQuery",
        "params": {"callback_query_id": "cb12", "text": "Cancelling…"},
    }
    assert pressed["events"][0] == {"type": "callback_matched", "route": 0}
    assert pressed["requests"][0]["method"] == "DELETE"
    assert pressed["requests"][0]["url"] == "https://api.fadeco.example/v1/bookings/FC-8120?reason=plans"
    assert "booking_ref" not in state_vars(pressed)
    abandoned = by_update("booking", 16)
    assert abandoned["events"][:2] == [
        {"type": "command", "command": "cancel"},
        {"type": "flow_abandoned", "flow": "choose_day", "step": "ask_day"},
    ]
    assert state_vars(abandoned)["cancel_args"] == ""
    with_ref = by_update("booking", 17)
    assert state_vars(with_ref)["booking_ref"] == "FC-7781" and "cancel_args" not in state_vars(with_ref)
    assert types(by_update("booking", 13)) == ["callback_unmatched"]


def test_booking_timeout_and_conflict() -> None:
    timeout = by_update("booking", 21)
    assert {
        "type": "api_error",
        "flow": "choose_day",
        "step": "fetch_slots",
        "error": "timeout",
        "status": None,
    } in timeout["events"]
    assert texts(timeout) == ["Our booking system is slow to answer right now. Please try again in a minute."]
    taken = by_update("booking", 25)
    assert texts(taken)[0] == "Someone just grabbed that time, sorry! Let's pick again."
    assert taken["state"]["cursor"]["step"] == "ask_day"


# -- quiz --------------------------------------------------------------------
def test_quiz_final_scores() -> None:
    assert "That's it! You scored 3 of 4." in texts(by_update("quiz", 12))
    low = by_update("quiz", 18)  # the leaderboard fails; no onError: the flow aborts
    assert "That's it! You scored 1 of 4." in texts(low)
    assert low["events"][-1] == {"type": "flow_aborted", "flow": "quiz", "reason": "api_error"}
    perfect = by_update("quiz", 23)
    assert "That's it! You scored 4 of 4." in texts(perfect)
    assert texts(perfect)[-2:] == [
        "A perfect score — you could captain the Margarethe yourself!",
        "You're number 2 of 113 on today's leaderboard.",
    ]
    assert perfect["requests"][0]["method"] == "PUT"
    assert perfect["requests"][0]["url"] == "https://quiz.harbourmuseum.example/api/scores/56"
    assert perfect["requests"][0]["body"] == {"name": "Max", "score": 4, "games": 1, "quiz": "sea-2026"}


def test_quiz_restart_resets_the_score() -> None:
    before, restarted = by_update("quiz", 7), by_update("quiz", 8)
    assert state_vars(before)["score"] == 1
    assert state_vars(restarted)["score"] == 0 and state_vars(restarted)["played"] == 2
    assert {"type": "flow_abandoned", "flow": "quiz", "step": "q3"} in restarted["events"]


def test_quiz_excluded_telemetry_never_appears() -> None:
    for record in conversation("quiz"):
        assert not {"awaiting_answer", "step_completed"} & set(types(record))


# -- support -----------------------------------------------------------------
def test_support_russian_menu_and_toast() -> None:
    menu = by_update("support", 1)
    assert texts(menu)[0].startswith("Здравствуйте, Ольга!")
    buttons = menu["actions"][0]["params"]["reply_markup"]["inline_keyboard"]
    assert buttons[0] == [{"text": "Где мой заказ?", "callback_data": "menu_order"}]
    pressed = by_update("support", 2)
    assert pressed["actions"][0]["params"] == {"callback_query_id": "cb2", "text": "Ищем ваш заказ"}


def test_support_order_lookup_maps_nested_pointers() -> None:
    found = by_update("support", 4)
    assert found["requests"][0]["url"] == "https://api.nordlicht.example/v2/orders/nl-482913?lang=ru"
    variables = state_vars(found)
    assert variables["order_status"] == "in_transit"
    assert variables["carrier"] == "DPD"
    assert variables["tracking_url"] == "https://tracking.dpd.example/t/01504829130"
    assert found["actions"][-1]["params"]["reply_markup"] == {"remove_keyboard": True}


def test_support_intent_priority_and_document() -> None:
    returns = by_update("support", 5)  # "вернуть заказ": returns (10) beats order (5)
    assert returns["events"][0] == {"type": "intent_matched", "intent": "returns"}
    assert returns["actions"][0] == {
        "method": "sendDocument",
        "params": {
            "chat_id": 21,
            "document": "https://nordlicht.example/docs/returns-form.pdf",
            "caption": "Бланк возврата (PDF)",
        },
    }
    human = by_update("support", 7)  # "real person ... my order": human (20) beats order (5)
    assert human["events"][0] == {"type": "intent_matched", "intent": "human"}


def test_support_ticket_and_helpdesk_errors() -> None:
    ticket = by_update("support", 10)
    body = ticket["requests"][0]["body"]
    assert body["description"] == "The lamp arrived broken, the glass shade is cracked."
    assert body["order"] is None and body["requester"] == {"telegramUserId": 22, "chatId": 22}
    assert body["queue"] == "general"
    assert texts(ticket) == [
        "Thanks! Ticket HD-31877 is open; we usually answer within 20 minutes, right here in this chat."
    ]
    russian = by_update("support", 24)
    assert russian["requests"][0]["body"]["queue"] == "russian-speaking"
    assert texts(russian)[0].startswith("Спасибо! Открыто обращение HD-31879")
    down = by_update("support", 16)
    assert down["requests"][0]["body"]["order"] == "NL-000001"
    assert texts(down)[0].startswith("Sorry, our helpdesk is not reachable")


def test_support_ttls() -> None:
    assert state_vars(by_update("support", 16))["order_no"] == "NL-000001"
    assert "order_no" not in state_vars(by_update("support", 17))  # ttlSec 1800 passed
    expired = by_update("support", 25)
    assert types(expired)[0] == "state_expired"


def test_quiz_unknown_text_is_unhandled_without_fallback() -> None:
    assert by_update("quiz", 24)["events"] == [{"type": "unhandled"}]
    assert by_update("quiz", 24)["actions"] == []
