"""Property tests of the reference interpreter over generated specs and conversations."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.canonical import canonical_json, canonical_text
from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.engine import Interpreter
from botkiln.interpreter.run import MAX_ACTIONS, MAX_API_CALLS
from botkiln.interpreter.validation import validate_spec
from tests.strategies import api_fixtures, events, specs

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _run(spec: dict[str, Any], script: list[dict[str, Any]], fixture: dict[str, Any]) -> list[str]:
    conversation = Conversation(
        Interpreter(spec).step, spec, FixtureApi.for_spec(fixture, spec), bot_username="fuzz_bot"
    )
    lines = []
    for event in script:
        chat, result = conversation.send(event)
        assert len(result.actions) <= MAX_ACTIONS
        assert len(result.requests) <= MAX_API_CALLS
        state = result.state
        assert state is not None
        assert len(canonical_json(state["vars"])) <= spec["state"]["maxBytes"]
        cursor = state["cursor"]
        if cursor is not None:
            flow = next(f for f in spec["flows"] if f["id"] == cursor["flow"])
            assert next(s for s in flow["steps"] if s["id"] == cursor["step"])["type"] == "ask"
        if "callback" in event:
            assert result.actions[0]["method"] == "answerCallbackQuery"
        for action in result.actions:
            text = action["params"].get("text")
            assert text is None or 0 < len(text) <= 4096
        lines.append(canonical_text({"chat": chat, **result.as_json()}))
    return lines


@SETTINGS
@given(spec=specs(), script=st.lists(events, min_size=1, max_size=10), fixture=api_fixtures())
def test_any_valid_spec_and_conversation_runs_within_limits_deterministically(
    spec: dict[str, Any], script: list[dict[str, Any]], fixture: dict[str, Any]
) -> None:
    assert validate_spec(spec) == []
    first = _run(spec, script, fixture)
    assert _run(spec, script, fixture) == first
