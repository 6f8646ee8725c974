"""workers/compat.py: which state-shape changes a deploy may make without the override."""

from __future__ import annotations

from typing import Any

from botkiln.workers.compat import VarChange, compare_state


def spec(**variables: dict[str, Any]) -> dict[str, Any]:
    return {"state": {"vars": variables}}


def test_identical_and_added_keys_are_compatible() -> None:
    before = spec(name={"type": "string", "pii": True})
    after = spec(name={"type": "string", "pii": True, "ttlSec": 60, "description": "x"}, city={"type": "string"})
    report = compare_state(before, after)
    assert report.ok and report.keys == [] and report.added == ("city",)
    assert report.describe() == "state.vars compatible; added: city"


def test_a_spec_without_state_has_no_variables() -> None:
    assert compare_state({}, {}).ok
    assert compare_state({}, spec(a={"type": "json"})).added == ("a",)


def test_removed_retyped_and_pii_changes_are_incompatible_and_named() -> None:
    before = spec(a={"type": "string"}, b={"type": "number"}, c={"type": "string", "pii": True}, d={"type": "json"})
    after = spec(b={"type": "boolean", "pii": True}, c={"type": "string"}, d={"type": "json"})
    report = compare_state(before, after)
    assert not report.ok and report.keys == ["a", "b", "c"]
    assert report.changes == (
        VarChange("a", "removed", "string", "-"),
        VarChange("b", "retyped", "number", "boolean"),
        VarChange("b", "pii", "not pii", "pii"),
        VarChange("c", "pii", "pii", "not pii"),
    )
    assert report.describe() == (
        "state.vars incompatible with the active revision (a, b, c): removed: a (string, removed); "
        "type changed: b (number -> boolean); PII flag changed: b (not pii -> pii), c (pii -> not pii)"
    )
