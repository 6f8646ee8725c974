"""One sandbox: a QuickJS runtime holding one hardened ``bot.js`` and its ``step`` function.

Contract: bot.js is a classic script declaring ``function step(input)``; the host passes JSON
text in and gets JSON text out (``call``), so no JS value ever crosses the boundary.

Invariants:

- No host capability is reachable from JS: the binding's bare context has no ``std``/``os``
  modules, no module loader and no Python callables. Before bot.js runs, :data:`_PRELUDE`
  disables ``eval`` and every Function-family constructor (including those reached through
  ``.constructor`` chains), removes clocks and randomness (``Date.now``, argument-less
  ``Date``, ``Math.random``, ``performance``) and weak references, and captures the JSON and
  reflection intrinsics the host wrapper uses, so bot.js cannot redefine them under it.
- Limits: memory and native stack per runtime; a CPU budget per call (``time_ms``) and per
  load (``load_time_ms``). The binding measures the budget with C ``clock()``, i.e. CPU time
  of the *whole process* since the call began: with other threads busy it fires earlier,
  never later than ``time_ms`` of this call's own CPU time.
- One runtime is never entered by two threads at once (one lock per sandbox); the binding
  re-reads the stack top on every entry, so successive calls may come from any thread whose
  native stack is comfortably larger than ``stack_bytes`` (glibc threads: 8 MiB).
- Self-healing: any :class:`SandboxError` raised by :meth:`Sandbox.call` discards the runtime;
  the next call rebuilds it from the source first. A rejected input does not discard it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import quickjs

from .errors import (
    BotCodeError,
    BotOutputError,
    SandboxError,
    SandboxLoadError,
    SandboxMemoryError,
    translating,
)

__all__ = ["Sandbox", "SandboxLimits"]

_KIB = 1024
_MIB = 1024 * _KIB
_MAX_STACK = 4 * _MIB  # half the 8 MiB native stack of a glibc thread

_PRELUDE = r"""
(function (g) {
  "use strict";
  var define = Object.defineProperty, protoOf = Object.getPrototypeOf, freeze = Object.freeze;
  var parse = JSON.parse, stringify = JSON.stringify, isArray = Array.isArray;
  var construct = Reflect.construct, apply = Reflect.apply;
  var slice = String.prototype.slice, indexOf = String.prototype.indexOf;
  var charCodeAt = String.prototype.charCodeAt;
  var toText = String, Fail = TypeError;
  var internalProto = InternalError.prototype, rangeProto = RangeError.prototype;

  function lock(target, key, value) {
    define(target, key, {value: value, writable: false, enumerable: false, configurable: false});
  }
  function refuse(what) {  // drop the frames of refuse and its stub: point at the bot's line
    var error = new Fail(what + " is disabled in the Botkiln sandbox"), stack = error.stack;
    var cut = apply(indexOf, stack, ["\n", apply(indexOf, stack, ["\n"]) + 1]) + 1;
    error.stack = apply(slice, stack, [cut]);
    return error;
  }
  function disabled(what) {
    return freeze(function () { throw refuse(what); });
  }
  function guard(proto, what) {
    var stub = function () { throw refuse(what); };
    lock(stub, "prototype", proto);
    lock(proto, "constructor", stub);
    return freeze(stub);
  }
  lock(g, "eval", disabled("eval"));
  lock(g, "Function", guard(Function.prototype, "the Function constructor"));
  guard(protoOf(async function () {}), "the AsyncFunction constructor");
  guard(protoOf(function* () {}), "the GeneratorFunction constructor");
  guard(protoOf(async function* () {}), "the AsyncGeneratorFunction constructor");

  var RealDate = Date;
  var SafeDate = function Date() {
    if (new.target === undefined || arguments.length === 0) {
      throw refuse("reading the clock (use context.now)");
    }
    return construct(RealDate, arguments, new.target);
  };
  lock(SafeDate, "prototype", RealDate.prototype);
  lock(RealDate.prototype, "constructor", SafeDate);
  lock(SafeDate, "now", disabled("Date.now"));
  lock(SafeDate, "UTC", RealDate.UTC);
  lock(SafeDate, "parse", RealDate.parse);
  lock(g, "Date", freeze(SafeDate));
  lock(Math, "random", disabled("Math.random"));
  ["performance", "WeakRef", "FinalizationRegistry", "queueMicrotask", "Atomics",
   "SharedArrayBuffer"].forEach(function (name) { delete g[name]; });

  // Freeze the intrinsics bot.js can reach, so no write through a computed key
  // ("__proto__", "constructor", a shared prototype) outlives the call that made it.
  [Object, Array, String, Number, Boolean, Function, JSON, Math, Map, Set, WeakMap, WeakSet,
   RegExp, Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError,
   InternalError, BigInt, Symbol, Promise, ArrayBuffer, DataView, Uint8Array,
   protoOf(Uint8Array), protoOf([][Symbol.iterator]()), protoOf(protoOf([][Symbol.iterator]())),
   protoOf(new Map()[Symbol.iterator]()), protoOf(new Set()[Symbol.iterator]()),
   protoOf(""[Symbol.iterator]()), protoOf(/x/[Symbol.matchAll]("x"))
  ].forEach(function (intrinsic) {
    freeze(intrinsic);
    if (intrinsic.prototype) freeze(intrinsic.prototype);
  });

  function engineFailure(e) {  // memory and stack exhaustion travel to the host untouched
    if (e === null) return true;  // QuickJS throws null when even its error cannot be allocated
    try {
      var proto = protoOf(e), message = e.message;
      return (proto === internalProto && (message === "out of memory" ||
                                          message === "stack overflow")) ||
        (proto === rangeProto && message === "Maximum call stack size exceeded");
    } catch (_) { return false; }
  }
  function field(read, limit) {
    try {
      var value = read();
      return value === undefined ? "" : apply(slice, toText(value), [0, limit]);
    } catch (_) { return ""; }
  }
  function describe(e) {
    var report = {__proto__: null, name: "", message: "", stack: ""};
    if (e !== null && (typeof e === "object" || typeof e === "function")) {
      report.name = field(function () { return e.name; }, 200);
      report.message = field(function () { return e.message; }, 2000);
      report.stack = field(function () { return e.stack; }, 8000);
    } else {
      report.message = field(function () { return e; }, 2000);
    }
    try { return stringify(report); } catch (_) { return "{}"; }
  }
  function note(tag, text) { return tag + stringify(text); }

  return function __bk_bind(maxOutput) {
    if (typeof step !== "function") return null;
    var entry = step;
    return function __bk_call(text) {
      if (typeof text !== "string") return note("M", "input does not fit in the sandbox");
      var input, output, json;
      try { input = parse(text); } catch (e) {
        if (engineFailure(e)) throw e;
        return note("I", "input is not valid JSON");
      }
      if (input === null || typeof input !== "object" || isArray(input)) {
        return note("I", "input must be a JSON object");
      }
      try { output = entry(input); } catch (e) {
        if (engineFailure(e)) throw e;
        return "E" + describe(e);
      }
      if (output === null || typeof output !== "object" || isArray(output)) {
        var kind = output === null ? "null" : isArray(output) ? "an array" : typeof output;
        return note("O", "step returned " + kind + ", expected a plain object");
      }
      try { json = stringify(output); } catch (e) {
        if (engineFailure(e)) throw e;
        return note("O", "step returned a value JSON cannot encode: " +
          field(function () { return e.message; }, 500));
      }
      if (typeof json !== "string" || apply(charCodeAt, json, [0]) !== 123) {
        return note("O", "step returned a value whose JSON is not an object");
      }
      if (json.length > maxOutput) return note("O", "output exceeds " + maxOutput + " bytes");
      return json;
    };
  };
})(globalThis)
"""


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Resource limits of one sandbox; all positive integers.

    ``time_ms`` is the CPU budget of one call and ``load_time_ms`` that of evaluating bot.js
    (both in process CPU time, see the module docstring); ``stack_bytes`` bounds native stack
    use (512 KiB allows roughly 300 nested JS calls; at most 4 MiB); ``max_output_bytes`` caps
    the UTF-8 size of the output JSON.
    """

    memory_bytes: int = 32 * _MIB
    time_ms: int = 200
    stack_bytes: int = 512 * _KIB
    max_output_bytes: int = 1 * _MIB
    load_time_ms: int = 1000

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be a positive int, got {value!r}")
        if self.stack_bytes > _MAX_STACK:  # JS runs on the caller's native stack
            raise ValueError(f"SandboxLimits.stack_bytes must be at most {_MAX_STACK}")


