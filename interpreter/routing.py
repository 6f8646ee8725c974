"""Routing (docs/botspec.md §6): which flow an event starts, or which ask it answers.

Order: ignored events, cursor check, callbacks, commands, a waiting ask, intents,
fallback. The first rule that applies decides. Routing returns a ``Start`` (a flow
to run from its first step, or a target to continue at after an answer) or None.
"""

from __future__ import annotations

from dataclasses import dataclass

from botkiln.interpreter.run import Run
from botkiln.interpreter.spec import StepView
from botkiln.interpreter.steps import answer, send_prompt
from botkiln.interpreter.text import contains_run, words
from botkiln.interpreter.types import JSON


@dataclass(frozen=True)
class Start:
    """Where running begins: a new flow (``via`` set) or a target after an answer."""

    flow: str
    target: str
    via: str | None = None


def _waiting_ask(run: Run) -> StepView | None:
    cursor = run.state["cursor"]
    if cursor is None:
        return None
    flow = run.spec.flows.get(cursor["flow"])
    step = flow.by_id.get(cursor["step"]) if flow else None
    return step if step is not None and step.type == "ask" else None


def check_cursor(run: Run) -> None:
    """Reset a cursor that names no existing ask step (§6.1)."""
    cursor = run.state["cursor"]
    if cursor is not None and _waiting_ask(run) is None:
        run.state["cursor"] = None
        run.emit("cursor_reset", flow=cursor["flow"], step=cursor["step"])


def start_flow(run: Run, flow: str, via: str) -> Start:
    """§6.7: abandon a waiting ask, announce the flow."""
    cursor = run.state["cursor"]
    if cursor is not None:
        run.emit("flow_abandoned", flow=cursor["flow"], step=cursor["step"])
        run.state["cursor"] = None
    run.emit("flow_started", flow=flow, via=via)
    return Start(flow, "@" + flow, via)


def _answer(run: Run, step: StepView, value: str) -> Start:
    return Start(step.flow, answer(run, step, value))


def _callback(run: Run) -> Start | None:
    data = run.event["data"] or ""
    for index, route in enumerate(run.spec.callbacks):
        if "data" in route:
            matched, rest = data == route["data"], data
        else:
            matched, rest = data.startswith(route["prefix"]), data[len(route["prefix"]) :]
        if matched:
            params: dict[str, JSON] = {"callback_query_id": run.event["callbackId"]}
            if "toast" in route:
                params["text"] = run.text(route["toast"])
            run.send(route["flow"], "answerCallbackQuery", params)
            if "var" in route:
                run.write(route["flow"], route["var"], rest)
            run.emit("callback_matched", route=index)
            return start_flow(run, route["flow"], "callback")
    run.send("", "answerCallbackQuery", {"callback_query_id": run.event["callbackId"]})
    step = _waiting_ask(run)
    if step is not None:
        return _answer(run, step, data)
    run.emit("callback_unmatched")
    return None


def _intent(run: Run, text: str) -> Start | None:
    said = words(text)
    spec = run.spec
    for intent in spec.intents:
        keywords = intent.keywords.get(run.locale)
        if keywords is None:
            keywords = intent.keywords.get(spec.default_locale, ())
        if not any(contains_run(said, k) for k in keywords):
            continue
        last = run.state["cooldowns"].get(intent.id)
        if intent.cooldown_ms > 0 and last is not None and run.now - last < intent.cooldown_ms:
            run.emit("intent_cooldown", intent=intent.id)
            continue
        if intent.cooldown_ms > 0:
            run.state["cooldowns"][intent.id] = run.now
        run.emit("intent_matched", intent=intent.id)
        return start_flow(run, intent.flow, "intent")
    return None


def route(run: Run) -> Start | None:
    """Route the run's event (§6); None means nothing runs."""
    event = run.event
    if event["kind"] == "ignored":
        run.emit("update_ignored", reason=event["reason"])
        return None
    check_cursor(run)
    if event["kind"] == "callback":
        return _callback(run)
    command = event["command"]
    if command is not None and command in run.spec.commands:
        entry = run.spec.commands[command]
        run.emit("command", command=command)
        if "argsVar" in entry:
            run.write(entry["flow"], entry["argsVar"], event["args"] or "")
        return start_flow(run, entry["flow"], "command")
    text = event["text"]
    waiting = _waiting_ask(run)
    if waiting is not None:
        if text is not None:
            return _answer(run, waiting, text)
        run.emit("answer_rejected", flow=waiting.flow, step=waiting.id)
        send_prompt(run, waiting)
        return None
    if text is not None:
        started = _intent(run, text)
        if started is not None:
            return started
    if run.spec.fallback is not None:
        return start_flow(run, run.spec.fallback, "fallback")
    run.emit("unhandled")
    return None
