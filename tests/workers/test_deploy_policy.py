"""workers/deploy_policy.py: the stage transition table."""

from __future__ import annotations

import pytest

from botkiln.workers.deploy_policy import POLICY, STAGES, IllegalTransition, State, fail, transition


def test_the_stages_run_in_the_documented_order() -> None:
    assert STAGES == ("preflight", "compat", "stage", "prewarm", "health", "flip")
    state: State = "created"
    for stage in STAGES:
        state = transition(state, stage)
    assert state == "flipped"


@pytest.mark.parametrize("state", ["created", "preflighted", "compatible", "staged", "warm", "flipped", "failed"])
def test_flip_is_reachable_only_from_healthy(state: State) -> None:
    with pytest.raises(IllegalTransition, match="only from healthy"):
        transition(state, "flip")
    assert transition("healthy", "flip") == "flipped"


def test_no_stage_may_be_skipped_or_repeated() -> None:
    with pytest.raises(IllegalTransition):
        transition("created", "health")
    with pytest.raises(IllegalTransition):
        transition("preflighted", "preflight")
    assert [rule.stage for rule in POLICY if "created" in rule.FROM] == ["preflight"]


def test_any_unfinished_state_may_fail_but_a_finished_one_may_not() -> None:
    assert fail("warm") == "failed"
    for finished in ("flipped", "failed"):
        with pytest.raises(IllegalTransition, match="already finished"):
            fail(finished)
