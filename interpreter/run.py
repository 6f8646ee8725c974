"""One call of ``step``: the mutable state of a single engine invocation.

A ``Run`` holds the state being built, the actions and telemetry emitted so far,
and the per-update counters. Every effect goes through it, so each limit of
docs/botspec.md §13 is enforced in exactly one place. ``Halt`` ends the call early
("the call ends" in the normative text); the engine catches it and returns.
"""

from __future__ import annotations

import copy
from typing import Any

from botkiln.interpreter.canonical import canonical_json
from botkiln.interpreter.spec import SpecView
from botkiln.interpreter.templates import Path, descend, render
from botkiln.interpreter.types import (
    JSON,
    Action,
    Context,
    Counters,
    Event,
    Pending,
    State,
    Telemetry,
)

MAX_TRANSITIONS = 200
MAX_ACTIONS = 30
MAX_API_CALLS = 2


class Halt(Exception):
    """Ends the current call; the engine returns what has been built."""


def initial_state() -> State:
    """The state of a chat never seen before (§5)."""
    return {"vars": {}, "cursor": None, "cooldowns": {}, "setAt": {}, "updatedAt": None}


class Run:
    """The working set of one ``step`` call."""

    def __init__(
        self,
        spec: SpecView,
        event: Event,
        state: State | None,
        context: Context,
        counters: Counters | None = None,
    ) -> None:
        self.spec = spec
        self.event = event
        self.context = context
        self.now = int(context.get("now", 0))
        locale = context.get("locale")
        self.locale = locale if locale in spec.locales else spec.default_locale
        self.state: State = copy.deepcopy(state) if state is not None else initial_state()
        self.pending: Pending | None = None
        self.actions: list[Action] = []
        self.events: list[Telemetry] = []
        self.counters: Counters = (
            dict(counters)  # type: ignore[assignment]
            if counters is not None
            else {"transitions": 0, "apiCalls": 0, "actions": 0}
        )

    # -- telemetry ---------------------------------------------------------
    def emit(self, type_: str, **fields: Any) -> None:
        """Append one telemetry item."""
        item: dict[str, Any] = {"type": type_, **fields}
        self.events.append(item)  # type: ignore[arg-type]

    def abort(self, flow: str, reason: str, *, limit: str | None = None) -> None:
        """Abort the running flow (§7.3, §13) and end the call."""
        if limit is not None:
            self.emit("limit_reached", limit=limit)
        self.emit("flow_aborted", flow=flow, reason=reason)
        self.state["cursor"] = None
        raise Halt

    # -- values ------------------------------------------------------------
    def var(self, name: str) -> JSON:
        """The value of a variable (§5.1)."""
        vars_ = self.state["vars"]
        if name in vars_:
            return vars_[name]
        return self.spec.vars.get(name, {}).get("default")

    def lookup(self, path: Path) -> JSON:
        """Resolve a placeholder path (§10.2)."""
        context: dict[str, JSON] = self.context  # type: ignore[assignment]
        base = self.var(path.head) if path.root == "state" else context.get(path.head)
        return descend(base, path.segments[1:])

    def text(self, key: str) -> str:
        """The rendered text of a string key in the run's locale (§10.1)."""
        variants = self.spec.strings[key]
        template = variants.get(self.locale, variants.get(self.spec.default_locale, ""))
        return render(template, self.lookup)

    # -- effects -----------------------------------------------------------
    def write(self, flow: str, name: str, value: JSON) -> None:
        """Set a variable, within the state size limit (§5.2, §7.3)."""
        vars_ = self.state["vars"]
        candidate = dict(vars_)
        candidate[name] = value
        if len(canonical_json(candidate)) > self.spec.max_state_bytes:
            self.abort(flow, "state", limit="state")
        vars_[name] = value
        if name in self.spec.var_ttl_ms:
            self.state["setAt"][name] = self.now

    def remove(self, name: str) -> None:
        """Remove a variable and its write time."""
        self.state["vars"].pop(name, None)
        self.state["setAt"].pop(name, None)

    def send(self, flow: str, method: str, params: dict[str, JSON]) -> None:
        """Append one Bot API action, within the per-update budget (§13)."""
        if self.counters["actions"] >= MAX_ACTIONS:
            self.abort(flow, "actions", limit="actions")
        self.counters["actions"] += 1
        self.actions.append({"method": method, "params": params})

    def expire(self) -> None:
        """Apply state and variable expiry at the start of the call (§5.3)."""
        state = self.state
        ttl = self.spec.state_ttl_ms
        updated = state["updatedAt"]
        if ttl is not None and updated is not None and self.now - updated >= ttl:
            self.state = state = initial_state()
            self.emit("state_expired")
        for name, var_ttl in self.spec.var_ttl_ms.items():
            set_at = state["setAt"].get(name)
            if set_at is not None and self.now - set_at >= var_ttl:
                self.remove(name)

    def telemetry(self) -> list[Telemetry]:
        """The telemetry to output, after the spec's filter (§12)."""
        if not self.spec.telemetry_enabled:
            return []
        exclude = self.spec.telemetry_exclude
        return [e for e in self.events if e["type"] not in exclude]
