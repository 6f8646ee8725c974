"""Canonical JSON (RFC 8785) and the spec hash.

The ``rfc8785`` package (Trail of Bits) implements JCS exactly, including
ECMAScript number formatting; Botkiln relies on it rather than a hand-written
serialiser. ``normalize`` brings host data into the engines' number model
(docs/botspec.md §2.2) before anything is canonicalised.
"""

from __future__ import annotations

import hashlib
import math

import rfc8785

from botkiln.interpreter.types import JSON

MAX_SAFE_INTEGER = 2**53 - 1


def normalize(value: JSON) -> JSON:
    """A copy of ``value`` in the engines' number model (§2.1, §2.2).

    Integers beyond ±(2**53-1) become the nearest double, ``-0.0`` becomes 0,
    integral floats become ints (so Python and JavaScript agree on their
    spelling), and unpaired surrogates in strings become U+FFFD.

    Raises:
        ValueError: for NaN or infinities, which JSON cannot carry.
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else float(value)
    if isinstance(value, float):
        return number(value)
    if isinstance(value, str):
        return fix_surrogates(value)
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {fix_surrogates(str(k)): normalize(v) for k, v in value.items()}
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def number(value: float | int) -> float | int:
    """A double in its preferred Python spelling: integral values as ``int``."""
    if isinstance(value, int):
        return value if abs(value) <= MAX_SAFE_INTEGER else float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError("NaN and infinities are not JSON numbers")
    if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
        return int(value)
    return value


def fix_surrogates(text: str) -> str:
    """``text`` with every unpaired surrogate replaced by U+FFFD."""
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def canonical_json(value: JSON) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value``."""
    return bytes(rfc8785.dumps(normalize(value)))


def canonical_text(value: JSON) -> str:
    """``canonical_json`` as a string."""
    return canonical_json(value).decode("utf-8")


def spec_hash(spec: JSON) -> str:
    """The sha256 (hex) of a spec's canonical JSON."""
    return hashlib.sha256(canonical_json(spec)).hexdigest()


def number_text(value: float | int) -> str:
    """ECMAScript ``Number::toString`` of a double (§2.2)."""
    return bytes(rfc8785.dumps(number(value))).decode("ascii")