class _Runtime:
    """A loaded QuickJS context and the host wrapper around its ``step``; not thread-safe."""

    __slots__ = ("context", "entry")

    def __init__(self, source: str, limits: SandboxLimits, name: str) -> None:
        self.context: Any = quickjs.Context()
        self.context.set_memory_limit(limits.memory_bytes)
        self.context.set_max_stack_size(limits.stack_bytes)
        self.context.set_time_limit(limits.load_time_ms / 1000)
        try:
            with translating(name, limits, limits.load_time_ms):
                bind = self.context.eval(_PRELUDE)
                self.context.eval(source)
                self.entry: Any = bind(limits.max_output_bytes)
        except SandboxError as cause:
            raise SandboxLoadError(f"{name} failed to load: {cause}") from cause
        except ValueError as exc:  # the binding refuses source text with NUL characters
            raise SandboxLoadError(f"{name} failed to load: {exc}") from None
        if self.entry is None:
            raise SandboxLoadError(f"{name} declares no function step(input)")
        self.context.set_time_limit(limits.time_ms / 1000)


class Sandbox:
    """A warm, hardened QuickJS runtime running one bot.js; safe to share between threads."""

    def __init__(self, source: str, *, limits: SandboxLimits | None = None, name: str = "bot.js") -> None:
        """Load ``source`` into a fresh runtime.

        Raises:
            SandboxLoadError: bot.js does not evaluate within the limits or has no ``step``.
        """
        self.source = source
        self.limits = limits if limits is not None else SandboxLimits()
        self.name = name
        self.rebuilds = 0
        self._lock = threading.Lock()
        self._runtime: _Runtime | None = _Runtime(source, self.limits, name)

    def __repr__(self) -> str:
        return f"<Sandbox {self.name} rebuilds={self.rebuilds}>"

    def call(self, input_json: str) -> str:
        """Run ``step`` on the JSON object ``input_json``; return the output object's JSON text.

        Raises:
            ValueError: ``input_json`` is not the JSON text of an object (the runtime is kept).
            SandboxTimeout, SandboxMemoryError, SandboxStackOverflow, BotCodeError,
            BotOutputError: the call failed; the runtime is discarded and rebuilt next call.
            SandboxLoadError: the runtime had to be rebuilt and that failed.
        """
        if len(input_json) >= self.limits.memory_bytes:
            raise ValueError(f"input of {len(input_json)} characters exceeds the memory limit")
        if not input_json.isascii():
            input_json.encode()  # raises UnicodeEncodeError (a ValueError) on lone surrogates
        with self._lock:
            if self._runtime is None:
                self._runtime = _Runtime(self.source, self.limits, self.name)
                self.rebuilds += 1
            try:
                return self._call(self._runtime, input_json)
            except SandboxError:
                self._runtime = None
                raise

    def call_obj(self, input: Mapping[str, object]) -> dict[str, object]:
        """Encode ``input`` as JSON, :meth:`call` ``step`` and decode its output object."""
        text = self.call(json.dumps(input, separators=(",", ":"), allow_nan=False))
        try:
            output: dict[str, object] = json.loads(text)
        except RecursionError:
            raise BotOutputError(f"{self.name}: output nests too deeply to decode") from None
        return output

    def memory_used(self) -> int:
        """Bytes currently allocated by the runtime (0 while it awaits a rebuild)."""
        with self._lock:
            if self._runtime is None:
                return 0
            return int(self._runtime.context.memory()["malloc_size"])

    def _call(self, runtime: _Runtime, input_json: str) -> str:
        with translating(self.name, self.limits, self.limits.time_ms):
            result = runtime.entry(input_json)
        if not isinstance(result, str) or not result:
            raise BotOutputError(f"{self.name}: the host wrapper returned {type(result).__name__}")
        if result[0] == "{":
            return self._checked_size(result)
        tag, body = result[0], result[1:]
        if tag == "E":
            raise BotCodeError.from_report(body, self.name)
        if tag not in "IMO":
            raise BotOutputError(f"{self.name}: step produced an unrecognised result")
        message = f"{self.name}: {json.loads(body)}"
        if tag == "I":
            raise ValueError(message)
        if tag == "M":
            raise SandboxMemoryError(message, limit_bytes=self.limits.memory_bytes)
        raise BotOutputError(message)

    def _checked_size(self, output: str) -> str:
        cap = self.limits.max_output_bytes
        if 4 * len(output) > cap and len(output.encode()) > cap:
            raise BotOutputError(f"{self.name}: output exceeds {cap} bytes")
        return output
