"""The autouse network guard (tests/conftest.py) keeps tests off the internet."""

from __future__ import annotations

import socket

import pytest


def test_the_network_guard_refuses_the_outside_world(network_guard: list[str]) -> None:
    with pytest.raises(ConnectionRefusedError, match=r"api\.telegram\.org"):
        socket.getaddrinfo("api.telegram.org", 443)
    network_guard.clear()  # expected here; any other test that tries fails
