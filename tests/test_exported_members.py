"""Each package's public surface is pinned (httpx style)."""

from __future__ import annotations

import botkiln.generator
import botkiln.interpreter


def test_interpreter_exports() -> None:
    assert sorted(botkiln.interpreter.__all__) == [
        "BotkilnError", "Interpreter", "SpecError", "SpecInvalid", "canonical_json",
        "normalize_update", "spec_hash", "validate_spec",
    ]  # fmt: skip
    for name in botkiln.interpreter.__all__:
        assert getattr(botkiln.interpreter, name) is not None


def test_generator_exports() -> None:
    assert sorted(botkiln.generator.__all__) == [
        "AST_RULES_VERSION", "BuildFailed", "COMPILER_VERSION", "PolicyReport", "Revision",
        "build_revision", "check_source", "compile_spec",
    ]  # fmt: skip
    for name in botkiln.generator.__all__:
        assert getattr(botkiln.generator, name) is not None
