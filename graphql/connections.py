"""Relay-style connections: ``edges { cursor node }`` and ``pageInfo``.

Lists page forward only (``first``, ``after``). A cursor is opaque to clients:
base64url of a small JSON document naming the list and its keyset position
(``{"k": "deployments", "v": 42}``), so a cursor from one list is refused by
another. Storage functions are asked for ``first + 1`` rows; the extra row only
says whether there is a next page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.exceptions import StrawberryGraphQLError

Node = TypeVar("Node")
Row = TypeVar("Row")

DEFAULT_PAGE = 20
MAX_PAGE = 100


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[Node]):
    cursor: str
    node: Node


@strawberry.type
class Connection(Generic[Node]):
    edges: list[Edge[Node]]
    page_info: PageInfo


class BadPageArgument(StrawberryGraphQLError):
    """``first`` out of range or a malformed cursor: the client's mistake, shown as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "BAD_USER_INPUT"})


def encode_cursor(kind: str, value: Any) -> str:
    """An opaque cursor for position ``value`` in list ``kind``."""
    raw = json.dumps({"k": kind, "v": value}, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> Any:
    """The position inside a cursor of list ``kind`` (None without a cursor).

    Raises:
        BadPageArgument: malformed, or made for another list.
    """
    if cursor is None:
        return None
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise BadPageArgument("the cursor is malformed; use a cursor from this list's pageInfo") from None
    if not isinstance(doc, dict) or doc.get("k") != kind or "v" not in doc:
        raise BadPageArgument(f"the cursor does not belong to the {kind} list")
    return doc["v"]


def decode_time_cursor(kind: str, cursor: str | None) -> datetime | None:
    """A timestamp position (``created_at`` keysets) inside a cursor of list ``kind``.

    Raises:
        BadPageArgument: malformed, or made for another list.
    """
    value = decode_cursor(kind, cursor)
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise BadPageArgument(f"the cursor does not belong to the {kind} list") from None


def page_size(first: int | None) -> int:
    """``first`` checked (1..MAX_PAGE), or the default.

    Raises:
        BadPageArgument: out of range.
    """
    if first is None:
        return DEFAULT_PAGE
    if not 1 <= first <= MAX_PAGE:
        raise BadPageArgument(f"first must be between 1 and {MAX_PAGE}; got {first}")
    return first


def connection(
    rows: Sequence[Row], size: int, kind: str, position: Callable[[Row], Any], node: Callable[[Row], Node]
) -> Connection[Node]:
    """A page from up to ``size + 1`` rows in list order."""
    page = list(rows[:size])
    edges = [Edge(cursor=encode_cursor(kind, position(r)), node=node(r)) for r in page]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=len(rows) > size, end_cursor=edges[-1].cursor if edges else None),
    )


def offset_connection(
    items: Sequence[Row], first: int | None, after: str | None, kind: str, node: Callable[[Row], Node]
) -> Connection[Node]:
    """A page of a short list held in memory, positioned by index."""
    size = page_size(first)
    start = decode_cursor(kind, after)
    if start is not None and not isinstance(start, int):
        raise BadPageArgument(f"the cursor does not belong to the {kind} list")
    begin = 0 if start is None else start + 1
    window = list(enumerate(items))[begin : begin + size + 1]
    return connection(window, size, kind, lambda pair: pair[0], lambda pair: node(pair[1]))
