"""Step handlers (docs/botspec.md §8): one function per step type, one table.

Every handler has the signature ``(run, step) -> outcome``: a target string
(``"stepId"``, ``"@flow"``, ``"#end"``) to go on with, or ``WAIT`` (an ``ask`` sent
its prompt) or ``PENDING`` (an ``apiCall`` needs the host). Adding a step type
means one function here, one entry in ``STEP_HANDLERS`` and one conformance case.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote

from botkiln.interpreter.canonical import number
from botkiln.interpreter.conditions import evaluate, json_equal
from botkiln.interpreter.messages import send_reply
from botkiln.interpreter.pointers import resolve
from botkiln.interpreter.regex_dialect import compile_pattern
from botkiln.interpreter.run import MAX_API_CALLS, Run
from botkiln.interpreter.spec import StepView
from botkiln.interpreter.templates import render, typed_placeholder
from botkiln.interpreter.text import trim
from botkiln.interpreter.types import JSON, ApiRequest, ApiResult, Counters, Pending

WAIT: Final = "wait"
PENDING: Final = "pending"

Handler = Callable[[Run, StepView], str]


def completed(run: Run, step: StepView) -> None:
    """Telemetry ``step_completed`` for ``step``."""
    run.emit("step_completed", flow=step.flow, step=step.id, stepType=step.type)


def reply(run: Run, step: StepView) -> str:
    """§8.1: send text and/or media with optional buttons."""
    raw = step.raw
    send_reply(
        run,
        step.flow,
        step.id,
        text_key=raw.get("text"),
        media=raw.get("media"),
        buttons=raw.get("buttons"),
    )
    completed(run, step)
    return step.next


def send_prompt(run: Run, step: StepView) -> None:
    """Send an ``ask`` step's prompt (also used to re-send it, §6.4)."""
    send_reply(run, step.flow, step.id, text_key=step.raw["prompt"], buttons=step.raw.get("buttons"))


def ask(run: Run, step: StepView) -> str:
    """§8.2: send the prompt and wait for the answer."""
    send_prompt(run, step)
    run.state["cursor"] = {"flow": step.flow, "step": step.id, "since": run.now}
    run.emit("awaiting_answer", flow=step.flow, step=step.id)
    return WAIT


def answer(run: Run, step: StepView, value: str) -> str:
    """§8.2: take an answer for a waiting ``ask``; returns where to go on."""
    run.state["cursor"] = None
    run.write(step.flow, step.raw["var"], value)
    run.emit("answer_received", flow=step.flow, step=step.id)
    completed(run, step)
    return step.next


_NUMBER_TEXT_LIMIT = 30


def _parse_number(value: JSON) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if not isinstance(value, str):
        return None
    text = trim(value)
    if len(text) > _NUMBER_TEXT_LIMIT or not _DECIMAL.fullmatch(text):
        return None
    return number(float(text))


_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


def _string_valid(schema: dict[str, Any], value: JSON) -> bool:
    if not isinstance(value, str):
        return False
    length = len(value)
    if length < schema.get("minLength", 0) or length > schema.get("maxLength", length):
        return False
    if "pattern" in schema and not compile_pattern(schema["pattern"]).fullmatch(value):
        return False
    return "enum" not in schema or value in schema["enum"]


def _number_valid(schema: dict[str, Any], parsed: float | int) -> bool:
    if schema["type"] == "integer" and parsed != int(parsed):
        return False
    if "minimum" in schema and parsed < schema["minimum"]:
        return False
    if "maximum" in schema and parsed > schema["maximum"]:
        return False
    return "enum" not in schema or any(json_equal(parsed, e) for e in schema["enum"])


def validate(run: Run, step: StepView) -> str:
    """§8.3: check a variable; convert numbers; on failure re-route."""
    raw = step.raw
    name = raw["var"]
    value = run.var(name)
    if "regex" in raw:
        ok = isinstance(value, str) and compile_pattern(raw["regex"]).fullmatch(
            value, ignore_case=bool(raw.get("ignoreCase", False))
        )
    elif raw["schema"]["type"] == "string":
        ok = _string_valid(raw["schema"], value)
    else:
        parsed = _parse_number(value)
        ok = parsed is not None and _number_valid(raw["schema"], parsed)
        if ok and isinstance(value, str):
            run.write(step.flow, name, parsed)
    if ok:
        completed(run, step)
        return step.next
    run.remove(name)
    run.emit("validation_failed", flow=step.flow, step=step.id)
    if "error" in raw:
        send_reply(run, step.flow, step.id, text_key=raw["error"])
    return str(raw.get("onFail") or _nearest_ask(run, step))


