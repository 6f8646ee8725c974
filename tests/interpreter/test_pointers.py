"""RFC 6901 pointers: escaping and resolution."""

from __future__ import annotations

import pytest

from botkiln.interpreter.pointers import join, resolve, split

DOC = {"items": [10, 20, {"a/b": {"m~n": 1}}], "": "empty"}


@pytest.mark.parametrize(
    ("pointer", "value"),
    [("", DOC), ("/items/0", 10), ("/items/1", 20), ("/items/2/a~1b/m~0n", 1), ("/", "empty"),
     ("/items/01", None), ("/items/-", None), ("/items/3", None), ("/items/1/x", None), ("/nope", None)],
)  # fmt: skip
def test_resolve_follows_rfc_6901(pointer: str, value: object) -> None:
    assert resolve(DOC, pointer) == value


def test_join_and_split_round_trip_escapes() -> None:
    pointer = join("flows", 2, "a/b", "m~n")
    assert pointer == "/flows/2/a~1b/m~0n"
    assert split(pointer) == ["flows", "2", "a/b", "m~n"]
