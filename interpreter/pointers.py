"""RFC 6901 JSON pointers: building them for errors, resolving them in data."""

from __future__ import annotations

from botkiln.interpreter.types import JSON


def escape(segment: str | int) -> str:
    """One reference token, escaped (``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return str(segment).replace("~", "~0").replace("/", "~1")


def join(*segments: str | int) -> str:
    """A pointer from unescaped segments: ``join("flows", 2, "id") == "/flows/2/id"``."""
    return "".join("/" + escape(s) for s in segments)


def split(pointer: str) -> list[str]:
    """The unescaped segments of a pointer (``""`` -> ``[]``)."""
    if pointer == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def _is_index(token: str) -> bool:
    """An RFC 6901 array index: ``0`` or digits without a leading zero."""
    return token.isascii() and token.isdigit() and (len(token) == 1 or token[0] != "0")


def resolve(document: JSON, pointer: str) -> JSON:
    """The value at ``pointer`` in ``document``, or None where the path is missing.

    Arrays take only canonical decimal indexes (no ``-``, no leading zeros).
    """
    node = document
    for token in split(pointer):
        node = _member(node, token)
        if node is None:
            return None
    return node


def _member(node: JSON, token: str) -> JSON:
    if isinstance(node, dict):
        return node.get(token)
    if isinstance(node, list) and _is_index(token):
        index = int(token)
        return node[index] if index < len(node) else None
    return None
