"""State-shape compatibility between the active revision's spec and the one about to serve.

Chats keep their ``state.vars`` across a flip, so a deploy or rollback must not
change what an existing variable means. Comparing ``spec.state.vars`` of the
active spec (``before``) and the new one (``after``), a key is **incompatible**
when it was

- ``removed``: chats hold a value no flow declares any more (and a later revision
  re-adding the key would find stale data);
- ``retyped``: its ``type`` changed (``string``/``number``/``boolean``/``json``),
  so stored values no longer fit what the new flows expect;
- ``pii``: its PII flag changed, so stored values would be redacted, logged and
  expired under a policy they were not collected under.

An **added** key is compatible (chats simply do not have it yet), and so are
changes of ``ttlSec``, ``default``, ``description`` and ``state.maxBytes``.
docs/deploys.md states the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Change = Literal["removed", "retyped", "pii"]


@dataclass(frozen=True)
class VarChange:
    """One incompatible change of a state variable."""

    key: str
    change: Change
    before: str
    after: str

    def describe(self) -> str:
        """``name (string -> number)`` and the like."""
        if self.change == "removed":
            return f"{self.key} ({self.before}, removed)"
        return f"{self.key} ({self.before} -> {self.after})"


@dataclass(frozen=True)
class CompatReport:
    """The outcome of comparing two state shapes."""

    changes: tuple[VarChange, ...]
    added: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when no key changed incompatibly."""
        return not self.changes

    @property
    def keys(self) -> list[str]:
        """The differing (incompatible) keys, sorted."""
        return sorted({c.key for c in self.changes})

    def describe(self) -> str:
        """A sentence naming every differing key, grouped by kind of change."""
        if self.ok:
            return "state.vars compatible" + (f"; added: {', '.join(self.added)}" if self.added else "")
        groups = {"removed": "removed", "retyped": "type changed", "pii": "PII flag changed"}
        parts = []
        for change, label in groups.items():
            found = [c.describe() for c in self.changes if c.change == change]
            if found:
                parts.append(f"{label}: {', '.join(found)}")
        return f"state.vars incompatible with the active revision ({', '.join(self.keys)}): " + "; ".join(parts)


def state_shape(spec: Mapping[str, Any]) -> dict[str, tuple[str, bool]]:
    """Each declared variable's (type, pii) in ``spec``."""
    variables = spec.get("state", {}).get("vars", {})
    return {key: (str(decl.get("type")), bool(decl.get("pii", False))) for key, decl in variables.items()}


def compare_state(before: Mapping[str, Any], after: Mapping[str, Any]) -> CompatReport:
    """Compare the state shapes of the active spec (``before``) and the new one (``after``)."""
    old, new = state_shape(before), state_shape(after)
    changes: list[VarChange] = []
    for key in sorted(old):
        (old_type, old_pii) = old[key]
        if key not in new:
            changes.append(VarChange(key, "removed", old_type, "-"))
            continue
        new_type, new_pii = new[key]
        if new_type != old_type:
            changes.append(VarChange(key, "retyped", old_type, new_type))
        if new_pii != old_pii:
            changes.append(VarChange(key, "pii", _pii(old_pii), _pii(new_pii)))
    return CompatReport(tuple(changes), tuple(sorted(set(new) - set(old))))


def _pii(flag: bool) -> str:
    return "pii" if flag else "not pii"
