"""Host-side edges: API fixtures, short-form events, normalisation, canonical numbers."""

from __future__ import annotations

import math
from typing import Any

import pytest

from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.canonical import normalize, number
from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.domains import url_allowed
from botkiln.interpreter.engine import Interpreter
from botkiln.interpreter.errors import UnusableInput
from botkiln.interpreter.events import normalize_update, resolve_locale
from botkiln.interpreter.types import ApiRequest
from tests.conftest import minimal_spec


def _request(url: str, limit: int = 1024) -> ApiRequest:
    return {"method": "GET", "url": url, "headers": {}, "body": None, "timeoutMs": 100, "retries": 0,
            "backoffMs": 0, "maxResponseBytes": limit}  # fmt: skip


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ({"GET https://a.example/x": 5}, "a result must be an object"),
        ({"GET https://a.example/x": {"error": "boom"}}, "unknown error 'boom'"),
        ({"GET https://a.example/x": [{"body": {}}]}, 'needs "status" (an integer) or "error"'),
    ],
)
def test_malformed_fixtures_are_unusable_with_the_entry_named(fixture: dict[str, Any], message: str) -> None:
    with pytest.raises(UnusableInput) as raised:
        FixtureApi(fixture)
    assert "API fixture entry 'GET https://a.example/x'" in str(raised.value)
    assert message in str(raised.value)


def test_fixture_results_follow_allow_list_prefixes_and_size() -> None:
    api = FixtureApi(
        {
            "GET https://a.example/*": {"status": 200, "body": {"k": "v" * 50}},
            "GET https://a.example/x/*": [{"status": 200, "body": 1}],
        },
        allowed_domains=["a.example"],
    )
    assert api.perform(_request("https://evil.example/x")) == {"ok": False, "error": "forbidden", "status": None}
    assert api.perform(_request("https://a.example"))["error"] == "network"  # no key matches
    assert api.perform(_request("https://a.example/x/1")) == {"ok": True, "status": 200, "body": 1}  # longest prefix
    assert api.perform(_request("https://a.example/y", limit=10)) == {"ok": False, "error": "too_large", "status": 200}


@pytest.mark.parametrize(
    ("event", "message"),
    [({"text": "x", "chat": "1"}, '"chat" must be an integer'), ({"chat": 1}, 'needs "text", "callback" or "media"'),
     ({"text": "x", "wait": -1}, '"wait" must be a non-negative number')],
)  # fmt: skip
def test_bad_short_forms_say_why(event: dict[str, Any], message: str) -> None:
    spec = minimal_spec()
    conversation = Conversation(Interpreter(spec).step, spec, FixtureApi({}))
    with pytest.raises(UnusableInput, match=message):
        conversation.send(event)


def test_raw_updates_set_the_clock_and_unknown_shapes_have_no_chat() -> None:
    spec = minimal_spec()
    conversation = Conversation(Interpreter(spec).step, spec, FixtureApi({}))
    update = {"update_id": 9, "message": {"message_id": 1, "date": 1_800_000_000, "chat": {"id": 7, "type": "private"},
                                          "text": "/start"}}  # fmt: skip
    chat, result = conversation.send(update)
    assert chat == 7 and conversation.now == 1_800_000_000_000
    assert result.state is not None and result.state["updatedAt"] == 1_800_000_000_000
    chat, result = conversation.send({"update_id": 10, "inline_query": {"id": "q"}})
    assert chat is None and result.events == [{"type": "update_ignored", "reason": "unsupported"}]


def test_normalisation_of_odd_updates() -> None:
    assert normalize_update([1, 2])["kind"] == "ignored"
    no_data = normalize_update({"update_id": 1, "callback_query": {"id": "c", "message": {"chat": {"id": 1}}}})
    assert no_data["kind"] == "ignored" and no_data["reason"] == "unsupported"
    edited = normalize_update({"update_id": 2, "edited_message": {"chat": {"id": 1}, "text": "x"}})
    assert edited["reason"] == "edited"
    photo = normalize_update({"update_id": 3, "message": {"chat": {"id": 1}, "photo": [], "caption": "/start"}})
    assert photo["text"] == "/start" and photo["command"] is None and photo["media"] == "photo"
    assert resolve_locale("RU-ru", ["en", "ru"], "en") == "ru" and resolve_locale(None, ["en"], "en") == "en"


def test_numbers_are_normalised_to_doubles() -> None:
    assert normalize({"a": [2**60, -0.0, 3.0, "\ud800x"]}) == {"a": [float(2**60), 0, 3, "\ufffdx"]}
    assert number(2**60) == float(2**60)
    with pytest.raises(ValueError, match="NaN"):
        number(math.nan)
    with pytest.raises(TypeError, match="not a JSON value"):
        normalize({1, 2})


def test_url_allow_list_refuses_malformed_and_user_info() -> None:
    assert url_allowed("https://api.example.com/x", ["api.example.com"])
    assert not url_allowed("https://user@api.example.com/x", ["api.example.com"])
    assert not url_allowed("https://api.example.com:99999/x", ["api.example.com"])
    assert not url_allowed("http://api.example.com/x", ["api.example.com"])
    assert url_allowed("http://api.example.com/x", ["api.example.com"], insecure_ok=True)
