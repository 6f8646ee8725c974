"""The AST policy: one hostile snippet per rule, bypass attempts, a clean bot, locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from botkiln.generator import ast_policy
from botkiln.generator.ast_policy import (
    AST_RULES_VERSION,
    DEFAULT_MAX_BYTES,
    ParseError,
    PolicyReport,
    Violation,
    check_source,
)
from botkiln.generator.ast_rules import RULES
from botkiln.interpreter.quickjs import Sandbox

DOCS = Path(__file__).resolve().parents[2] / "docs" / "ast-policy.md"

# A realistic hand-written bot: top-level helpers and tables, then the entry point.
CLEAN_BOT = """\
"use strict";
// botkiln test bot (AST rules v1)
const FLOWS = {
  start: [{ type: "reply", text: "welcome" }, { type: "ask", key: "name", prompt: "ask_name" }],
  help: [{ type: "reply", text: "help" }],
};
const STRINGS = {
  en: { welcome: "Hi {{state.name}}!", help: "Try /start", ask_name: "Your name?" },
};
const API_BASE = "https://api.example.com/v1/";
const MAX_TRANSITIONS = 200;

function clone(value) {
  return JSON.parse(JSON.stringify(value));
}

function lookup(table, path) {
  let node = table;
  for (const part of path.split(".")) {
    if (node === null || typeof node !== "object" || !Object.keys(node).includes(part)) {
      return undefined;
    }
    node = node[part];
  }
  return node;
}

function render(template, scope) {
  let out = "";
  let rest = template;
  while (rest.length > 0) {
    const open = rest.indexOf("{{");
    const close = open < 0 ? -1 : rest.indexOf("}}", open);
    if (close < 0) {
      out += rest;
      break;
    }
    const value = lookup(scope, rest.slice(open + 2, close).trim());
    out += rest.slice(0, open) + (value === undefined ? "" : String(value));
    rest = rest.slice(close + 2);
  }
  return out;
}

function initials(name = "") {
  return Array.from(name)
    .slice(0, 2)
    .map((ch) => String.fromCodePoint(ch.codePointAt(0)).toUpperCase())
    .join("");
}

const text = (locale, key, scope) =>
  render(STRINGS[locale]?.[key] ?? STRINGS.en[key] ?? key, scope);

