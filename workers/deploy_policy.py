"""The deploy stages as an ordered transition table (STYLE rule 17).

A deployment moves through states; each stage is a rule with the set of states
it may start ``FROM`` and the state it leads ``TO`` when it passes. The pipeline
asks ``transition`` before running a stage, so a stage can never run out of
order and ``flip`` is reachable only from ``healthy``. Any non-terminal state may
go to ``failed``. Deploys and rollbacks share the table; a rollback's preflight is
lighter (docs/deploys.md) and a forced one still passes every stage, only
``compat`` records the differences instead of refusing.

    created --preflight--> preflighted --compat--> compatible --stage--> staged
            --prewarm--> warm --health--> healthy --flip--> flipped
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from botkiln.interpreter.errors import BotkilnError

State = Literal["created", "preflighted", "compatible", "staged", "warm", "healthy", "flipped", "failed"]
Stage = Literal["preflight", "compat", "stage", "prewarm", "health", "flip"]

TERMINAL: frozenset[State] = frozenset({"flipped", "failed"})


@dataclass(frozen=True)
class Rule:
    """A stage may run from any state in ``FROM`` and, when it passes, leads ``TO``."""

    stage: Stage
    FROM: frozenset[State]
    TO: State


POLICY: tuple[Rule, ...] = (
    Rule("preflight", frozenset({"created"}), "preflighted"),
    Rule("compat", frozenset({"preflighted"}), "compatible"),
    Rule("stage", frozenset({"compatible"}), "staged"),
    Rule("prewarm", frozenset({"staged"}), "warm"),
    Rule("health", frozenset({"warm"}), "healthy"),
    Rule("flip", frozenset({"healthy"}), "flipped"),
)
"""The ordered policy: the pipeline runs these stages in this order."""

STAGES: tuple[Stage, ...] = tuple(rule.stage for rule in POLICY)

_RULES = {rule.stage: rule for rule in POLICY}


class IllegalTransition(BotkilnError):
    """A stage was asked to run from a state its rule does not allow (a bug in the pipeline)."""


def transition(state: State, stage: Stage) -> State:
    """The state after ``stage`` passes, starting from ``state``.

    Raises:
        IllegalTransition: ``stage`` may not run from ``state``.
    """
    rule = _RULES[stage]
    if state not in rule.FROM:
        allowed = ", ".join(sorted(rule.FROM))
        raise IllegalTransition(f"stage {stage!r} cannot run from {state!r}; only from {allowed}")
    return rule.TO


def fail(state: State) -> State:
    """The state after a stage failed in ``state``.

    Raises:
        IllegalTransition: ``state`` is already terminal.
    """
    if state in TERMINAL:
        raise IllegalTransition(f"a deployment in {state!r} has already finished")
    return "failed"
