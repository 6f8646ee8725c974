"""The QuickJS sandbox against the real binding: contract, hardening, limits, recovery, threads."""

from __future__ import annotations

import json
import pickle
import threading
import time
from typing import Any

import pytest

import botkiln.interpreter.quickjs as engine
from botkiln.interpreter.quickjs import (
    BotCodeError,
    BotOutputError,
    Sandbox,
    SandboxError,
    SandboxLimits,
    SandboxLoadError,
    SandboxMemoryError,
    SandboxStackOverflow,
    SandboxTimeout,
)

FAST = SandboxLimits(memory_bytes=8 << 20, time_ms=100, load_time_ms=200)

ECHO = """
function step(input) {
  return {actions: [{method: "sendMessage", text: "you said " + input.event.text}],
          state: input.state, events: []};
}
"""

# One bot with a misbehaviour per event kind; "ok" must work between any two of them.
MISBEHAVING = """
function deeper(n) { return deeper(n + 1) + 1; }
function step(input) {
  switch (input.kind) {
    case "loop": for (;;) {}
    case "regex": return {hit: /(a+)+$/.test("a".repeat(40) + "b")};
    case "bomb": var hoard = []; for (;;) hoard.push({n: hoard.length, pad: [1, 2, 3]});
    case "big-string": return {s: "x".repeat(1 << 26)};
    case "recursion": return {n: deeper(0)};
    case "throw":
      var e = new RangeError("no such step");
      throw e;
    default: return {ok: true, kind: input.kind};
  }
}
"""


def test_public_surface_is_pinned() -> None:
    assert sorted(engine.__all__) == [
        "BotCodeError",
        "BotOutputError",
        "PoolStats",
        "PooledEngine",
        "QuickJsEngine",
        "Sandbox",
        "SandboxError",
        "SandboxLimits",
        "SandboxLoadError",
        "SandboxMemoryError",
        "SandboxPool",
        "SandboxStackOverflow",
        "SandboxTimeout",
    ]


def test_every_error_is_a_sandbox_error() -> None:
    for cls in (
        SandboxLoadError,
        SandboxTimeout,
        SandboxMemoryError,
        SandboxStackOverflow,
        BotCodeError,
        BotOutputError,
    ):
        assert issubclass(cls, SandboxError)


# --- the JSON contract ---------------------------------------------------------------------


def test_step_gets_the_input_object_and_its_output_comes_back_as_json_text() -> None:
    sandbox = Sandbox(ECHO)
    output = sandbox.call('{"event":{"text":"hi"},"state":{"n":1}}')
    assert json.loads(output) == {
        "actions": [{"method": "sendMessage", "text": "you said hi"}],
        "state": {"n": 1},
        "events": [],
    }


def test_call_obj_round_trips_non_ascii_text() -> None:
    sandbox = Sandbox(ECHO)
    output = sandbox.call_obj({"event": {"text": "привет 👋 \u0000"}, "state": {}})
    assert output["actions"] == [{"method": "sendMessage", "text": "you said привет 👋 \u0000"}]


def test_step_may_be_a_lexical_binding() -> None:
    sandbox = Sandbox("const step = (input) => ({doubled: input.n * 2});")
    assert sandbox.call_obj({"n": 21}) == {"doubled": 42}


@pytest.mark.parametrize("bad_input", ["[1]", "42", "null", "{", "", '"text"'])
def test_input_that_is_not_a_json_object_is_rejected_and_the_runtime_kept(bad_input: str) -> None:
    sandbox = Sandbox(ECHO)
    with pytest.raises(ValueError, match="input"):
        sandbox.call(bad_input)
    assert sandbox.call_obj({"event": {"text": "x"}, "state": {}})["state"] == {}
    assert sandbox.rebuilds == 0


def test_input_nested_deeper_than_the_stack_allows_is_a_stack_overflow() -> None:
    sandbox = Sandbox("function step(input) { return {ok: true}; }")
    assert sandbox.call('{"a":' + "[" * 500 + "]" * 500 + "}") == '{"ok":true}'
    with pytest.raises(SandboxStackOverflow):
        sandbox.call('{"a":' + "[" * 20_000 + "]" * 20_000 + "}")
    assert sandbox.call("{}") == '{"ok":true}'


def test_output_nested_deeper_than_the_host_decoder_allows_is_a_bot_output_error() -> None:
    sandbox = Sandbox(
        "function step(input) { var top = {}, at = top;"
        " for (var i = 0; i < input.depth; i++) { at.x = {}; at = at.x; } return top; }"
    )
    assert sandbox.call_obj({"depth": 10})
    with pytest.raises(BotOutputError, match="too deeply"):
        sandbox.call_obj({"depth": 1500})


