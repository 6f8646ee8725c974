"""Runs the reference interpreter and a candidate engine in lock step, call by call.

Both engines receive the *same* input for every call (the reference's chain of
states drives the conversation), so the first difference is attributable to that
call alone. A divergence carries a minimal reproduction: the spec pointer of the
step involved, the events up to and including the diverging one, the API
fixture, the exact input, and both canonical outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.canonical import canonical_text
from botkiln.interpreter.conformance.derive import Script
from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.engine import Interpreter
from botkiln.interpreter.errors import BotkilnError
from botkiln.interpreter.host import Engine
from botkiln.interpreter.pointers import join
from botkiln.interpreter.types import StepInput, StepOutput


@dataclass(frozen=True)
class Divergence:
    """The first call on which the candidate differs from the reference."""

    script: str
    update: int
    call: int
    pointer: str
    events: list[Any]
    fixture: dict[str, Any]
    input: str
    expected: str
    actual: str

    def render(self) -> str:
        """A human report with everything needed to reproduce the difference."""
        lines = [
            f"divergence in conversation {self.script!r}, update {self.update}, call {self.call}",
            f"  step: {self.pointer or '(routing)'}",
            "  events (JSONL, replay with `botkiln simulate --events`):",
            *(f"    {canonical_text(e)}" for e in self.events),
        ]
        if self.fixture:
            lines.append(f"  api fixture: {canonical_text(self.fixture)}")
        lines += [f"  input:    {self.input}", f"  expected: {self.expected}", f"  actual:   {self.actual}"]
        first = next((i for i, (a, b) in enumerate(zip(self.expected, self.actual, strict=False)) if a != b), None)
        if first is None:
            first = min(len(self.expected), len(self.actual))
        lines.append(f"  first difference at byte {first}: ...{self.expected[max(0, first - 40) : first + 40]}...")
        return "\n".join(lines)


@dataclass
class Report:
    """What a conformance run checked, and the divergence if any."""

    scripts: int = 0
    updates: int = 0
    calls: int = 0
    divergence: Divergence | None = None
    names: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every call agreed."""
        return self.divergence is None


class _Diverged(Exception):
    def __init__(self, call: int, data: StepInput, expected: str, actual: str) -> None:
        super().__init__("engines diverged")
        self.call, self.data, self.expected, self.actual = call, data, expected, actual


def _pointer(spec: dict[str, Any], data: StepInput, output: StepOutput) -> str:
    """The spec pointer of the step a call was about (best effort)."""
    candidates: list[tuple[str, str]] = []
    resume = data.get("resume")
    if resume is not None:
        candidates.append((resume["pending"]["flow"], resume["pending"]["step"]))
    for event in reversed(output.get("events", [])):
        item: dict[str, Any] = dict(event)
        if "flow" in item and "step" in item:
            candidates.append((str(item["flow"]), str(item["step"])))
            break
    for flow_id, step_id in candidates:
        for fi, flow in enumerate(spec["flows"]):
            for si, step in enumerate(flow["steps"]):
                if flow["id"] == flow_id and step["id"] == step_id:
                    return join("flows", fi, "steps", si)
    return ""


class _Paired:
    """An engine that runs both and raises on the first difference."""

    def __init__(self, reference: Engine, candidate: Engine) -> None:
        self.reference = reference
        self.candidate = candidate
        self.calls = 0

    def __call__(self, data: StepInput) -> StepOutput:
        self.calls += 1
        expected = self.reference(data)
        expected_text = canonical_text(expected)
        try:
            actual_text = canonical_text(self.candidate(data))
        except BotkilnError as exc:  # SandboxError is reported, never raised past the harness
            actual_text = f"<{type(exc).__name__}: {exc}>"
        except Exception as exc:
            actual_text = f"<{type(exc).__name__}: {exc}>"
        if actual_text != expected_text:
            raise _Diverged(self.calls, data, expected_text, actual_text)
        return expected


def run_script(
    spec: dict[str, Any], candidate: Engine, script: Script, *, reference: Engine | None = None
) -> tuple[int, int, Divergence | None]:
    """Run one conversation on both engines -> (updates, calls, divergence)."""
    paired = _Paired(reference or Interpreter(spec).step, candidate)
    conversation = Conversation(
        paired, spec, FixtureApi.for_spec(script.fixture, spec), bot_username=script.bot_username
    )
    for index, event in enumerate(script.events, start=1):
        try:
            conversation.send(event)
        except _Diverged as diverged:
            output = Interpreter(spec).step(diverged.data)
            return (
                index,
                paired.calls,
                Divergence(
                    script=script.name,
                    update=index,
                    call=diverged.call,
                    pointer=_pointer(spec, diverged.data, output),
                    events=list(script.events[:index]),
                    fixture=script.fixture,
                    input=canonical_text(diverged.data),
                    expected=diverged.expected,
                    actual=diverged.actual,
                ),
            )
    return len(script.events), paired.calls, None


def check_conformance(
    spec: dict[str, Any],
    candidate: Engine,
    scripts: list[Script],
    *,
    progress: Callable[[Script], None] | None = None,
) -> Report:
    """Run every script; stop at the first divergence."""
    report = Report()
    reference = Interpreter(spec).step
    for script in scripts:
        if progress is not None:
            progress(script)
        updates, calls, divergence = run_script(spec, candidate, script, reference=reference)
        report.scripts += 1
        report.updates += updates
        report.calls += calls
        report.names.append(script.name)
        if divergence is not None:
            report.divergence = divergence
            break
    return report
