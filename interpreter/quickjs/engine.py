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
from .sandbox import Sandbox, SandboxLimits


class QuickJsEngine:
    """Runs ``step`` of one ``bot.js`` in a hardened sandbox."""

    def __init__(self, source: str, *, limits: SandboxLimits | None = None) -> None:
        self.sandbox = Sandbox(source, limits=limits)

    def __call__(self, data: StepInput) -> StepOutput:
        """One call of the step contract.

        Raises:
            SandboxError: the bot failed, hung, ran out of memory or returned garbage.
        """
        text = json.dumps(normalize(data), ensure_ascii=False, separators=(",", ":"))
        output = json.loads(self.sandbox.call(text))
        if not isinstance(output, dict) or not {"actions", "state", "events"} <= output.keys():
            raise BotOutputError("step() must return {actions, state, events[, pending]}")
        result: StepOutput = output  # type: ignore[assignment]
        return result
