"""Revision building and the ``build`` / ``conformance`` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from botkiln.generator.generators import CompilerGenerator
from botkiln.generator.revision import BuildFailed, build_revision, rev_hash
from botkiln.infra.cli import main
from botkiln.interpreter.canonical import canonical_json, spec_hash
from botkiln.interpreter.errors import SpecInvalid
from tests.conftest import minimal_spec

ROOT = Path(__file__).resolve().parents[2]


class FixedGenerator:
    """A generator that returns scripted programs in turn and records feedback."""

    kind = "test"
    version = "1"
    model: str | None = None
    seed: int | None = None
    sdk_version = "none"

    def __init__(self, *programs: str) -> None:
        self.programs = list(programs)
        self.feedback: list[str | None] = []

    def generate(self, spec: dict[str, Any], feedback: str | None) -> str:
        self.feedback.append(feedback)
        return self.programs.pop(0)


def test_building_twice_gives_identical_files(tmp_path: Path) -> None:
    spec = json.loads((ROOT / "examples" / "quiz.json").read_text())
    first = build_revision(spec, CompilerGenerator())
    second = build_revision(spec, CompilerGenerator())
    assert first.files == second.files
    assert first.rev_hash == second.rev_hash == first.rev["revHash"]
    rev = json.loads(first.files["rev.json"])
    assert rev["specHash"] == spec_hash(spec)
    assert rev["artifacts"]["bot.js"]["size"] == len(first.files["bot.js"])
    assert first.files["spec.json"] == canonical_json(spec)
    assert rev["build"]["generator"] == "compiler" and rev["build"]["astRulesVersion"] == "1"
    assert rev["conformance"]["calls"] > 100


def test_rev_hash_depends_only_on_build_inputs() -> None:
    spec = minimal_spec()
    generator = CompilerGenerator()
    base = rev_hash(spec, generator)
    reordered = json.loads(json.dumps(spec, sort_keys=True))
    assert rev_hash(reordered, generator) == base
    spec["localization"]["strings"]["bye"]["en"] = "Ciao {{state.name}}"
    assert rev_hash(spec, generator) != base


def test_hostile_program_fails_the_ast_gate_with_line_and_column() -> None:
    hostile = "function step(input) {\n  return eval('1');\n}\n"
    with pytest.raises(BuildFailed) as failed:
        build_revision(minimal_spec(), FixedGenerator(hostile))
    assert failed.value.stage == "ast-policy"
    assert "bot.js:2:10: dynamic-code" in failed.value.detail


def test_wrong_program_fails_conformance_and_feedback_reaches_the_next_attempt() -> None:
    spec = minimal_spec()
    good = CompilerGenerator().generate(spec, None)
    wrong = good.replace('"Hello"', '"Hallo"') if '"Hello"' in good else good.replace("Hello", "Hallo")
    generator = FixedGenerator(wrong, good)
    revision = build_revision(spec, generator, max_attempts=2)
    assert generator.feedback[0] is None
    assert generator.feedback[1] is not None and "divergence in conversation" in generator.feedback[1]
    assert [entry["ok"] for entry in revision.log] == [False, True]


def test_runaway_program_is_a_conformance_failure_not_a_hang() -> None:
    loop = "function step(input) {\n  while (true) {}\n}\n"
    with pytest.raises(BuildFailed) as failed:
        build_revision(minimal_spec(), FixedGenerator(loop))
    assert failed.value.stage == "conformance"
    assert "SandboxTimeout" in failed.value.detail


def test_invalid_spec_is_refused_before_generation() -> None:
    spec = minimal_spec()
    spec["commands"][0]["flow"] = "nope"
    with pytest.raises(SpecInvalid):
        build_revision(spec, FixedGenerator())


def test_build_cli_writes_the_revision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rev"
    assert main(["build", str(ROOT / "examples" / "faq.json"), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["bot.js", "build-log.json", "rev.json", "spec.json"]
    rev = json.loads((out / "rev.json").read_text())
    assert capsys.readouterr().out.startswith(f"revision {rev['revHash']}\n")
    assert (out / "bot.js").read_text().startswith("// botkiln compiler ")


def test_conformance_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_path = tmp_path / "s.json"
    spec_path.write_text(json.dumps(minimal_spec()))
    assert main(["conformance", str(spec_path)]) == 0
    assert capsys.readouterr().out.startswith("conforms: ")
    runaway = tmp_path / "loop.js"
    runaway.write_text("function step(input) { for (;;) {} }\n")
    assert main(["conformance", str(spec_path), "--js", str(runaway)]) == 1
    out = capsys.readouterr().out
    assert "divergence in conversation" in out and "SandboxTimeout" in out
    broken = tmp_path / "broken.js"
    broken.write_text("function step(input) {")
    assert main(["conformance", str(spec_path), "--js", str(broken)]) == 1
    assert "does not load in QuickJS" in capsys.readouterr().err
    assert main(["conformance", str(tmp_path / "missing.json")]) == 2


def test_simulate_engines_print_identical_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "support"
    args = [
        str(ROOT / "examples" / f"{name}.json"),
        "--events",
        str(ROOT / "tests" / "examples" / f"{name}.events.jsonl"),
    ]
    args += ["--api", str(ROOT / "examples" / "fixtures" / f"{name}.api.json")]
    assert main(["simulate", *args, "--engine", "reference"]) == 0
    reference = capsys.readouterr().out
    assert main(["simulate", *args, "--engine", "quickjs"]) == 0
    assert capsys.readouterr().out == reference