function step(input) {
  const { event, context } = input;
  const state = { vars: {}, cursor: null, ...clone(input.state ?? {}) };
  const actions = [];
  const events = [];
  const locale = context?.locale ?? "en";
  const scope = { state: state.vars, context };
  const command = event?.command;
  const flow = FLOWS[command] ?? (state.cursor ? FLOWS[state.cursor.flow] : undefined);
  let transitions = 0;
  if (!flow) {
    events.push({ type: "unhandled", kind: event?.kind });
    return { actions, state, events };
  }
  outer: for (const [index, item] of flow.entries()) {
    transitions += 1;
    if (transitions > MAX_TRANSITIONS) {
      events.push({ type: "limit_reached" });
      break outer;
    }
    switch (item.type) {
      case "reply":
        actions.push({
          method: "sendMessage",
          params: { chat_id: event.chatId, text: text(locale, item.text, scope) },
        });
        break;
      case "ask":
        state.cursor = { flow: command, step: index, key: item.key };
        actions.push({
          method: "sendMessage",
          params: { chat_id: event.chatId, text: text(locale, item.prompt, scope) },
        });
        break outer;
      default:
        continue;
    }
    events.push({ type: "step_completed", index, who: initials(state.vars.name) });
  }
  for (const key in state.vars) {
    if (state.vars[key] === undefined) {
      delete state.vars[key];
    }
  }
  try {
    const size = JSON.stringify(state).length;
    if (size > 65536) {
      throw new RangeError(`state is ${size} bytes`);
    }
  } catch (error) {
    events.push({ type: "api_error", message: error instanceof Error ? error.message : "?" });
  }
  const keys = [...Object.keys(state.vars)].sort();
  const city = encodeURIComponent(state.vars.city ?? "");
  const pending =
    command === "weather" ? { url: `${API_BASE}weather?city=${city}`, timeoutMs: 5000 } : null;
  return { actions, state: { ...state, keys }, events, ...(pending ? { pending } : {}) };
}
"""


def found(source: str, **options: object) -> list[tuple[str, int, int]]:
    report = check_source(source, **options)  # type: ignore[arg-type]
    assert report.parse_error is None, report.parse_error
    return [(v.rule, v.line, v.column) for v in report.violations]


def in_step(*body: str) -> str:
    """``body`` lines inside the entry point; the first body line is line 2, column 3 on."""
    return "function step(input) {\n" + "\n".join(f"  {line}" for line in body) + "\n}\n"


# (rule, source, line, column): each source breaks exactly one rule, once.
ONE_PER_RULE = [
    ("missing-entry-point", "function main(input) {}", 1, 1),
    ("missing-entry-point", "const step = (input) => ({});", 1, 7),
    ("entry-point-signature", "function step(event, state) {}", 1, 1),
    ("entry-point-signature", "function step({ event }) {}", 1, 1),
    ("entry-point-signature", "function step(input) {}\nfunction step(input) {}", 2, 10),
    ("top-level-statement", "function step(input) {}\nstep({});", 2, 1),
    ("global-redefinition", "function step(input) {}\nconst JSON = {};", 2, 7),
    ("global-redefinition", "function step(input) {}\nfunction Date() {}", 2, 10),
    ("unsupported-syntax", in_step("const A = class {};"), 2, 13),
    ("unsupported-syntax", in_step("return String.raw`x`;"), 2, 10),
    ("unsupported-syntax", in_step("class A {}"), 2, 3),
    ("with-statement", in_step("with (input) {}"), 2, 3),
    ("debugger-statement", in_step("debugger;"), 2, 3),
    ("this-expression", in_step("return this;"), 2, 10),
    ("meta-property", in_step("return new.target;"), 2, 10),
    ("asynchrony", "async function helper() {}\nfunction step(input) {}", 1, 1),
    ("asynchrony", in_step("return Promise.resolve(1);"), 2, 10),
    ("asynchrony", in_step("setTimeout(step, 0);"), 2, 3),
    ("generator", "function* helper() {}\nfunction step(input) {}", 1, 1),
    ("dynamic-code", in_step('return eval("1");'), 2, 10),
    ("dynamic-code", in_step('return new Function("return 1");'), 2, 14),
    ("module-system", in_step('return require("fs");'), 2, 10),
    ("module-system", in_step('return import("fs");'), 2, 10),
    ("module-system", in_step("exports.step = step;"), 2, 3),
    ("global-object", in_step("return globalThis;"), 2, 10),
    ("global-object", in_step("return self;"), 2, 10),
    ("reflection", in_step("return Reflect.ownKeys(input);"), 2, 10),
    ("reflection", in_step("return new Proxy(input, {});"), 2, 14),
    ("reflection", in_step("return Symbol.iterator;"), 2, 10),
    ("reflection", in_step('return Object.defineProperty(input, "a", {});'), 2, 17),
    ("nondeterminism", in_step("return Date.now();"), 2, 10),
    ("nondeterminism", in_step("return Math.random();"), 2, 15),
    ("nondeterminism", in_step("return performance;"), 2, 10),
    ("nondeterminism", in_step("return RegExp.lastMatch;"), 2, 17),
    ("nondeterminism", in_step('return input.a.localeCompare("b");'), 2, 18),
    ("low-level-api", in_step("return typeof WebAssembly;"), 2, 17),
    ("host-api", in_step("console.log(input);"), 2, 3),
    ("host-api", in_step('return fetch("x");'), 2, 10),
    ("arguments-object", in_step("return arguments.length;"), 2, 10),
    ("unknown-global", in_step("return fooBar;"), 2, 10),
    ("builtin-as-value", in_step("const M = Math;"), 2, 13),
    ("builtin-as-value", in_step("return [input].filter(Boolean);"), 2, 25),
    ("builtin-as-value", in_step("return Object[input.key];"), 2, 10),
    ("constructor-access", in_step("return input.constructor;"), 2, 16),
    ("constructor-access", in_step("const { constructor: C } = input;"), 2, 11),
    ("prototype-access", in_step("return Array.prototype;"), 2, 16),
    ("prototype-access", in_step("return input.__proto__;"), 2, 16),
    ("prototype-access", in_step("return { __proto__: input };"), 2, 12),
    ("prototype-access", in_step("return Object.getPrototypeOf(input);"), 2, 17),
    ("prototype-access", in_step("return input.__lookupGetter__;"), 2, 16),
    ("caller-access", in_step("return step.caller;"), 2, 15),
    ("global-assignment", in_step("foo = 1;"), 2, 3),
    ("global-assignment", in_step("for (key in input) {}"), 2, 8),
    ("builtin-mutation", in_step("JSON.parse = null;"), 2, 3),
    ("builtin-mutation", in_step("undefined = 1;"), 2, 3),
    ("top-level-mutation", "let count = 0;\n" + in_step("count += 1;"), 3, 3),
    ("top-level-mutation", "const SEEN = {};\n" + in_step("SEEN[input.id] = true;"), 3, 3),
    ("top-level-mutation", "const CACHE = new Map();\n" + in_step("CACHE.set(input, 1);"), 3, 3),
    ("top-level-mutation", "const LOG = [];\n" + in_step("LOG.push(input);"), 3, 3),
    ("top-level-mutation", "const T = { a: [] };\n" + in_step("T.a.sort();"), 3, 3),
    ("top-level-mutation", "const T = {};\n" + in_step("Object.assign(T, input);"), 3, 17),
    ("builtin-mutation", in_step("Object.assign(Math.max, input);"), 2, 17),
    ("url-not-allowed", in_step('return "see https://evil.example/x";'), 2, 15),
]


@pytest.mark.parametrize(("rule", "source", "line", "column"), ONE_PER_RULE)
def test_each_rule_reports_its_id_at_the_offending_place(rule: str, source: str, line: int, column: int) -> None:
    assert found(source) == [(rule, line, column)]


def test_too_large_source_is_reported_without_parsing() -> None:
    source = in_step("return {};") + "// padding\n" * 10 + "this is not JavaScript ("
    report = check_source(source, max_bytes=100)
    assert report.parse_error is None
    assert [(v.rule, v.line, v.column) for v in report.violations] == [("too-large", 1, 1)]
    assert f"{len(source)} bytes, over the 100-byte cap" in report.violations[0].message


def test_size_cap_counts_utf8_bytes_and_defaults_to_256_kib() -> None:
    assert DEFAULT_MAX_BYTES == 256 * 1024
    source = in_step('return "' + "я" * 40 + '";')  # 80 bytes of text in 40 characters
    assert found(source, max_bytes=len(source) + 39) == [("too-large", 1, 1)]
    assert found(source, max_bytes=len(source.encode())) == []


def test_a_non_positive_cap_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        check_source("", max_bytes=0)


def test_every_rule_has_a_hostile_case_and_a_documentation_anchor() -> None:
    tested = {rule for rule, *_ in ONE_PER_RULE} | {"too-large"}
    assert tested == set(RULES)
    docs = DOCS.read_text(encoding="utf-8")
    for rule in RULES:
        assert f"### `{rule}`" in docs, rule
    assert f'`AST_RULES_VERSION = "{AST_RULES_VERSION}"`' in docs


def test_rules_version_is_a_string() -> None:
    assert AST_RULES_VERSION == "1"


# --- bypass attempts ---------------------------------------------------------------------------

BYPASSES = [
    ("this.constructor.constructor", "return this.constructor.constructor;", "constructor-access"),
    ("this itself", "return this.constructor.constructor;", "this-expression"),
    ("literal computed key", 'return []["constructor"];', "constructor-access"),
    ("arrow constructor", "return (() => {}).constructor;", "constructor-access"),
    ("concatenated key", 'return input["con" + "structor"];', "constructor-access"),
    ("template key", "return input[`constructor`];", "constructor-access"),
    ("template of constants", 'return input[`con${"struct"}or`];', "constructor-access"),
    ("destructured parameter", "const f = ({ constructor }) => constructor;", "constructor-access"),
    ("destructured catch", "try {} catch ({ constructor }) {}", "constructor-access"),
    ("getter this", "return { get x() { return this; } };", "this-expression"),
    ("optional eval call", 'return eval?.("1");', "dynamic-code"),
    ("builtins enumerated", "return Object.getOwnPropertyNames(Object);", "builtin-as-value"),
    ("locale-dependent number", "return (1234.5).toLocaleString();", "nondeterminism"),
    ("unicode escape in name", "return input.\\u0063onstructor;", "constructor-access"),
    ("destructured constructor", "const { constructor: F } = () => 0;", "constructor-access"),
    ("computed destructuring", 'const { ["constructor"]: F } = input;', "constructor-access"),
    ("global object indexed", 'return globalThis["eval"];', "global-object"),
    ("escaped eval", 'return \\u0065val("1");', "dynamic-code"),
    ("indirect eval", 'return (0, eval)("1");', "dynamic-code"),
    ("Function constructor", 'return new Function("return this")();', "dynamic-code"),
    ("Reflect.construct", "return Reflect.construct(Object, []);", "reflection"),
    ("new Proxy", "return new Proxy({}, {});", "reflection"),
    ("Object.defineProperty by key", 'return Object["defineProperty"];', "reflection"),
    ("setPrototypeOf", "Object.setPrototypeOf(input, null);", "prototype-access"),
    ("__proto__ write", "input.__proto__ = null;", "prototype-access"),
    ("__proto__ by key", 'input["__proto__"] = null;', "prototype-access"),
    ("prototype write", "Object.prototype.foo = 1;", "prototype-access"),
    ("prototype write is also a mutation", "Object.prototype.foo = 1;", "builtin-mutation"),
    ("prototype delete", "delete Array.prototype.map;", "builtin-mutation"),
    ("built-in method replaced", "Array.isArray = () => true;", "builtin-mutation"),
    ("built-in via for-of target", "for (JSON.parse of [0]) {}", "builtin-mutation"),
    ("built-in via destructuring", "[Math.max] = [0];", "builtin-mutation"),
    ("built-in via object pattern", "({ a: Object.keys } = input);", "builtin-mutation"),
    ("built-in handed to a helper", "return Object.assign(JSON, {});", "builtin-as-value"),
    ("aliased Math", "const M = Math; return M.random();", "builtin-as-value"),
    ("destructured random", "const { random } = Math;", "builtin-as-value"),
    ("computed random", 'return Math["random"]();', "nondeterminism"),
    ("dynamic import", 'return import("x");', "module-system"),
    ("require", 'return require("fs");', "module-system"),
    ("with", "with (input) { return 1; }", "with-statement"),
    ("async arrow", "const f = async () => 1;", "asynchrony"),
    ("generator expression", "const g = function* () {};", "generator"),
    ("Date.now", "return Date.now();", "nondeterminism"),
    ("new Date", "return new Date();", "nondeterminism"),
    ("Math.random", "return Math.random();", "nondeterminism"),
    ("setTimeout", "setTimeout(() => 0, 1);", "asynchrony"),
    ("queueMicrotask", "queueMicrotask(() => 0);", "asynchrony"),
    ("undeclared global", "foo = 1;", "global-assignment"),
    ("undeclared update", "counter++;", "global-assignment"),
    ("undeclared destructuring", "[a, b] = [1, 2];", "global-assignment"),
    ("arguments.callee", "return arguments.callee;", "caller-access"),
    ("SharedArrayBuffer", "return new SharedArrayBuffer(8);", "low-level-api"),
    ("Atomics", "return Atomics;", "low-level-api"),
    ("process", "return process.env;", "host-api"),
    ("new.target", "return new.target;", "meta-property"),
    ("URL split across literals", 'return "ht" + "tps://evil.example/x";', "url-not-allowed"),
    ("URL with a computed host", "return `https://${input.host}/x`;", "url-not-allowed"),
    ("URL prefix plus a variable", 'return "https://" + input.host;', "url-not-allowed"),
    ("protocol-relative URL", 'return "//evil.example/x";', "url-not-allowed"),
    ("userinfo trick", 'return "https://api.example.com@evil.example/";', "url-not-allowed"),
    ("suffix trick", 'return "https://api.example.com.evil.example/";', "url-not-allowed"),
    ("look-alike host", 'return "https://evilapi.example.com/";', "url-not-allowed"),
    ("other scheme", 'return "wss://evil.example/socket";', "url-not-allowed"),
    ("file URL", 'return "file:///etc/passwd";', "url-not-allowed"),
    ("malformed host", 'return "https://[evil.example/";', "url-not-allowed"),
    ("URL as an object key", 'return { "https://evil.example/": 1 };', "url-not-allowed"),
    ("template in a chain", 'return `https://evil` + ".example/";', "url-not-allowed"),
    ("for await", "const f = async (xs) => { for await (const x of xs) {} };", "asynchrony"),
]


@pytest.mark.parametrize(("body", "rule"), [case[1:] for case in BYPASSES], ids=[case[0] for case in BYPASSES])
def test_bypass_attempts_are_caught(body: str, rule: str) -> None:
    rules = {r for r, _, _ in found(in_step(body), allowed_domains=["api.example.com"])}
    assert rule in rules


def test_sloppy_mode_tricks_parse_and_are_caught() -> None:
    # Given a non-strict script (with is legal there), when checked, then each trick is named.
    source = "function step(input) {\n  with (input) { eval(code); }\n}"
    assert found(source) == [
        ("with-statement", 2, 3),
        ("dynamic-code", 2, 18),
        ("unknown-global", 2, 23),
    ]


# --- what is allowed ---------------------------------------------------------------------------


def test_a_realistic_bot_passes_with_its_api_domain_allowed() -> None:
    report = check_source(CLEAN_BOT, allowed_domains=["api.example.com"])
    assert report.ok, report.render()
    assert report.render() == "bot.js: ok (AST rules v1)"


def test_the_same_bot_without_its_domain_names_the_host() -> None:
    report = check_source(CLEAN_BOT)
    assert [(v.rule, v.line, v.column) for v in report.violations] == [("url-not-allowed", 10, 19)]
    assert report.violations[0].message == (
        "URL host `api.example.com` is not in the domain allow-list (security.allowedDomains of the spec)"
    )


def test_the_clean_bot_really_runs_in_the_sandbox() -> None:
    sandbox = Sandbox(CLEAN_BOT)
    output = sandbox.call_obj({"event": {"kind": "command", "command": "start", "chatId": 7}, "state": {}})
    assert output["actions"] == [
        {"method": "sendMessage", "params": {"chat_id": 7, "text": "Hi !"}},
        {"method": "sendMessage", "params": {"chat_id": 7, "text": "Your name?"}},
    ]


@pytest.mark.parametrize(
    ("pattern", "host", "allowed"),
    [
        ("api.example.com", "API.Example.com", True),
        ("api.example.com", "example.com", False),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "badexample.com", False),
    ],
)
def test_domain_patterns_exact_and_wildcard(pattern: str, host: str, allowed: bool) -> None:
    rules = found(in_step(f'return "https://{host}:8443/x?y#z";'), allowed_domains=[pattern])
    assert rules == ([] if allowed else [("url-not-allowed", 2, 11)])


@pytest.mark.parametrize(
    "body",
    [
        "const vars = {}; vars[input.name] = input.value; return vars[input.name];",
        "return [1, 2, 3][0] + input.items[input.items.length - 1];",
        'return input["display name"];',
        "let n = 0; n += 1; n++; return n;",
        "const o = { a: 1 }; o.a = 2; delete o.a; return o;",
        "for (const k in input) {} for (let i = 0; i < 3; i++) {} return 0;",
        'return typeof input === "object" && input instanceof Object;',
        "return Number.isInteger(input.n) ? Math.max(input.n, 0) : NaN;",
        'return new Map([["a", 1]]).get("a") ?? new Set().size;',
        "return { constructor: 1, prototype: 2 };",
        "try { throw new TypeError('x'); } catch ({ message }) { return message; }",
        "const f = function named() { return named; }; return f();",
        'return "https://api.example.com/x?next=https://api.example.com/y";',
        'return "no url here: a//b, 12:30, mailto:x@y.z";',
        "return /a+b/u.test(input.text) ? 1n : 0n;",
        "label: for (;;) { break label; } do {} while (false); return;",
        "if (input) { const step = 1; return step; } else return -1;",
        "const { a = Math.min(1, 2), ...rest } = input; return [a, rest];",
        "return (input.a, input.b), void 0;",
        "const [, second] = input.list; return second;",
        'return { "b c": 1, "https://api.example.com/": 2 };',
        'return "see //notes, a//b.c";',
        "const make = () => ({}); make().x = 1; return 0;",
        "const list = [3, 1]; list.sort(); list.push(2); return Object.keys(input).sort();",
        "const seen = new Set(); seen.add(input.id); return Object.freeze({ a: 1 });",
        'return input[`k${input.n}`] ?? input["a" + 1e21] ?? input[1 + 2];',
    ],
)
def test_ordinary_code_is_allowed(body: str) -> None:
    assert found(in_step(body), allowed_domains=["api.example.com"]) == []


def test_keys_computed_at_run_time_are_the_documented_residual_risk() -> None:
    # docs/ast-policy.md "Residual risks" 1: the sandbox's disabled constructors cover these.
    body = 'const k = ["con", "structor"].join(""); return (() => 0)[k];'
    assert found(in_step(body)) == []


def test_calls_on_unknown_names_report_the_name_once() -> None:
    assert found(in_step("LOG.push(input);", "Object.assign(T, input);")) == [
        ("unknown-global", 2, 3),
        ("unknown-global", 3, 17),
    ]


def test_a_function_may_shadow_a_forbidden_name_locally() -> None:
    source = in_step("const Date = input.date, process = (x) => x; return process(Date);")
    assert found(source) == []


def test_a_function_may_change_its_own_bindings_and_top_level_code_may_build_tables() -> None:
    source = "const DOUBLE = [1, 2].map((n) => n * 2);\n" + in_step(
        "let total = 0;", "for (const n of DOUBLE) { total += n; }", "return total;"
    )
    assert found(source) == []


# --- report shape and locations -----------------------------------------------------------------


def test_parse_error_has_location_context_and_the_parsers_message() -> None:
    report = check_source("function step(input) {\n  return 1 +;\n}\n")
    assert report.violations == ()
    assert report.parse_error == ParseError(2, 13, "Unexpected token ;", "  return 1 +;\n            ^")
    assert not report.ok
    assert report.render("bot.js") == (
        "bot.js:2:13: parse-error: Unexpected token ;\n"
        "      return 1 +;\n"
        "                ^\n"
        "bot.js: not parsable as a JavaScript script (AST rules v1)"
    )


def test_modules_syntax_does_not_parse_as_a_script() -> None:
    report = check_source('import fs from "fs";\nfunction step(input) {}')
    assert report.parse_error is not None
    assert (report.parse_error.line, report.parse_error.column) == (1, 1)


def test_nesting_beyond_the_parser_limit_is_a_parse_error() -> None:
    report = check_source(in_step("return " + "[" * 400 + "]" * 400 + ";"))
    assert report.parse_error is not None
    assert "nesting" in report.parse_error.message


def test_violation_renders_file_line_column_rule_message_and_caret() -> None:
    report = check_source(in_step("\tfoo = 1;"))
    (violation,) = report.violations
    assert violation == Violation(
        "global-assignment",
        "assignment to undeclared `foo` is forbidden: it would make a global that outlives "
        "the update; declare it with `const` or `let`",
        2,
        4,
        "  \tfoo = 1;\n  \t^",
    )
    assert report.render("x.js").splitlines() == [
        f"x.js:2:4: global-assignment: {violation.message}",
        "      \tfoo = 1;",
        "      \t^",
        "x.js: 1 violation (AST rules v1)",
    ]


def test_columns_count_code_points_and_lines_follow_javascript_line_breaks() -> None:
    source = 'const A = "😀😀";\r\nconst B = 1;\u2028function step(input) { return fooBar; }\n'
    assert found(source) == [("unknown-global", 3, 31)]
    source = 'const A = "😀"; function step(input) { return "https://evil.example"; }'
    assert found(source) == [("url-not-allowed", 1, 47)]


def test_long_lines_show_a_window_around_the_column() -> None:
    source = "const PAD = " + "1 + " * 100 + "fooBar; function step(input) {}"
    (violation,) = check_source(source).violations
    assert violation.column == 413
    shown, caret = violation.context.split("\n")
    assert shown == "1 + " * 15 + "fooBar; function step(input) {}"
    assert caret == " " * 60 + "^"
    assert shown[60:66] == "fooBar"


def test_violations_are_sorted_by_line_then_column() -> None:
    report = check_source(in_step("b = 1; a = 2;", "return c;"))
    assert [(v.line, v.column) for v in report.violations] == [(2, 3), (2, 10), (3, 10)]


def test_report_as_json() -> None:
    report = check_source(in_step("foo = 1;"))
    data = report.as_json()
    assert data["ok"] is False
    assert data["rulesVersion"] == "1"
    assert data["parseError"] is None
    assert data["violations"][0]["rule"] == "global-assignment"
    assert check_source("function (").as_json()["parseError"] == {
        "line": 1,
        "column": 10,
        "message": "Unexpected token (",
        "context": "function (\n         ^",
    }


def test_report_is_a_frozen_value() -> None:
    report = check_source(in_step("return 1;"))
    assert report == PolicyReport(())
    with pytest.raises(AttributeError):
        report.violations = ()  # type: ignore[misc]


def test_public_surface() -> None:
    assert ast_policy.__all__ == [
        "AST_RULES_VERSION",
        "DEFAULT_MAX_BYTES",
        "ParseError",
        "PolicyReport",
        "Violation",
        "check_source",
    ]