def test_input_with_a_lone_surrogate_is_rejected_before_entering_js() -> None:
    with pytest.raises(ValueError):
        Sandbox(ECHO).call('{"event":{"text":"\ud800"}}')


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        ("42", "number"),
        ("null", "null"),
        ("undefined", "undefined"),
        ("[1, 2]", "an array"),
        ('"text"', "string"),
        ("(function () {})", "function"),
        ("(function () { var o = {}; o.self = o; return o; })()", "cannot encode"),
        ("{big: 1n}", "cannot encode"),
        ("{toJSON: function () { return 5; }}", "not an object"),
    ],
)
def test_output_that_is_not_a_json_object_is_a_bot_output_error(returned: str, reason: str) -> None:
    sandbox = Sandbox(f"function step(input) {{ return {returned}; }}")
    with pytest.raises(BotOutputError, match=reason):
        sandbox.call("{}")


def test_output_larger_than_the_cap_is_a_bot_output_error() -> None:
    limits = SandboxLimits(max_output_bytes=1000)
    sandbox = Sandbox('function step(i) { return {s: "x".repeat(i.n)}; }', limits=limits)
    assert len(sandbox.call('{"n":992}')) == 1000
    with pytest.raises(BotOutputError, match="exceeds 1000 bytes"):
        sandbox.call('{"n":993}')


def test_the_output_cap_counts_utf8_bytes_not_characters() -> None:
    limits = SandboxLimits(max_output_bytes=1000)
    sandbox = Sandbox('function step(i) { return {s: "€".repeat(i.n)}; }', limits=limits)
    assert len(sandbox.call('{"n":330}').encode()) == 998
    with pytest.raises(BotOutputError, match="exceeds 1000 bytes"):
        sandbox.call('{"n":400}')  # 408 characters, 1208 bytes


# --- hardening -----------------------------------------------------------------------------

CODE_FROM_STRINGS = [
    "eval('1')",
    "(0, eval)('1')",
    "globalThis['ev' + 'al']('1')",
    "new Function('return 1')()",
    "Function('return 1')()",
    "(function () {}).constructor('return 1')()",
    "(() => 1).constructor('return 1')()",
    "(class {}).constructor('return 1')()",
    "step.constructor.constructor('return 1')()",
    "Object.getPrototypeOf(async function () {}).constructor('return 1')",
    "Object.getPrototypeOf(function* () {}).constructor('return 1')",
    "Object.getPrototypeOf(async function* () {}).constructor('return 1')",
    "Reflect.construct(Function, ['return 1'])",
    "Reflect.getPrototypeOf(Function).constructor('return 1')()",
]
CLOCKS_AND_DICE = [
    "Date.now()",
    "new Date()",
    "Date()",
    "new (Object.getPrototypeOf(new Date(0)).constructor)()",
    "Object.getPrototypeOf(new Date(0)).constructor.now()",
    "Math.random()",
]


@pytest.mark.parametrize("expression", CODE_FROM_STRINGS + CLOCKS_AND_DICE)
def test_code_from_strings_clocks_and_randomness_are_disabled(expression: str) -> None:
    sandbox = Sandbox(f"function step(input) {{\n  return {{v: {expression}}};\n}}")
    with pytest.raises(BotCodeError, match="disabled in the Botkiln sandbox") as caught:
        sandbox.call("{}")
    assert (caught.value.js_name, caught.value.line) == ("TypeError", 2)
    assert "__bk_" not in caught.value.stack


@pytest.mark.parametrize(
    "tampering",
    [
        "delete globalThis.eval; eval('1')",
        "Math.random = function () { return 4; }; Math.random()",
        "Object.defineProperty(Function.prototype, 'constructor', {value: 1})",
        "Object.defineProperty(globalThis, 'Date', {value: 1})",
        "Object.setPrototypeOf(Function, null); Function('return 1')",
    ],
)
def test_the_hardening_cannot_be_undone_from_bot_code(tampering: str) -> None:
    sandbox = Sandbox(f'"use strict"; function step(input) {{ {tampering}; return {{}}; }}')
    with pytest.raises(BotCodeError):
        sandbox.call("{}")


def test_no_host_capability_or_nondeterministic_global_is_reachable() -> None:
    names = [
        "std", "os", "print", "console", "require", "process", "module", "exports", "fetch",
        "XMLHttpRequest", "setTimeout", "setInterval", "queueMicrotask", "performance",
        "WeakRef", "FinalizationRegistry", "SharedArrayBuffer", "Atomics", "scriptArgs",
    ]  # fmt: skip
    sandbox = Sandbox(
        "function step(input) { var out = {};"
        " input.names.forEach(function (n) { out[n] = typeof globalThis[n]; }); return out; }"
    )
    assert set(sandbox.call_obj({"names": names}).values()) == {"undefined"}


