"""Benchmark of the QuickJS sandbox: cold start, per-call time, and RSS per warm sandbox.

Run: ``.venv/bin/python bench/bench_sandbox.py [--sandboxes N]``. Linux only (reads VmRSS).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable

import quickjs

from botkiln.interpreter.quickjs import Sandbox, SandboxLimits


def synthetic_bot(flows: int = 24) -> str:
    """A generated-looking bot.js of about 20 KB: a command table, flows, templates, checks."""
    parts = [
        "// generator: bench-synthetic 0; ast-rules: 0",
        "function render(t, s) { return t.replace(/\\{\\{state\\.(\\w+)\\}\\}/g,"
        " function (_, k) { return s[k] === undefined ? '' : String(s[k]); }); }",
        "function reply(out, chat, text, s) { out.actions.push("
        "{method: 'sendMessage', params: {chat_id: chat, text: render(text, s)}}); }",
    ]
    for i in range(flows):
        parts.append(
            f"""
function flow_{i}(input, out) {{
  var s = input.state, e = input.event, chat = e.chat_id;
  s.visits_{i} = (s.visits_{i} || 0) + 1;
  if (e.text && e.text.length > 40) {{
    out.events.push({{type: 'validation_failed', flow: 'flow_{i}', step: 'ask_{i}'}});
    reply(out, chat, 'Too long, {{{{state.name}}}}: please keep it under 40 characters.', s);
    return;
  }}
  if (/^\\d+$/.test(e.text || '')) {{ s.amount_{i} = parseInt(e.text, 10); }}
  var lines = [];
  for (var k = 0; k < 5; k++) lines.push('item ' + k + ' of flow {i}: ' + (s.amount_{i} || 0) * k);
  reply(out, chat, 'Flow {i} for {{{{state.name}}}} (visit {{{{state.visits_{i}}}}})\\n'
    + lines.join('\\n'), s);
  out.events.push({{type: 'step_completed', flow: 'flow_{i}', step: 'reply_{i}'}});
  s.cursor = {{flow: 'flow_{i}', step: s.amount_{i} ? 'done' : 'ask_{i}'}};
}}"""
        )
    table = ", ".join(f"'/cmd{i}': flow_{i}" for i in range(flows))
    parts.append(
        f"""
var COMMANDS = {{{table}}};
function step(input) {{
  var out = {{actions: [], state: JSON.parse(JSON.stringify(input.state)), events: []}};
  var handler = COMMANDS[input.event.command] || flow_0;
  handler({{event: input.event, state: out.state, context: input.context}}, out);
  return out;
}}"""
    )
    return "\n".join(parts)


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def report(label: str, samples_us: list[float]) -> None:
    samples_us.sort()
    p95 = samples_us[int(len(samples_us) * 0.95) - 1]
    median = statistics.median(samples_us)
    print(f"  {label:<48} median {median:9.1f} us   p95 {p95:9.1f} us")


def has_bytecode_api() -> bool:
    names = set(dir(quickjs.Context)) | set(dir(quickjs))
    return any(word in name for name in names for word in ("bytecode", "compile", "serial"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sandboxes", type=int, default=200)
    args = parser.parse_args()
    source = synthetic_bot()
    limits = SandboxLimits()
    event = {"chat_id": 42, "text": "17", "command": "/cmd7", "kind": "message"}
    state = {"name": "Ada", **{f"visits_{i}": i for i in range(20)}}
    input_json = json.dumps({"event": event, "state": state, "context": {"now": 0}})

    print(f"quickjs-ng binding: {quickjs.__file__}")
    print(f"bot.js: {len(source.encode()) / 1024:.1f} KiB synthetic handler, limits {limits}")
    print("\ncold start (fresh runtime + hardening prelude + bot.js + bind step):")
    report("bare quickjs.Context()", timed(quickjs.Context, 200))
    trivial = "function step(i) { return {}; }"
    report("Sandbox(trivial bot): runtime + prelude + bind", timed(lambda: Sandbox(trivial), 200))
    report("Sandbox(20 KB bot.js) from source", timed(lambda: Sandbox(source), 200))
    if has_bytecode_api():
        print("  bytecode API found in the binding: add a cached-bytecode measurement here")
    else:
        print(
            "  cached bytecode: NOT SUPPORTED - quickjs-ng's Python binding exposes no compile/"
            "serialise\n  or load-bytecode call (Context has only eval/module/get/set/parse_json),"
            " so every\n  rebuild re-parses the source; the pool keeps live runtimes instead."
        )

    print("\nper call (warm sandbox, JSON text in and out):")
    sandbox = Sandbox(source)
    output = sandbox.call(input_json)
    print(f"  input {len(input_json)} B -> output {len(output)} B")
    for _ in range(200):
        sandbox.call(input_json)
    report("Sandbox.call (20 KB handler)", timed(lambda: sandbox.call(input_json), 3000))
    tiny = Sandbox("function step(i) { return {ok: true}; }")
    report("Sandbox.call (trivial handler)", timed(lambda: tiny.call("{}"), 3000))
    report("json.loads(output) on the host", timed(lambda: json.loads(output), 3000))
    depth = Sandbox(
        "var d = 0; function f() { d++; f(); } function step(i) { try { f(); } catch (e) {} return {depth: d}; }"
    ).call_obj({})["depth"]
    print(f"  JS recursion depth allowed by stack_bytes={limits.stack_bytes}: {depth}")

    print(f"\nRSS per warm sandbox ({args.sandboxes} sandboxes of the 20 KB bot, one call each):")
    gc.collect()
    before = rss_kib()
    warm = []
    for _ in range(args.sandboxes):
        box = Sandbox(source)
        box.call(input_json)
        warm.append(box)
    gc.collect()
    after = rss_kib()
    per_kib = (after - before) / args.sandboxes
    js_heap_kib = statistics.mean(box.memory_used() for box in warm) / 1024
    print(f"  VmRSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB")
    print(f"  {per_kib:.0f} KiB RSS per sandbox (QuickJS heap reports {js_heap_kib:.0f} KiB)")
    print(f"  => about {int(1024 * 1024 / per_kib)} warm sandboxes fit in 1 GiB")


if __name__ == "__main__":
    main()
