"""The two engines agree on generated specs and conversations (hypothesis).

Every generated spec is compiled to bot.js and run in QuickJS in lock step with
the reference interpreter; any difference in any call's canonical output fails
with the divergence report (step pointer, events, input, both outputs).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botkiln.generator.compiler import compile_spec
from botkiln.interpreter.conformance import Script, run_script
from botkiln.interpreter.quickjs import QuickJsEngine
from tests.strategies import api_fixtures, events, specs

FUZZ = settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@FUZZ
@given(spec=specs(), script=st.lists(events, min_size=1, max_size=10), fixture=api_fixtures())
def test_compiled_bot_agrees_with_the_reference_on_generated_specs(
    spec: dict[str, Any], script: list[dict[str, Any]], fixture: dict[str, Any]
) -> None:
    engine = QuickJsEngine(compile_spec(spec))
    _updates, _calls, divergence = run_script(spec, engine, Script("fuzz", script, fixture, bot_username="fuzz_bot"))
    assert divergence is None, divergence.render()