def test_dates_from_explicit_timestamps_still_work() -> None:
    sandbox = Sandbox(
        "function step(input) { var d = new Date(input.now);"
        " return {iso: d.toISOString(), isDate: d instanceof Date, utc: Date.UTC(2020, 0, 1)}; }"
    )
    assert sandbox.call_obj({"now": 0}) == {
        "iso": "1970-01-01T00:00:00.000Z",
        "isDate": True,
        "utc": 1577836800000,
    }


def test_bot_code_cannot_redefine_the_intrinsics_the_host_wrapper_uses() -> None:
    sandbox = Sandbox(
        "JSON.parse = function () { return {n: -1}; };"
        " JSON.stringify = function () { return '{\"forged\":true}'; };"
        " Array.isArray = function () { return true; };"
        " String.prototype.charCodeAt = function () { return 123; };"
        " function step(input) { return input.n ? {n: input.n} : {toJSON: function () {"
        " return 'not an object'; }}; }"
    )
    assert sandbox.call('{"n":7}') == '{"n":7}'
    with pytest.raises(BotOutputError, match="not an object"):
        sandbox.call("{}")


# --- failures, each followed by a working call ---------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("loop", SandboxTimeout),
        ("regex", SandboxTimeout),
        ("bomb", SandboxMemoryError),
        ("big-string", SandboxMemoryError),
        ("recursion", SandboxStackOverflow),
        ("throw", BotCodeError),
    ],
)
def test_a_failed_call_raises_its_typed_error_and_the_next_call_works(kind: str, error: type[SandboxError]) -> None:
    sandbox = Sandbox(MISBEHAVING, limits=FAST)
    started = time.perf_counter()
    with pytest.raises(error):
        sandbox.call_obj({"kind": kind})
    assert time.perf_counter() - started < 1.0
    assert sandbox.call_obj({"kind": "ok"}) == {"ok": True, "kind": "ok"}
    assert sandbox.rebuilds == 1


def test_a_timeout_reports_its_budget_and_the_cpu_time_used() -> None:
    sandbox = Sandbox(MISBEHAVING, limits=FAST)
    with pytest.raises(SandboxTimeout) as caught:
        sandbox.call_obj({"kind": "loop"})
    assert caught.value.limit_ms == 100
    assert 50 <= caught.value.cpu_ms <= caught.value.elapsed_ms + 5


def test_catching_an_interrupt_inside_bot_code_is_impossible() -> None:
    sandbox = Sandbox(
        "function step(input) { try { for (;;) {} } catch (e) { return {caught: true}; } }",
        limits=FAST,
    )
    with pytest.raises(SandboxTimeout):
        sandbox.call("{}")


def test_bot_code_that_catches_its_own_stack_overflow_keeps_its_runtime() -> None:
    sandbox = Sandbox(
        "function f() { return f() + 1; } function step(input) { try { f(); } catch (e) { return {caught: e.name}; } }"
    )
    assert sandbox.call_obj({}) == {"caught": "RangeError"}
    assert sandbox.rebuilds == 0


def test_a_thrown_error_carries_its_js_name_message_stack_and_line() -> None:
    sandbox = Sandbox(MISBEHAVING, name="bot.js@abc")
    with pytest.raises(BotCodeError) as caught:
        sandbox.call_obj({"kind": "throw"})
    error = caught.value
    assert (error.js_name, error.js_message, error.line) == ("RangeError", "no such step", 11)
    assert str(error).startswith("bot.js@abc:11:")
    assert error.stack.splitlines()[0].strip().startswith("at step (bot.js@abc:11:")
    assert "__bk_" not in error.stack


def test_a_thrown_primitive_is_a_bot_code_error_with_its_text() -> None:
    with pytest.raises(BotCodeError) as caught:
        Sandbox("function step(input) { throw 42; }").call("{}")
    assert (caught.value.js_message, caught.value.line) == ("42", None)


def test_bot_code_cannot_pass_its_own_error_off_as_an_interrupt() -> None:
    sandbox = Sandbox('function step(input) { throw new InternalError("interrupted"); }')
    with pytest.raises(BotCodeError, match="interrupted"):
        sandbox.call("{}")


def test_an_error_with_hostile_accessors_is_still_reported() -> None:
    sandbox = Sandbox(
        "function step(input) { var e = {};"
        " Object.defineProperty(e, 'message', {get: function () { throw e; }});"
        " throw e; }"
    )
    with pytest.raises(BotCodeError) as caught:
        sandbox.call("{}")
    assert (caught.value.js_name, caught.value.js_message) == ("", "")


