"""The same compiled bot.js in QuickJS (our sandbox) vs Node's V8 (no isolation).

V8 with its JIT is what an isolated-vm based runtime (the seed's original plan)
would execute; isolated-vm itself is a native addon that cannot be built here
(node-gyp needs headers from the network), so this measures plain Node as the
optimistic bound for it: an isolate adds a copy of input and output per call.
Both engines get exactly the recorded step inputs of the golden conversations.

Run: ``.venv/bin/python bench/bench_node.py`` (needs ``node`` on PATH).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_engines import EXAMPLES, _inputs

from botkiln.generator.compiler import compile_spec
from botkiln.interpreter.quickjs import QuickJsEngine

NODE_RUNNER = r"""
const fs = require("fs");
const vm = require("vm");
const [src, inputsPath, rounds] = process.argv.slice(2);
const inputs = JSON.parse(fs.readFileSync(inputsPath, "utf8")).map((i) => JSON.stringify(i));
const context = vm.createContext({});
const wrapper = "\n;globalThis.__call = (s) => JSON.stringify(step(JSON.parse(s)));";
vm.runInContext(fs.readFileSync(src, "utf8") + wrapper, context);
const call = context.__call;
const samples = [];
for (let r = 0; r < Number(rounds); r++) {
  const t = process.hrtime.bigint();
  for (const i of inputs) call(i);
  samples.push(Number(process.hrtime.bigint() - t) / 1000 / inputs.length);
}
samples.sort((a, b) => a - b);
console.log(JSON.stringify({median: samples[Math.floor(samples.length / 2)]}));
"""


def main() -> None:
    node = shutil.which("node")
    if node is None:
        sys.exit("node is not installed")
    rounds = 50
    print(f"{'example':<14}{'quickjs µs/step':>17}{'node vm µs/step':>17}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        runner = Path(tmp) / "runner.js"
        runner.write_text(NODE_RUNNER)
        for name in EXAMPLES:
            spec, inputs = _inputs(name)
            source = compile_spec(spec)
            bot = Path(tmp) / f"{name}.js"
            bot.write_text(source)
            data = Path(tmp) / f"{name}.inputs.json"
            data.write_text(json.dumps(inputs))
            engine = QuickJsEngine(source)
            samples = []
            for _ in range(rounds):
                start = time.perf_counter()
                for item in inputs:
                    engine(item)
                samples.append((time.perf_counter() - start) / len(inputs) * 1e6)
            qjs = sorted(samples)[len(samples) // 2]
            out = subprocess.run([node, str(runner), str(bot), str(data), str(rounds)], capture_output=True, text=True,
                                 check=True)  # fmt: skip
            v8 = json.loads(out.stdout)["median"]
            print(f"{name:<14}{qjs:>17.1f}{v8:>17.1f}{qjs / v8:>8.1f}")


if __name__ == "__main__":
    main()