def _nearest_ask(run: Run, step: StepView) -> str:
    flow = run.spec.flows[step.flow]
    for earlier in reversed(flow.steps[: step.index]):
        if earlier.type == "ask":
            return earlier.id
    return "#end"  # pragma: no cover - validation requires onFail when no ask precedes


def expression_value(run: Run, name: str, expr: JSON) -> tuple[bool, JSON]:
    """§8.4: evaluate one ``save`` expression for variable ``name`` -> (remove?, value)."""
    if not isinstance(expr, dict):
        return False, template_value(run, expr)
    if "value" in expr:
        return False, expr["value"]
    if "increment" in expr:
        current = run.var(name)
        base = current if isinstance(current, int | float) and not isinstance(current, bool) else 0
        total = base + expr["increment"]
        return False, number(total) if math.isfinite(total) else None
    return True, None


def template_value(run: Run, value: JSON) -> JSON:
    """A literal whose strings are templates; a typed template keeps its type."""
    if isinstance(value, str):
        path = typed_placeholder(value)
        if path is not None:
            return run.lookup(path)
        return render(value, run.lookup)
    if isinstance(value, list):
        return [template_value(run, v) for v in value]
    if isinstance(value, dict):
        return {k: template_value(run, v) for k, v in value.items()}
    return value


def save(run: Run, step: StepView) -> str:
    """§8.4: evaluate every expression first, then write in name order."""
    planned = [(name, *expression_value(run, name, step.raw["set"][name])) for name in sorted(step.raw["set"])]
    for name, remove, value in planned:
        if remove:
            run.remove(name)
        else:
            run.write(step.flow, name, value)
    completed(run, step)
    return step.next


def goto(run: Run, step: StepView) -> str:
    """§8.5: branch on a condition."""
    raw = step.raw
    taken = evaluate(raw.get("when", True), run.lookup)
    completed(run, step)
    return str(raw["next"]) if taken else str(raw.get("elseNext", step.default_next))


def _encode_component(text: str) -> str:
    return quote(text, safe="-_.!~*'()")


def api_call(run: Run, step: StepView) -> str:
    """§8.6: ask the host to perform an HTTP request."""
    if run.counters["apiCalls"] >= MAX_API_CALLS:
        run.abort(step.flow, "apiCalls", limit="apiCalls")
    run.counters["apiCalls"] += 1
    raw = step.raw
    request: ApiRequest = {
        "method": raw["method"],
        "url": render(raw["url"], run.lookup, _encode_component),
        "headers": dict(raw.get("headers", {})),
        "body": template_value(run, raw["body"]) if "body" in raw else None,
        "timeoutMs": int(raw.get("timeoutMs", 3000)),
        "retries": int(raw.get("retries", 1)),
        "backoffMs": int(raw.get("backoffMs", 200)),
        "maxResponseBytes": run.spec.max_response_bytes,
    }
    counters: Counters = {**run.counters}
    run.pending = {"flow": step.flow, "step": step.id, "request": request, "counters": counters}
    run.emit("api_call", flow=step.flow, step=step.id)
    return PENDING


def api_result(run: Run, step: StepView, result: ApiResult) -> str:
    """§8.6: apply a resumed apiCall's result; returns where to go on."""
    raw = step.raw
    if result.get("ok"):
        body = result.get("body")
        for name in sorted(raw.get("map", {})):
            run.write(step.flow, name, resolve(body, raw["map"][name]))
        run.emit("api_ok", flow=step.flow, step=step.id, status=result.get("status"))
        completed(run, step)
        return step.next
    run.emit(
        "api_error",
        flow=step.flow,
        step=step.id,
        error=result.get("error"),
        status=result.get("status"),
    )
    if "onError" not in raw:
        run.abort(step.flow, "api_error")
    return str(raw["onError"])


STEP_HANDLERS: dict[str, Handler] = {
    "reply": reply,
    "ask": ask,
    "validate": validate,
    "save": save,
    "apiCall": api_call,
    "goto": goto,
}
"""Step type -> handler."""

__all__ = ["PENDING", "STEP_HANDLERS", "WAIT", "Pending", "answer", "api_result", "send_prompt"]
