"""Build time of a generated 100-flow spec, stage by stage.

Stages: validation, compile, AST policy, conformance (derived conversations in
QuickJS beside the reference interpreter). Run: ``.venv/bin/python bench/bench_build.py``.
"""

from __future__ import annotations

import time
from typing import Any

from botkiln.generator.ast_policy import check_source
from botkiln.generator.compiler import compile_spec
from botkiln.generator.generators import CompilerGenerator
from botkiln.generator.revision import allowed_domains, build_revision
from botkiln.interpreter.validation import validate_spec


def big_spec(flows: int = 100) -> dict[str, Any]:
    """A valid spec with ``flows`` flows of six steps each, commands and intents."""
    spec: dict[str, Any] = {
        "schema_ver": 1,
        "meta": {"botId": "big", "name": "Big", "locales": ["en", "ru"], "defaultLocale": "en"},
        "commands": [],
        "intents": [],
        "flows": [],
        "state": {"vars": {"answer": {"type": "string"}, "score": {"type": "number"}}},
        "localization": {
            "strings": {
                "ask": {"en": "Answer {{state.score}}?", "ru": "Ответ?"},
                "ok": {"en": "OK"},
                "bad": {"en": "No"},
            }
        },
    }
    for i in range(flows):
        spec["flows"].append(
            {
                "id": f"flow{i}",
                "steps": [
                    {
                        "id": "intro",
                        "type": "reply",
                        "text": "ok",
                        "buttons": {"inline": [[{"text": "ok", "data": f"go{i}"}]]},
                    },
                    {"id": "q", "type": "ask", "var": "answer", "prompt": "ask"},
                    {"id": "v", "type": "validate", "var": "answer", "regex": "[a-z]{1,10}", "error": "bad"},
                    {"id": "s", "type": "save", "set": {"score": {"increment": 1}}},
                    {
                        "id": "g",
                        "type": "goto",
                        "when": {"left": "state.score", "op": "ge", "right": 3},
                        "next": "done",
                        "elseNext": "q",
                    },
                    {
                        "id": "done",
                        "type": "reply",
                        "text": "ok",
                        "next": f"@flow{(i + 1) % flows}" if i % 10 == 0 else "#end",
                    },
                ],
            }
        )
        if i < 100:
            spec["commands"].append({"command": f"c{i}", "flow": f"flow{i}"})
        if i % 5 == 0:
            spec["intents"].append(
                {"id": f"i{i}", "flow": f"flow{i}", "keywords": {"en": [f"topic{i}"], "ru": [f"тема{i}"]}}
            )
    return spec


def _timed(label: str, fn: Any) -> Any:
    start = time.perf_counter()
    result = fn()
    print(f"  {label:<28}{(time.perf_counter() - start) * 1000:>9.1f} ms")
    return result


def main() -> None:
    spec = big_spec()
    print(f"100-flow spec: {len(spec['flows'])} flows, {sum(len(f['steps']) for f in spec['flows'])} steps")
    errors = _timed("validate", lambda: validate_spec(spec))
    assert errors == [], errors[:3]
    source = _timed("compile", lambda: compile_spec(spec))
    print(f"  bot.js: {len(source.encode()) / 1024:.1f} KiB")
    report = _timed("AST policy", lambda: check_source(source, allowed_domains=allowed_domains(spec), max_bytes=2**20))
    assert report.ok, report.render()
    revision = _timed("whole build (incl. conformance)", lambda: build_revision(spec, CompilerGenerator()))
    print(f"  conformance: {revision.rev['conformance']}")


if __name__ == "__main__":
    main()
