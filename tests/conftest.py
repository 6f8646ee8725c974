"""Shared fixtures: the network guard and a minimal valid spec factory."""

from __future__ import annotations

import copy
import socket
from collections.abc import Iterator
from typing import Any

import pytest

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any test that tries to reach a host other than loopback.

    Telegram and LLM endpoints in particular: tests talk to the local stand-ins.
    """
    tried: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def refuse(host: object) -> OSError:
        tried.append(str(host))
        return ConnectionRefusedError(f"network guard: tests must not reach {host}; use the local stand-ins")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and host not in LOOPBACK:
            raise refuse(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise refuse(address[0])
        real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield tried
    if tried:
        pytest.fail(f"a test tried to reach {', '.join(tried)}: tests must use the local stand-ins")


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
