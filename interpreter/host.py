"""The host side of one update: normalise, call the engine until no ``pending``.

Engines are pure; the host performs their ``apiCall`` requests through an
``ApiPerformer`` (a fixture for reproducible runs, real HTTP for ``botkiln chat``
and, later, the runtime's outbound proxy) and concatenates the actions and
telemetry of every call of the update (docs/botspec.md §3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from botkiln.interpreter.canonical import normalize
from botkiln.interpreter.events import build_context, normalize_update
from botkiln.interpreter.types import (
    Action,
    ApiRequest,
    ApiResult,
    State,
    StepInput,
    StepOutput,
    Telemetry,
)

Engine = Callable[[StepInput], StepOutput]
"""Anything that runs one call of the step contract."""

MAX_CALLS_PER_UPDATE = 3  # two apiCalls, so at most three calls


class ApiPerformer(Protocol):
    """Performs the HTTP request of a pending apiCall."""

    def perform(self, request: ApiRequest) -> ApiResult:
        """The result of ``request`` (never raises for HTTP-level failures)."""
        ...


@dataclass
class UpdateResult:
    """Everything one update produced."""

    actions: list[Action] = field(default_factory=list)
    events: list[Telemetry] = field(default_factory=list)
    requests: list[ApiRequest] = field(default_factory=list)
    state: State | None = None

    def as_json(self) -> dict[str, Any]:
        """The line ``botkiln simulate`` prints for this update."""
        return {
            "actions": self.actions,
            "events": self.events,
            "requests": self.requests,
            "state": self.state,
        }


def handle_update(
    engine: Engine,
    spec: dict[str, Any],
    update: Any,
    state: State | None,
    *,
    now: int,
    api: ApiPerformer,
    bot_username: str | None = None,
    revision: str = "reference",
) -> UpdateResult:
    """Run one raw Telegram update through ``engine``, performing apiCalls."""
    event = normalize_update(update, bot_username=bot_username)
    context = build_context(event, spec, now=now, revision=revision)
    data: StepInput = {"event": event, "state": state, "context": context}
    result = UpdateResult()
    for _ in range(MAX_CALLS_PER_UPDATE):
        output = engine(data)
        result.actions.extend(output["actions"])
        result.events.extend(output["events"])
        result.state = output["state"]
        pending = output.get("pending")
        if pending is None:
            break
        result.requests.append(pending["request"])
        outcome = normalize(api.perform(pending["request"]))
        data = {
            "event": event,
            "state": output["state"],
            "context": context,
            "resume": {"pending": pending, "result": outcome},
        }
    return result
