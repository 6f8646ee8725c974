"""The reference interpreter: ``step(input) -> output``, pure (docs/botspec.md §14).

No clock (only ``context.now``), no randomness, no I/O: an ``apiCall`` comes back
as ``pending`` and its result comes in as ``resume``. Inputs are not mutated.
"""

from __future__ import annotations

from typing import Any

from botkiln.interpreter.routing import route
from botkiln.interpreter.run import MAX_TRANSITIONS, Halt, Run
from botkiln.interpreter.spec import SpecView, build_view
from botkiln.interpreter.steps import PENDING, STEP_HANDLERS, WAIT, api_result
from botkiln.interpreter.types import StepInput, StepOutput


def _follow(run: Run, flow: str, target: str) -> tuple[str, str] | None:
    """Resolve a target (§7.2) to (flow, step), or None when the flow ended."""
    if target == "#end":
        run.emit("flow_completed", flow=flow)
        run.state["cursor"] = None
        return None
    if target.startswith("@"):
        flow = target[1:]
        return flow, run.spec.flows[flow].first.id
    return flow, target


def _run_steps(run: Run, flow: str, target: str, *, announced: bool) -> None:
    """The loop of §7.1, from ``target`` in ``flow``.

    ``announced`` is True when routing already emitted ``flow_started``.
    """
    if target.startswith("@") and not announced:
        run.emit("flow_started", flow=target[1:], via="goto")
    position = _follow(run, flow, target)
    while position is not None:
        flow, step_id = position
        if run.counters["transitions"] >= MAX_TRANSITIONS:
            run.abort(flow, "transitions", limit="transitions")
        run.counters["transitions"] += 1
        step = run.spec.flows[flow].by_id[step_id]
        outcome = STEP_HANDLERS[step.type](run, step)
        if outcome in (WAIT, PENDING):
            return
        if outcome.startswith("@"):
            run.emit("flow_started", flow=outcome[1:], via="goto")
        position = _follow(run, flow, outcome)


def run_step(spec: SpecView, data: StepInput) -> StepOutput:
    """One call of the step contract against an indexed spec."""
    resume = data.get("resume")
    counters = resume["pending"]["counters"] if resume is not None else None
    run = Run(spec, data["event"], data["state"], data["context"], counters)
    try:
        run.expire()
        if resume is not None:
            pending = resume["pending"]
            step = spec.flows[pending["flow"]].by_id[pending["step"]]
            target = api_result(run, step, resume["result"])
            _run_steps(run, step.flow, target, announced=False)
        else:
            start = route(run)
            if start is not None:
                _run_steps(run, start.flow, start.target, announced=start.via is not None)
    except Halt:
        pass
    run.state["updatedAt"] = run.now
    output: StepOutput = {"actions": run.actions, "state": run.state, "events": run.telemetry()}
    if run.pending is not None:
        output["pending"] = run.pending
    return output


class Interpreter:
    """The reference engine for one spec: ``Interpreter(spec).step(input)``."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = build_view(spec)

    def step(self, data: StepInput) -> StepOutput:
        """Run one call of the step contract."""
        return run_step(self.spec, data)
