"""Shared fixtures: a minimal valid spec factory."""

from __future__ import annotations

import copy
from typing import Any

import pytest

MINIMAL: dict[str, Any] = {
    "schema_ver": 1,
    "meta": {"botId": "t", "name": "Test", "locales": ["en", "ru"], "defaultLocale": "en"},
    "commands": [{"command": "start", "flow": "main"}],
    "flows": [
        {
            "id": "main",
            "steps": [
                {"id": "hello", "type": "reply", "text": "hello"},
                {"id": "name", "type": "ask", "var": "name", "prompt": "ask_name"},
                {"id": "check", "type": "validate", "var": "name", "schema": {"type": "string", "minLength": 2}},
                {"id": "bye", "type": "reply", "text": "bye"},
            ],
        }
    ],
    "state": {"vars": {"name": {"type": "string", "pii": True}}},
    "localization": {
        "strings": {
            "hello": {"en": "Hello", "ru": "Привет"},
            "ask_name": {"en": "Your name?"},
            "bye": {"en": "Bye {{state.name}}"},
        }
    },
}


def minimal_spec() -> dict[str, Any]:
    """A fresh deep copy of a small valid spec."""
    return copy.deepcopy(MINIMAL)


@pytest.fixture
def spec() -> dict[str, Any]:
    """A small valid spec to mutate."""
    return minimal_spec()
