"""Worst-case regex validation: the Python matcher vs bot.js's matcher in QuickJS.

Pathological-but-valid patterns near the dialect's limits (500 states, values of
1024 code points) run through a compiled validate step in QuickJS (the whole
call: routing, validation, output) and through the Python dialect matcher.
The QuickJS figure must stay well under the sandbox's 200 ms per-call budget.

Run: ``.venv/bin/python bench/bench_regex.py``.
"""

from __future__ import annotations

import random
import time
from typing import Any

from botkiln.generator.compiler import compile_spec
from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.quickjs import QuickJsEngine, SandboxLimits
from botkiln.interpreter.regex_dialect import compile_pattern

PATTERNS = [
    "[^@\\s]+@[^@\\s]+\\.[a-z]{2,}",
    ".{0,27}" * 9 + "b",
    "(?:.?){27}" * 9 + "z",
    "(?:.*a.{20}){12}",
    "(?:.*a.{22}){19}",
    "(?:(?:a|b)*a(?:a|b){5}){24}",
]


def _spec(pattern: str) -> dict[str, Any]:
    return {
        "schema_ver": 1,
        "meta": {"botId": "rx", "name": "rx", "locales": ["en"], "defaultLocale": "en"},
        "commands": [{"command": "start", "flow": "main"}],
        "flows": [{"id": "main", "steps": [
            {"id": "q", "type": "ask", "var": "v", "prompt": "q"},
            {"id": "v", "type": "validate", "var": "v", "regex": pattern, "onFail": "#end"},
        ]}],
        "state": {"vars": {"v": {"type": "string"}}},
        "localization": {"strings": {"q": {"en": "?"}}},
    }  # fmt: skip


def main() -> None:
    rng = random.Random(1)
    value = "".join(rng.choice("ab") for _ in range(1024))
    print(f"{'pattern':<32}{'states':>7}{'python ms':>11}{'quickjs ms':>12}")
    for pattern in PATTERNS:
        regex = compile_pattern(pattern)
        start = time.perf_counter()
        regex.fullmatch(value)
        python_ms = (time.perf_counter() - start) * 1000
        spec = _spec(pattern)
        engine = QuickJsEngine(compile_spec(spec), limits=SandboxLimits(time_ms=5000))
        conversation = Conversation(engine, spec, FixtureApi({}))
        conversation.send({"text": "/start"})
        start = time.perf_counter()
        conversation.send({"text": value})
        js_ms = (time.perf_counter() - start) * 1000
        print(f"{pattern[:30]:<32}{regex.states:>7}{python_ms:>11.1f}{js_ms:>12.1f}")


if __name__ == "__main__":
    main()
