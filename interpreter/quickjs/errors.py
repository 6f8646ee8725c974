"""Typed failures of the QuickJS sandbox, and the one place QuickJS exceptions are translated.

The tree::

    SandboxError                 root (to be re-parented under BotkilnError)
    ├── SandboxLoadError         bot.js did not evaluate, or declares no ``step``
    ├── SandboxTimeout           a call used up its CPU budget and was interrupted
    ├── SandboxMemoryError       the runtime hit its memory limit
    ├── SandboxStackOverflow     the runtime hit its stack limit
    ├── BotCodeError             bot.js threw: JS name, message, stack, line:col
    └── BotOutputError           step returned something that is not a JSON object

Invariants: every exception the binding raises while JS runs leaves through
:func:`translating` and becomes exactly one of these classes; every attribute has a
default, so the exceptions survive pickling.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import quickjs

__all__ = [
    "BotCodeError",
    "BotOutputError",
    "SandboxError",
    "SandboxLoadError",
    "SandboxMemoryError",
    "SandboxStackOverflow",
    "SandboxTimeout",
    "translating",
]

_INPUT = "<input>"  # the file name the binding gives every evaluated script
_HOST_FRAME = "__bk_"  # frames of the host wrapper, hidden from bot stacks
_LOCATION = re.compile(r":(\d+):(\d+)\)?$")


class SandboxError(Exception):
    """Root of every failure raised by the QuickJS sandbox and its pool."""


class SandboxLoadError(SandboxError):
    """bot.js failed to evaluate or declares no ``step`` function; ``__cause__`` says why."""


class SandboxTimeout(SandboxError):
    """A call used up its CPU budget (``limit_ms`` of process CPU time) and was interrupted."""

    def __init__(self, message: str, *, limit_ms: int = 0, elapsed_ms: float = 0.0, cpu_ms: float = 0.0) -> None:
        super().__init__(message)
        self.limit_ms = limit_ms
        self.elapsed_ms = elapsed_ms
        self.cpu_ms = cpu_ms


class SandboxMemoryError(SandboxError):
    """The runtime tried to allocate past ``limit_bytes``."""

    def __init__(self, message: str, *, limit_bytes: int = 0) -> None:
        super().__init__(message)
        self.limit_bytes = limit_bytes


class SandboxStackOverflow(SandboxError):
    """The runtime's native stack use passed ``limit_bytes`` (deep or endless recursion)."""

    def __init__(self, message: str, *, limit_bytes: int = 0) -> None:
        super().__init__(message)
        self.limit_bytes = limit_bytes


class BotCodeError(SandboxError):
    """bot.js threw; carries the JS error's name, message, stack text and first bot location."""

    def __init__(
        self,
        message: str,
        *,
        js_name: str = "",
        js_message: str = "",
        stack: str = "",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.js_name = js_name
        self.js_message = js_message
        self.stack = stack
        self.line = line
        self.column = column

    @classmethod
    def from_js(cls, js_name: str, js_message: str, stack: str, source_name: str) -> BotCodeError:
        """Build the error from the parts of a JS exception, naming ``source_name:line:col``."""
        frames = [
            frame.replace(_INPUT, source_name)
            for frame in stack.splitlines()
            if frame.strip() and _HOST_FRAME not in frame
        ]
        line = column = None
        for frame in frames:
            match = _LOCATION.search(frame)
            if match is not None:
                line, column = int(match[1]), int(match[2])
                break
        where = source_name if line is None else f"{source_name}:{line}:{column}"
        what = f"{js_name}: {js_message}" if js_name else js_message
        return cls(
            f"{where}: {what}",
            js_name=js_name,
            js_message=js_message,
            stack="\n".join(frames),
            line=line,
            column=column,
        )

    @classmethod
    def from_report(cls, report: str, source_name: str) -> BotCodeError:
        """Build the error from the JSON ``{name, message, stack}`` the host wrapper reports."""
        try:
            fields = json.loads(report)
            parts = [str(fields.get(key, "")) for key in ("name", "message", "stack")]
        except (ValueError, AttributeError):
            parts = ["", "bot.js threw a value the sandbox could not describe", ""]
        return cls.from_js(parts[0], parts[1], parts[2], source_name)


class BotOutputError(SandboxError):
    """step returned a value that is not a JSON object, cannot be encoded, or is too large."""


class _Limits(Protocol):
    @property
    def memory_bytes(self) -> int: ...
    @property
    def stack_bytes(self) -> int: ...


@contextmanager
def translating(source_name: str, limits: _Limits, budget_ms: int) -> Iterator[None]:
    """Run JS inside this block; exceptions from the binding leave it as :class:`SandboxError`.

    ``budget_ms`` is the CPU budget the block ran under, reported by :class:`SandboxTimeout`
    with the wall time and this thread's CPU time the block took.
    """
    started, cpu_started = time.perf_counter(), time.thread_time()
    try:
        yield
    except (quickjs.JSException, UnicodeDecodeError) as exc:
        elapsed_ms = (time.perf_counter() - started) * 1000
        cpu_ms = (time.thread_time() - cpu_started) * 1000
        raise _translate(exc, source_name, limits, budget_ms, elapsed_ms, cpu_ms) from None


def _translate(
    exc: Exception,
    source_name: str,
    limits: _Limits,
    budget_ms: int,
    elapsed_ms: float,
    cpu_ms: float,
) -> SandboxError:
    """Translate an exception raised by the quickjs binding into the sandbox's own tree.

    QuickJS reports an interrupt as an uncatchable ``InternalError: interrupted``, memory
    exhaustion as ``InternalError: out of memory`` or, when even that error cannot be
    allocated, as a thrown ``null``; the binding raises ``StackOverflow`` for stack exhaustion.
    Anything else is an exception of the bot's own making.
    """
    if isinstance(exc, UnicodeDecodeError):
        return BotOutputError(f"{source_name}: step produced text that is not valid UTF-8")
    head, _, stack = str(exc).partition("\n")
    if isinstance(exc, quickjs.StackOverflow):
        return SandboxStackOverflow(
            f"{source_name}: stack limit of {limits.stack_bytes} bytes exceeded ({head})",
            limit_bytes=limits.stack_bytes,
        )
    if head == "InternalError: interrupted":
        return SandboxTimeout(
            f"{source_name}: CPU budget of {budget_ms} ms exceeded "
            f"(this thread used {cpu_ms:.0f} ms CPU in {elapsed_ms:.0f} ms; "
            "the budget counts CPU time of the whole process)",
            limit_ms=budget_ms,
            elapsed_ms=elapsed_ms,
            cpu_ms=cpu_ms,
        )
    if head in ("null", "InternalError: out of memory") or head.startswith("(Failed obtaining"):
        return SandboxMemoryError(
            f"{source_name}: memory limit of {limits.memory_bytes} bytes exceeded",
            limit_bytes=limits.memory_bytes,
        )
    if stack.strip() == "undefined":  # a thrown primitive has no stack
        stack = ""
    js_name, sep, js_message = head.partition(": ")
    if not (sep and js_name.isidentifier()):
        js_name, js_message = "", head
    return BotCodeError.from_js(js_name, js_message, stack, source_name)
