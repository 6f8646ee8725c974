"""Per-step time: the reference interpreter vs bot.js in QuickJS, on the examples.

Each example's golden conversation (tests/examples/<name>.events.jsonl) is
replayed: the step inputs are recorded once from the reference run, then each
engine is timed on exactly those inputs (so API results and state chains are
identical and only the engine differs). Also: sandbox cold start (load bot.js
into a fresh context; the binding has no bytecode cache, see bench_sandbox.py)
and the compiled size.

Run: ``.venv/bin/python bench/bench_engines.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from botkiln.generator.compiler import compile_spec
from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.conversation import Conversation
from botkiln.interpreter.engine import Interpreter
from botkiln.interpreter.quickjs import QuickJsEngine, Sandbox
from botkiln.interpreter.types import StepInput, StepOutput

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["faq", "lead_capture", "booking", "quiz", "support"]


def _inputs(name: str) -> tuple[dict[str, Any], list[StepInput]]:
    spec = json.loads((ROOT / "examples" / f"{name}.json").read_text())
    fixture = json.loads((ROOT / "examples" / "fixtures" / f"{name}.api.json").read_text())
    reference = Interpreter(spec)
    recorded: list[StepInput] = []

    def recording(data: StepInput) -> StepOutput:
        recorded.append(json.loads(json.dumps(data)))
        return reference.step(data)

    conversation = Conversation(recording, spec, FixtureApi.for_spec(fixture, spec))
    events = (ROOT / "tests" / "examples" / f"{name}.events.jsonl").read_text().splitlines()
    for line in events:
        if line.strip():
            conversation.send(json.loads(line))
    return spec, recorded


def _per_call_us(engine: Any, inputs: list[StepInput], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for data in inputs:
            engine(data)
        samples.append((time.perf_counter() - start) / len(inputs) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    print(f"{'example':<14}{'calls':>6}{'bot.js KB':>10}{'ref µs/step':>13}{'qjs µs/step':>13}{'cold ms':>9}")
    for name in EXAMPLES:
        spec, inputs = _inputs(name)
        source = compile_spec(spec)
        reference = Interpreter(spec).step
        quickjs = QuickJsEngine(source)
        ref_us = _per_call_us(reference, inputs, args.rounds)
        qjs_us = _per_call_us(quickjs, inputs, args.rounds)
        cold = []
        for _ in range(10):
            start = time.perf_counter()
            Sandbox(source)
            cold.append((time.perf_counter() - start) * 1000)
        size = len(source.encode()) / 1024
        print(f"{name:<14}{len(inputs):>6}{size:>10.1f}{ref_us:>13.1f}{qjs_us:>13.1f}{statistics.median(cold):>9.2f}")
    rss_per_sandbox()


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rss_per_sandbox(name: str = "support", count: int = 200) -> None:
    """RSS of warm sandboxes of a compiled example (the SDK makes every bot.js ~40 KiB+)."""
    spec = json.loads((ROOT / "examples" / f"{name}.json").read_text())
    source = compile_spec(spec)
    before = _rss_kib()
    sandboxes = [Sandbox(source) for _ in range(count)]
    per = (_rss_kib() - before) / count
    print(
        f"RSS per warm sandbox of {name} ({len(source) / 1024:.0f} KiB bot.js): {per:.0f} KiB "
        f"-> about {1024 * 1024 / per:.0f} per GiB ({len(sandboxes)} measured)"
    )


if __name__ == "__main__":
    main()