def test_errors_keep_their_attributes_through_pickling() -> None:
    error = SandboxTimeout("slow", limit_ms=5, elapsed_ms=6.0, cpu_ms=5.5)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.limit_ms, copy.cpu_ms) == ("slow", 5, 5.5)


# --- loading -------------------------------------------------------------------------------


def test_a_syntax_error_is_a_load_error_with_its_location() -> None:
    with pytest.raises(SandboxLoadError) as caught:
        Sandbox("function step(input) {\n  return {;\n}")
    cause = caught.value.__cause__
    assert isinstance(cause, BotCodeError)
    assert (cause.js_name, cause.line) == ("SyntaxError", 2)


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        ("var stepp = 1;", type(None)),
        ("var step = 1;", type(None)),
        ("for (;;) {}\nfunction step(i) { return {}; }", SandboxTimeout),
        ("throw new Error('at load');", BotCodeError),
        ("var a = []; for (;;) a.push([a.length]);", SandboxMemoryError),
        ("function step(i) { return {}; }\0", type(None)),
    ],
)
def test_a_bot_that_does_not_load_is_a_load_error(source: str, cause: type) -> None:
    with pytest.raises(SandboxLoadError) as caught:
        Sandbox(source, limits=FAST)
    assert isinstance(caught.value.__cause__, cause)


@pytest.mark.parametrize("field", ["memory_bytes", "time_ms", "stack_bytes", "max_output_bytes", "load_time_ms"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_limits_must_be_positive_ints(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        SandboxLimits(**{field: value})


def test_the_stack_limit_is_capped_below_a_native_thread_stack() -> None:
    assert SandboxLimits(stack_bytes=4 << 20).stack_bytes == 4 << 20
    with pytest.raises(ValueError, match="stack_bytes"):
        SandboxLimits(stack_bytes=8 << 20)


def test_memory_used_reports_the_runtime_allocation() -> None:
    sandbox = Sandbox(ECHO)
    assert 10_000 < sandbox.memory_used() < FAST.memory_bytes


# --- threads -------------------------------------------------------------------------------


def test_one_sandbox_is_never_entered_by_two_threads_at_once() -> None:
    # Given a bot that counts how many calls are inside step at the same moment
    sandbox = Sandbox(
        "var inside = 0;"
        " function step(input) { inside++; var seen = inside;"
        " for (var i = 0; i < 20000; i++) {} inside--; return {seen: seen, n: input.n}; }"
    )
    results: list[dict[str, object]] = []
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for n in range(offset, offset + 40):
                results.append(sandbox.call_obj({"n": n}))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # When eight threads call it concurrently
    threads = [threading.Thread(target=worker, args=(k * 1000,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every call saw itself alone, and every answer belongs to its own input
    assert errors == []
    assert {r["seen"] for r in results} == {1}
    assert sorted(int(str(r["n"])) for r in results) == [k * 1000 + i for k in range(8) for i in range(40)]


def test_failures_in_some_threads_do_not_disturb_calls_in_others() -> None:
    sandbox = Sandbox(MISBEHAVING, limits=FAST)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(kind: str) -> None:
        for _ in range(3):
            try:
                result = sandbox.call_obj({"kind": kind})
                outcome = "ok" if result == {"ok": True, "kind": kind} else "wrong"
            except SandboxError as exc:
                outcome = type(exc).__name__
            with lock:
                outcomes.append(f"{kind}:{outcome}")

    kinds = ["ok", "throw", "recursion", "ok", "bomb", "ok"]
    threads = [threading.Thread(target=worker, args=(kind,)) for kind in kinds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(set(outcomes)) == [
        "bomb:SandboxMemoryError",
        "ok:ok",
        "recursion:SandboxStackOverflow",
        "throw:BotCodeError",
    ]
    assert len(outcomes) == 18


def test_prototype_pollution_through_computed_keys_does_not_stick() -> None:
    source = """
    function step(input) {
      var key = ["__", "proto", "__"].join("");
      var target = {};
      var error = "";
      try { target[key].polluted = 1; } catch (e) { error = e.name; }
      try { Array[["proto", "type"].join("")].push = null; } catch (e) { error += "," + e.name; }
      return {clean: ({}).polluted === undefined && typeof [].push === "function", error: error};
    }
    """
    sandbox = Sandbox(source)
    for _ in range(2):  # the second call sees whatever the first one left behind
        assert sandbox.call_obj({})["clean"] is True
