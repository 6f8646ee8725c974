"""Placeholders ``{{state.x}}`` / ``{{context.x}}``: parsing, resolving, rendering.

docs/botspec.md §10.2. Substitution is one left-to-right pass; inserted text is
never scanned again. Resolution never computes anything: it walks object members
and array indexes, and anything missing is null.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botkiln.interpreter.canonical import canonical_text, number_text
from botkiln.interpreter.types import JSON

_SEGMENTS = r"((?:\.(?:[A-Za-z_][A-Za-z0-9_]*|0|[1-9][0-9]*))+)"
_PATH = r"(state|context)" + _SEGMENTS
PLACEHOLDER = re.compile(r"\{\{ *" + _PATH + r" *\}\}")
SECRET = re.compile(r"\{\{ *secret\.([A-Z][A-Z0-9_]{0,63}) *\}\}")
"""``{{secret.NAME}}``: only in apiCall header values, filled by the host."""


def secret_names(spec: Mapping[str, Any]) -> list[str]:
    """The names of the ``{{secret.NAME}}`` placeholders in ``spec``'s apiCall headers, sorted, each once."""
    names: set[str] = set()
    for flow in spec.get("flows", []):
        for step in flow.get("steps", []):
            if step.get("type") == "apiCall":
                for value in step.get("headers", {}).values():
                    if isinstance(value, str):
                        names.update(SECRET.findall(value))
    return sorted(names)


_SEGMENT_INDEX = re.compile(r"0|[1-9][0-9]*")

CONTEXT_FIELDS = frozenset(
    {"botId", "revision", "now", "locale", "chatId", "userId", "firstName", "lastName", "username"}
)


@dataclass(frozen=True)
class Path:
    """A parsed placeholder path: root (``state`` or ``context``) and segments."""

    root: str
    segments: tuple[str, ...]

    @property
    def head(self) -> str:
        """The variable name or context field."""
        return self.segments[0]

    def __str__(self) -> str:
        return ".".join((self.root, *self.segments))


def parse_path(text: str) -> Path | None:
    """A ``Path`` from ``state.a.b`` text, or None if it is not one."""
    match = re.fullmatch(_PATH, text)
    if match is None:
        return None
    return Path(match.group(1), tuple(match.group(2)[1:].split(".")))


def placeholders(template: str) -> Iterator[Path]:
    """Every valid placeholder of ``template``, in order."""
    for match in PLACEHOLDER.finditer(template):
        yield Path(match.group(1), tuple(match.group(2)[1:].split(".")))


def stray_braces(template: str) -> list[int]:
    """Code point offsets of each ``{{`` that does not begin a valid placeholder."""
    bad: list[int] = []
    i = template.find("{{")
    while i != -1:
        match = PLACEHOLDER.match(template, i)
        if match is None:
            bad.append(i)
            i = template.find("{{", i + 2)
        else:
            i = template.find("{{", match.end())
    return bad


def typed_placeholder(template: str) -> Path | None:
    """The path if ``template`` is exactly one placeholder (a typed template)."""
    match = PLACEHOLDER.fullmatch(template)
    if match is None:
        return None
    return Path(match.group(1), tuple(match.group(2)[1:].split(".")))


def descend(value: JSON, segments: tuple[str, ...]) -> JSON:
    """Walk member/index segments from ``value``; anything missing is None."""
    for segment in segments:
        if isinstance(value, dict):
            value = value.get(segment)
        elif isinstance(value, list) and _SEGMENT_INDEX.fullmatch(segment):
            index = int(segment)
            value = value[index] if index < len(value) else None
        else:
            return None
    return value


def render_value(value: JSON) -> str:
    """The text form of a value (§10.2)."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return number_text(value)
    return canonical_text(value)


Lookup = Callable[[Path], JSON]


def render(template: str, lookup: Lookup, encode: Callable[[str], str] | None = None) -> str:
    """``template`` with every placeholder replaced by its rendered value.

    ``encode`` post-processes each inserted text (URL encoding for apiCall URLs).
    A ``{{`` that does not begin a valid placeholder is copied as is.
    """
    if "{{" not in template:
        return template
    out: list[str] = []
    pos = 0
    for match in PLACEHOLDER.finditer(template):
        out.append(template[pos : match.start()])
        path = Path(match.group(1), tuple(match.group(2)[1:].split(".")))
        text = render_value(lookup(path))
        out.append(encode(text) if encode else text)
        pos = match.end()
    out.append(template[pos:])
    return "".join(out)
