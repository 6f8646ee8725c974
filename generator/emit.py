"""JavaScript source writing for the compiler: literals and an indenting line writer.

Invariants:

- Output depends only on the value, never on dict order: object keys are written in the
  RFC 8785 order (UTF-16 code units), so two specs with the same canonical JSON give the
  same text.
- A JSON value becomes a JS expression that evaluates to an equal value with only own
  properties: a ``__proto__`` key is written as a computed key (in a literal, a plain
  ``"__proto__":`` would set the prototype instead).
- Strings are written so that any ES2019+ parser reads them back exactly: JSON escapes,
  plus escapes for U+2028, U+2029 and lone surrogates.
- Numbers are written as the double they denote (integers beyond 2**53 - 1 are rounded as
  a JSON parser would); ``-0`` is written ``0``, which the spec treats as the same number.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ESCAPES = {"\u2028": "\\u2028", "\u2029": "\\u2029"}


def js_string(text: str) -> str:
    """A JavaScript string literal for ``text``."""
    body = json.dumps(text, ensure_ascii=False)
    if body.isascii():
        return body
    return "".join(_ESCAPES.get(c, f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c) for c in body)


def js_number(value: float) -> str:
    """A JavaScript number literal for a JSON number (a double, §2.2)."""
    if isinstance(value, int) and abs(value) <= MAX_SAFE_INTEGER:
        return str(value)
    number = float(value)
    if number.is_integer() and abs(number) <= MAX_SAFE_INTEGER:
        return str(int(number))
    return repr(number)


def sort_keys(keys: Any) -> list[str]:
    """``keys`` in RFC 8785 order (by UTF-16 code units)."""
    return sorted(keys, key=lambda k: k.encode("utf-16-be"))


def js_key(key: str) -> str:
    """An object literal key that defines an own property named ``key``."""
    if key == "__proto__":
        return '["__proto__"]'
    return key if _IDENTIFIER.fullmatch(key) else js_string(key)


def js_value(value: Any) -> str:
    """A JavaScript expression evaluating to the JSON ``value``."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return js_number(value)
    if isinstance(value, str):
        return js_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(js_value(v) for v in value) + "]"
    return js_object({k: js_value(value[k]) for k in value})


def js_object(fields: dict[str, str]) -> str:
    """An object literal from already written expressions, keys in RFC 8785 order."""
    if not fields:
        return "{}"
    return "{ " + ", ".join(f"{js_key(k)}: {fields[k]}" for k in sort_keys(fields)) + " }"


def js_record(fields: list[tuple[str, str]]) -> str:
    """An object literal with fixed keys in the given order (compiler-made records)."""
    return "{ " + ", ".join(f"{js_key(k)}: {v}" for k, v in fields) + " }"


class Writer:
    """Collects lines of JavaScript with two-space indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def line(self, text: str = "") -> None:
        """Append one line at the current depth (an empty line stays empty)."""
        self.lines.append(("  " * self.depth + text) if text else "")

    def open(self, text: str) -> None:
        """Append ``text`` (ending in ``{``) and indent what follows."""
        self.line(text)
        self.depth += 1

    def close(self, text: str = "}") -> None:
        """Dedent and append the closing ``text``."""
        self.depth -= 1
        self.line(text)

    def text(self) -> str:
        """Everything written, one trailing newline."""
        return "\n".join(self.lines) + "\n"
