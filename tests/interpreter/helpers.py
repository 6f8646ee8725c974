"""Small helpers for driving the reference interpreter in tests."""

from __future__ import annotations

from typing import Any

from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.engine import Interpreter
from botkiln.interpreter.host import UpdateResult
from botkiln.interpreter.validation import validate_spec


def talk(spec: dict[str, Any], events: list[dict[str, Any]], api: dict[str, Any] | None = None) -> list[UpdateResult]:
    """Validate ``spec`` then run ``events`` (short forms) through it."""
    errors = validate_spec(spec)
    assert errors == [], errors
    conversation = Conversation(Interpreter(spec).step, spec, FixtureApi.for_spec(api or {}, spec))
    return [conversation.send(e)[1] for e in events]


def texts(result: UpdateResult) -> list[str]:
    """The texts of every sendMessage of an update."""
    return [a["params"]["text"] for a in result.actions if a["method"] == "sendMessage"]


def types(result: UpdateResult) -> list[str]:
    """The telemetry types of an update, in order."""
    return [e["type"] for e in result.events]


def spec_with(flows: list[dict[str, Any]], strings: dict[str, str], **extra: Any) -> dict[str, Any]:
    """A one-locale spec with /start -> the first flow, and the given strings."""
    declared = extra.pop("vars", {})
    spec: dict[str, Any] = {
        "schema_ver": 1,
        "meta": {"botId": "t", "name": "T", "locales": ["en"], "defaultLocale": "en"},
        "commands": [{"command": "start", "flow": flows[0]["id"]}],
        "flows": flows,
        "state": {"vars": {name: {"type": "json", **decl} for name, decl in declared.items()}},
        "localization": {"strings": {k: {"en": v} for k, v in strings.items()}},
    }
    spec.update(extra)
    return spec
