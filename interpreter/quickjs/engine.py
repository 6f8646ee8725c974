"""The QuickJS engine as a step-contract callable: ``QuickJsEngine(bot_js)(input)``.

JSON text crosses the boundary both ways; the host normalises numbers and
strings on the way in (docs/botspec.md §2) and parses the output with Python's
``json``. Sandbox failures propagate as the typed ``SandboxError`` subclasses.
"""

from __future__ import annotations

import json

from botkiln.interpreter.canonical import normalize
from botkiln.interpreter.types import StepInput, StepOutput

from .errors import BotOutputError
from .pool import SandboxPool
from .sandbox import Sandbox, SandboxLimits


def _parse_output(text: str) -> StepOutput:
    output = json.loads(text)
    if not isinstance(output, dict) or not {"actions", "state", "events"} <= output.keys():
        raise BotOutputError("step() must return {actions, state, events[, pending]}")
    result: StepOutput = output  # type: ignore[assignment]
    return result


def _input_text(data: StepInput) -> str:
    return json.dumps(normalize(data), ensure_ascii=False, separators=(",", ":"))


class QuickJsEngine:
    """Runs ``step`` of one ``bot.js`` in a hardened sandbox."""

    def __init__(self, source: str, *, limits: SandboxLimits | None = None) -> None:
        self.sandbox = Sandbox(source, limits=limits)

    def __call__(self, data: StepInput) -> StepOutput:
        """One call of the step contract.

        Raises:
            SandboxError: the bot failed, hung, ran out of memory or returned garbage.
        """
        return _parse_output(self.sandbox.call(_input_text(data)))


class PooledEngine:
    """The step contract through a ``SandboxPool``'s warm sandbox of one revision (the runtime's engine)."""

    def __init__(self, pool: SandboxPool, rev_hash: str, source: str) -> None:
        self.pool, self.rev_hash, self.source = pool, rev_hash, source

    def __call__(self, data: StepInput) -> StepOutput:
        """One call of the step contract (loads the revision into the pool on a miss).

        Raises:
            SandboxError: as ``QuickJsEngine``.
        """
        return _parse_output(self.pool.run(self.rev_hash, lambda: self.source, _input_text(data)))
