"""Logging: one ``configure_logging(settings)`` per process, JSON or text lines, context and redaction.

Invariants (docs/observability.md lists the fields):

- ``BOTKILN_LOG_FORMAT=json`` writes one JSON object per line: ``ts`` (UTC, ISO 8601, ms),
  ``level``, ``logger``, ``msg``, then whichever of ``bot``, ``chat``, ``update``, ``revision``,
  ``request_id``, ``task`` are known, ``trace_id``/``span_id`` inside a recording span, and ``exc``
  (the traceback) for an exception; ``text`` writes the same as one readable line;
- the context comes from ``log_context(...)`` (a context variable: it follows ``await`` and
  ``asyncio.to_thread``) or from a call's ``extra=``; any other ``extra`` key is dropped, so a
  record cannot carry a chat's state or an update's body by accident;
- every line is redacted after formatting, traceback included: Bot API tokens (``bot<id>:<secret>``
  as ``infra.telegram_api.redact`` does, and bare ``<id>:<secret>``) and the literal values of the
  settings' secrets (``secret_values``) never reach a handler's stream.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO
from urllib.parse import urlsplit

from opentelemetry import trace

from botkiln.infra.settings import Settings
from botkiln.infra.telegram_api import redact

__all__ = [
    "CONTEXT_FIELDS",
    "JsonFormatter",
    "Redactor",
    "TextFormatter",
    "configure_logging",
    "current_context",
    "log_context",
    "secret_values",
    "set_log_context",
]

CONTEXT_FIELDS = ("bot", "chat", "update", "revision", "request_id", "task")
"""The only fields a record may carry besides the message (from ``log_context`` or ``extra``)."""

MIN_SECRET_CHARS = 8
"""Shorter secret values are not searched for (a 3-letter password would blank every word containing it)."""

_BARE_TOKEN = re.compile(r"[0-9]{3,20}:[A-Za-z0-9_-]{20,}")
_CONTEXT: ContextVar[Mapping[str, str | int]] = ContextVar("botkiln_log_context", default=MappingProxyType({}))


@contextlib.contextmanager
def log_context(**fields: str | int | None) -> Iterator[None]:
    """Add ``fields`` (names from ``CONTEXT_FIELDS``; None is ignored) to every record logged inside.

    Raises:
        TypeError: a field that is not in ``CONTEXT_FIELDS``.
    """
    _check_fields(fields)
    merged = {**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _CONTEXT.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def set_log_context(**fields: str | int | None) -> None:
    """Add ``fields`` for the rest of the current asyncio task (a task runs in its own copy of the context).

    For a task that learns a field midway (the executor's revision, once the bot is resolved). Not for
    a plain thread that runs one job after another: use ``log_context`` there.

    Raises:
        TypeError: a field that is not in ``CONTEXT_FIELDS``.
    """
    _check_fields(fields)
    _CONTEXT.set(MappingProxyType({**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}}))


def _check_fields(fields: Mapping[str, object]) -> None:
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"log_context takes {', '.join(CONTEXT_FIELDS)}; not {', '.join(sorted(unknown))}")


def current_context() -> dict[str, str | int]:
    """The fields ``log_context`` set here (a copy)."""
    return dict(_CONTEXT.get())


def secret_values(settings: Settings) -> list[str]:
    """The settings' values that must never be printed: keys, tokens, and the passwords in URLs."""
    values: list[str] = []
    if settings.secret_key:
        values.append(settings.secret_key)
        values += [part.strip() for part in settings.secret_key.split(",")]
    values += [v for v in (settings.llm_api_key, settings.metrics_token) if v]
    for url in (settings.database_url, settings.redis_url, settings.analytics_url):
        password = urlsplit(url).password if url else None
        if password:
            values.append(password)
    return values


class Redactor:
    """Replaces Bot API tokens and known secret values in a text with ``<redacted>``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Also hide ``secrets`` (values shorter than ``MIN_SECRET_CHARS`` are ignored)."""
        found = {s for s in secrets if len(s) >= MIN_SECRET_CHARS} | set(self._secrets)
        self._secrets = sorted(found, key=len, reverse=True)  # longest first: a key list before its parts

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "<redacted>")
        return redact(_BARE_TOKEN.sub("<redacted>", text))


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = dict(_CONTEXT.get())
    for name in CONTEXT_FIELDS:
        value = record.__dict__.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool):
            fields[name] = value
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        fields["trace_id"] = format(span.trace_id, "032x")
        fields["span_id"] = format(span.span_id, "016x")
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring), redacted."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line: dict[str, Any] = {"ts": ts, "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        line.update(_fields(record))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["exc"] = self.formatStack(record.stack_info)
        clean = {k: self.redactor(v) if isinstance(v, str) else v for k, v in line.items()}
        return json.dumps(clean, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``<time> <level> <logger>: <message> [bot=… chat=…]``, redacted."""

    def __init__(self, redactor: Redactor | None = None, *, fmt: str | None = None) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if fields:
            text += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        return self.redactor(text)


def configure_logging(
    settings: Settings,
    *,
    stream: TextIO | None = None,
    file: Path | None = None,
    stream_level: int | None = None,
) -> Redactor:
    """Send the root logger's records to ``stream`` (stderr) and, if given, ``file``, as the settings say.

    ``stream_level`` raises the stream's threshold above ``BOTKILN_LOG_LEVEL`` (``botkiln up``
    keeps its terminal for the chat and writes the log to a file). Replaces the root's handlers;
    the returned ``Redactor`` takes more secrets later (``Redactor.add``).
    """
    redactor = Redactor(secret_values(settings))

    def formatter() -> logging.Formatter:
        if settings.log_format == "json":
            return JsonFormatter(redactor)
        return TextFormatter(redactor)

    handlers: list[logging.Handler] = []
    to_stream = logging.StreamHandler(stream or sys.stderr)
    to_stream.setFormatter(formatter())
    if stream_level is not None:
        to_stream.setLevel(stream_level)
    handlers.append(to_stream)
    if file is not None:
        to_file = logging.FileHandler(file, encoding="utf-8")
        to_file.setFormatter(formatter())
        handlers.append(to_file)
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = handlers
    root.setLevel(settings.log_level)
    return redactor
