"""The deterministic compiler: a valid BotSpec -> one self-contained ``bot.js``.

Layout of the output (docs/compiler.md): the header stamp, ``"use strict"``, the SDK
(``prelude/bot_sdk.js``, verbatim), then the bot: its string table, a reference per flow,
one function per step (with a comment naming its JSON pointer), the ask / apiCall
descriptors the router and the resume path look up, the routing tables, ``BOT`` and the
entry point ``function step(input)``.

Invariants:

- Deterministic: the text depends only on the spec's canonical JSON and
  ``COMPILER_VERSION`` (keys are emitted in sorted order, never in document order).
- Total over valid specs: everything the spec can name is resolved here (targets, string
  keys, default ``next`` and ``onFail``), so bot.js does no lookups by spec name except
  for state it reads back (cursor, pending apiCall), which the SDK checks.
- Nothing of the Python interpreter runs in bot.js: the only shared thing is the JSON
  contract. Keyword words are folded here with the compiler's own text helpers, and
  regexes are parsed at load time by the SDK's own matcher.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from importlib import resources
from typing import Any, Final

from botkiln.generator.emit import Writer, js_number, js_object, js_record, js_string, js_value, sort_keys
from botkiln.interpreter.canonical import spec_hash

COMPILER_VERSION: Final = "1.0.0"

__all__ = ["COMPILER_VERSION", "compile_spec", "header", "sdk_hash", "sdk_source"]

_MAX_STATE_BYTES = 65536
_DEFAULT_RESPONSE_KB = 64
_FOLD_LIMIT = 0x52F
_SEPARATORS = frozenset("\t\n\r \x0b\x0c\xa0!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~«»—–…“”„‘’¿¡·")
_PATH = re.compile(r"(state|context)((?:\.(?:[A-Za-z_][A-Za-z0-9_]*|0|[1-9][0-9]*))+)")
_PLACEHOLDER = re.compile(r"\{\{ *" + _PATH.pattern + r" *\}\}")


def sdk_source() -> str:
    """The SDK text every bot.js embeds."""
    return resources.files("botkiln.generator").joinpath("prelude/bot_sdk.js").read_text("utf-8")


def sdk_hash() -> str:
    """``sha256:`` and the first 16 hex digits of the SDK's bytes (what feeds ``sdkVersion``)."""
    data = resources.files("botkiln.generator").joinpath("prelude/bot_sdk.js").read_bytes()
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def _rules_version() -> str:
    try:
        from botkiln.generator.ast_policy import AST_RULES_VERSION
    except ImportError:  # pragma: no cover - the policy ships with the generator
        return "unknown"
    return str(AST_RULES_VERSION)


def header(spec: dict[str, Any]) -> str:
    """The first line of bot.js: generator kind and version, SDK hash, AST rules, spec hash."""
    stamp = f"botkiln compiler {COMPILER_VERSION} · sdk {sdk_hash()} · ast-rules {_rules_version()}"
    return f"// {stamp} · spec sha256:{spec_hash(spec)}"


# --- text and templates (compile-time halves of docs/botspec.md §2.3, §10.2) ----------------


def _fold(text: str) -> str:
    out = []
    for c in text:
        lower = c.lower() if ord(c) <= _FOLD_LIMIT else c
        out.append(lower if len(lower) == 1 else c)
    return "".join(out)


def keyword_words(keyword: str) -> list[str]:
    """``words(keyword)`` (§2.3): maximal runs of non-separators of the folded text."""
    out: list[str] = []
    current = ""
    for c in _fold(keyword):
        if c in _SEPARATORS:
            if current:
                out.append(current)
            current = ""
        else:
            current += c
    if current:
        out.append(current)
    return out


def template_parts(template: str) -> list[str | list[str]]:
    """Literal text and placeholder paths (``[root, head, *segments]``), in order."""
    parts: list[str | list[str]] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > pos:
            parts.append(template[pos : match.start()])
        parts.append([match.group(1), *match.group(2)[1:].split(".")])
        pos = match.end()
    if pos < len(template):
        parts.append(template[pos:])
    return parts


def _path_js(path: list[str]) -> str:
    return "[" + ", ".join(js_string(p) for p in path) + "]"


def template_js(template: str) -> str:
    """A compiled template: a string literal, or an array of texts and paths for ``render``."""
    parts = template_parts(template)
    if all(isinstance(p, str) for p in parts):
        return js_string(template)
    return "[" + ", ".join(js_string(p) if isinstance(p, str) else _path_js(p) for p in parts) + "]"


def typed_js(template: str) -> str:
    """A template that keeps the JSON type of a lone placeholder (§10.2)."""
    parts = template_parts(template)
    if len(parts) == 1 and isinstance(parts[0], list):
        return f"lookup(run, {_path_js(parts[0])})"
    if all(isinstance(p, str) for p in parts):
        return js_string(template)
    return f"render(run, {template_js(template)})"


def literal_js(value: Any) -> str:
    """A JSON literal whose strings are typed templates (apiCall bodies, §8.6)."""
    if isinstance(value, str):
        return typed_js(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal_js(v) for v in value) + "]"
    if isinstance(value, dict):
        return js_object({k: literal_js(v) for k, v in value.items()})
    return js_value(value)


def pointer_tokens(pointer: str) -> list[str]:
    """The unescaped reference tokens of an RFC 6901 pointer."""
    if pointer == "":
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def condition_path(text: str) -> list[str] | None:
    """A condition's ``left`` as a path, or None when it is not one (it resolves to null)."""
    match = _PATH.fullmatch(text)
    return [match.group(1), *match.group(2)[1:].split(".")] if match else None


_OPERATORS: Final = {
    "eq": "opEq",
    "ne": "opNe",
    "lt": "opLt",
    "le": "opLe",
    "gt": "opGt",
    "ge": "opGe",
    "in": "opIn",
    "contains": "opContains",
}


def condition_js(condition: Any) -> str:
    """A condition (§9) as a JavaScript boolean expression over ``run``."""
    if condition is True or condition is False:
        return js_value(condition)
    if "all" in condition:
        items = [condition_js(c) for c in condition["all"]]
        return "(" + " && ".join(items) + ")" if items else "true"
    if "any" in condition:
        items = [condition_js(c) for c in condition["any"]]
        return "(" + " || ".join(items) + ")" if items else "false"
    if "not" in condition:
        return "!" + condition_js(condition["not"])
    path = condition_path(condition["left"])
    left = f"lookup(run, {_path_js(path)})" if path is not None else "null"
    if condition["op"] == "exists":
        return f"opExists({left})"
    return f"{_OPERATORS[condition['op']]}({left}, {js_value(condition.get('right'))})"


# --- the compilation --------------------------------------------------------------------------


class _Compiler:
    """One compilation: indexes of the spec and the writer of the output."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        meta = spec["meta"]
        self.locales: list[str] = list(meta["locales"])
        self.default_locale: str = meta["defaultLocale"]
        self.strings: dict[str, dict[str, str]] = spec["localization"]["strings"]
        self.string_index = {key: i for i, key in enumerate(sort_keys(self.strings))}
        self.flow_index = {flow["id"]: i for i, flow in enumerate(spec["flows"])}
        self.regexes: dict[str, str] = {}
        self.descriptors: list[str] = []
        self.asks: list[tuple[str, str]] = []
        self.apis: list[tuple[str, str]] = []
        self.out = Writer()

    # -- names ------------------------------------------------------------------------------
    def step_name(self, flow_index: int, step_index: int) -> str:
        step_id = self.spec["flows"][flow_index]["steps"][step_index]["id"]
        return f"s{flow_index}_{step_index}_{step_id}"

    def flow_name(self, flow_id: str) -> str:
        return f"FLOW_{flow_id}"

    def string(self, key: str | None) -> str:
        if key is None or key not in self.string_index:
            return "-1"
        return f"{self.string_index[key]} /* {key} */"

    def regex(self, pattern: str) -> str:
        if pattern not in self.regexes:
            self.regexes[pattern] = f"RX_{len(self.regexes)}"
        return self.regexes[pattern]

    def target(self, flow_index: int, target: str) -> str:
        """A target (§7.2) resolved to a step function, a flow reference or END."""
        if target == "#end":
            return "END"
        if target.startswith("@"):
            return self.flow_name(target[1:])
        steps = self.spec["flows"][flow_index]["steps"]
        for i, step in enumerate(steps):
            if step["id"] == target:
                return self.step_name(flow_index, i)
        return "END"  # unreachable for a valid spec (unresolved-step)

    def default_next(self, flow_index: int, step_index: int) -> str:
        steps = self.spec["flows"][flow_index]["steps"]
        return self.step_name(flow_index, step_index + 1) if step_index + 1 < len(steps) else "END"

    def next_of(self, flow_index: int, step_index: int) -> str:
        step = self.spec["flows"][flow_index]["steps"][step_index]
        if "next" in step:
            return self.target(flow_index, step["next"])
        return self.default_next(flow_index, step_index)

    # -- shared pieces ------------------------------------------------------------------------
    def buttons(self, buttons: dict[str, Any] | None) -> str:
        """A step's buttons (§11.2) with string keys resolved to table indexes."""
        if buttons is None:
            return "null"
        if "keyboard" in buttons:
            rows = ", ".join("[" + ", ".join(self.string(k) for k in row) + "]" for row in buttons["keyboard"])
            one_time = js_value(bool(buttons.get("oneTime", True)))
            return js_record([("keyboard", f"[{rows}]"), ("oneTime", one_time)])
        if "inline" in buttons:
            rows = ", ".join("[" + ", ".join(self.inline_button(b) for b in row) + "]" for row in buttons["inline"])
            return js_record([("inline", f"[{rows}]")])
        return js_record([("remove", "true")])

    def inline_button(self, button: dict[str, Any]) -> str:
        if "data" in button:
            return js_record([("text", self.string(button["text"])), ("data", js_string(button["data"]))])
        return js_record([("text", self.string(button["text"])), ("url", js_string(button["url"]))])

    def media(self, media: dict[str, Any] | None) -> str:
        if media is None:
            return "null"
        return js_record(
            [
                ("kind", js_string(media["kind"])),
                ("source", js_string(media["source"])),
                ("caption", self.string(media.get("caption"))),
            ]
        )

    # -- the program --------------------------------------------------------------------------
    def compile(self) -> str:
        out = self.out
        out.line(header(self.spec))
        out.line('"use strict";')
        out.line()
        out.lines.extend(sdk_source().rstrip("\n").split("\n"))
        out.line()
        out.line(f"// ---- bot {self.spec['meta']['botId']}: compiled by botkiln compiler {COMPILER_VERSION} ----")
        self.string_table()
        out.line()
        for flow in self.spec["flows"]:
            ref = js_record([("id", js_string(flow["id"])), ("first", self.step_name(self.flow_index[flow["id"]], 0))])
            out.line(f"const {self.flow_name(flow['id'])} = {ref};")
        for fi, flow in enumerate(self.spec["flows"]):
            out.line()
            out.line(f"// ---- flow {flow['id']} (/flows/{fi}) ----")
            for si, step in enumerate(flow["steps"]):
                out.line()
                out.line(f"// /flows/{fi}/steps/{si} ({step['type']})")
                out.open(f"function {self.step_name(fi, si)}(run) {{")
                STEP_EMITTERS[step["type"]](self, fi, si, step)
                out.close()
        out.line()
        for pattern, name in self.regexes.items():
            out.line(f"const {name} = rxCompile({js_string(pattern)});")
        out.lines.extend(self.descriptors)
        out.line()
        self.bot()
        out.line()
        out.open("function step(input) {")
        out.line("return runBot(BOT, input);")
        out.close()
        return out.text()

    def string_table(self) -> None:
        """STRINGS[key index][locale index]: templates, missing locales filled with the default."""
        out = self.out
        out.line(f"// string table: [{', '.join(self.locales)}] per key; a missing locale uses {self.default_locale}")
        out.open("const STRINGS = [")
        for key in sort_keys(self.strings):
            variants = self.strings[key]
            fallback = variants.get(self.default_locale, "")
            texts = [template_js(variants.get(locale, fallback)) for locale in self.locales]
            out.line(f"/* {self.string_index[key]} {key} */ [{', '.join(texts)}],")
        out.close("];")

    def bot(self) -> None:
        spec, out = self.spec, self.out
        meta, state = spec["meta"], spec.get("state", {})
        retention = meta.get("retention", {})
        declared: dict[str, Any] = state.get("vars", {})
        telemetry = spec.get("telemetry", {})
        ttls = []
        for name in sort_keys(declared):
            ttl = declared[name].get("ttlSec")
            if ttl is None and declared[name].get("pii") and "piiTtlSec" in retention:
                ttl = retention["piiTtlSec"]
            if ttl is not None:
                ttls.append(f"[{js_string(name)}, {js_number(ttl * 1000)}]")
        state_ttl = retention.get("stateTtlSec")
        out.open("const BOT = {")
        out.line(f"locales: [{', '.join(js_string(loc) for loc in self.locales)}],")
        out.line(f"defaultLocale: {self.locales.index(self.default_locale)},")
        out.line("strings: STRINGS,")
        out.open("vars: new Map([")
        for name in sort_keys(declared):
            default = js_value(declared[name].get("default"))
            out.line(f"[{js_string(name)}, {js_record([('default', default)])}],")
        out.close("]),")
        out.line(f"ttls: new Map([{', '.join(ttls)}]),")
        out.line(f"stateTtlMs: {js_number(state_ttl * 1000) if state_ttl is not None else 'null'},")
        out.line(f"maxBytes: {js_number(state.get('maxBytes', _MAX_STATE_BYTES))},")
        out.line(f"maxResponseBytes: {self.max_response_bytes()},")
        exclude = ", ".join(js_string(t) for t in sorted(telemetry.get("exclude", [])))
        enabled = js_value(bool(telemetry.get("enabled", True)))
        out.line(f"telemetry: {js_record([('enabled', enabled), ('exclude', f'new Set([{exclude}])')])},")
        self.routing_tables()
        fallback = spec.get("fallback")
        out.line(f"fallback: {self.flow_name(fallback['flow']) if fallback else 'null'},")
        out.line(f"asks: new Map([{', '.join(f'[{js_string(k)}, {v}]' for k, v in self.asks)}]),")
        out.line(f"apis: new Map([{', '.join(f'[{js_string(k)}, {v}]' for k, v in self.apis)}]),")
        out.close("};")

    def max_response_bytes(self) -> str:
        return js_number(self.spec.get("security", {}).get("maxApiResponseKB", _DEFAULT_RESPONSE_KB) * 1024)

    def routing_tables(self) -> None:
        """Commands, intents (priority order, keywords folded per locale) and callbacks (§6)."""
        spec, out = self.spec, self.out
        out.open("commands: new Map([")
        for command in spec.get("commands", []):
            args = js_string(command["argsVar"]) if "argsVar" in command else "null"
            entry = js_record([("flow", self.flow_name(command["flow"])), ("argsVar", args)])
            out.line(f"[{js_string(command['command'])}, {entry}],")
        out.close("]),")
        intents = sorted(enumerate(spec.get("intents", [])), key=lambda t: (-t[1].get("priority", 0), t[0]))
        out.open("intents: [")
        for _, intent in intents:
            keywords = intent["keywords"]
            per_locale = []
            for locale in self.locales:
                listed = keywords.get(locale, keywords.get(self.default_locale, []))
                folded = [w for w in (keyword_words(k) for k in listed) if w]
                per_locale.append("[" + ", ".join(js_value(w) for w in folded) + "]")
            fields = [
                ("id", js_string(intent["id"])),
                ("flow", self.flow_name(intent["flow"])),
                ("cooldownMs", js_number(intent.get("cooldownSec", 0) * 1000)),
                ("keywords", "[" + ", ".join(per_locale) + "]"),
            ]
            out.line(js_record(fields) + ",")
        out.close("],")
        out.open("callbacks: [")
        for route in spec.get("callbacks", []):
            fields = [
                ("data", js_string(route["data"]) if "data" in route else "null"),
                ("prefix", js_string(route["prefix"]) if "prefix" in route else "null"),
                ("flow", self.flow_name(route["flow"])),
                ("var", js_string(route["var"]) if "var" in route else "null"),
                ("toast", self.string(route.get("toast"))),
            ]
            out.line(js_record(fields) + ",")
        out.close("],")


# --- steps (§8): one emitter per type, each writing the body of the step's function -----------


def _ids(c: _Compiler, fi: int, step: dict[str, Any]) -> str:
    return f"{js_string(c.spec['flows'][fi]['id'])}, {js_string(step['id'])}"


def _reply(c: _Compiler, fi: int, si: int, step: dict[str, Any]) -> None:
    args = f"{c.string(step.get('text'))}, {c.media(step.get('media'))}, {c.buttons(step.get('buttons'))}"
    c.out.line(f"reply(run, {_ids(c, fi, step)}, {args});")
    c.out.line(f"return {c.next_of(fi, si)};")


def _ask(c: _Compiler, fi: int, si: int, step: dict[str, Any]) -> None:
    name = f"ASK_{fi}_{si}"
    flow_id = c.spec["flows"][fi]["id"]
    fields = [
        ("flow", js_string(flow_id)),
        ("step", js_string(step["id"])),
        ("var", js_string(step["var"])),
        ("prompt", c.string(step["prompt"])),
        ("buttons", c.buttons(step.get("buttons"))),
        ("next", c.next_of(fi, si)),
    ]
    c.descriptors.append(f"const {name} = {js_record(fields)};")
    c.asks.append((f"{flow_id}/{step['id']}", name))
    c.out.line(f"return askStep(run, {name});")


def _nearest_ask(c: _Compiler, fi: int, si: int) -> str:
    steps = c.spec["flows"][fi]["steps"]
    for i in range(si - 1, -1, -1):
        if steps[i]["type"] == "ask":
            return c.step_name(fi, i)
    return "END"  # unreachable for a valid spec (validate-without-retry)


def _validate(c: _Compiler, fi: int, si: int, step: dict[str, Any]) -> None:
    out, ids, name = c.out, _ids(c, fi, step), js_string(step["var"])
    out.line(f"const value = varValue(run, {name});")
    schema: dict[str, Any] = step.get("schema", {})
    converts = False
    if "regex" in step:
        ignore_case = js_value(bool(step.get("ignoreCase", False)))
        test = f'typeof value === "string" && rxMatch({c.regex(step["regex"])}, value, {ignore_case})'
    elif schema["type"] == "string":
        rx = c.regex(schema["pattern"]) if "pattern" in schema else "null"
        test = (
            f"stringValid(value, {js_number(schema.get('minLength', 0))}, {_opt(schema.get('maxLength'))}, "
            f"{rx}, {_opt(schema.get('enum'))})"
        )
    else:
        converts = True
        out.line("const n = numberValue(value);")
        integer = js_value(schema["type"] == "integer")
        bounds = f"{_opt(schema.get('minimum'))}, {_opt(schema.get('maximum'))}"
        test = f"numberValid(n, {integer}, {bounds}, {_opt(schema.get('enum'))})"
    out.open(f"if ({test}) {{")
    if converts:
        out.line(f'if (typeof value === "string") write(run, {js_string(c.spec["flows"][fi]["id"])}, {name}, n);')
    out.line(f'completed(run, {ids}, "validate");')
    out.line(f"return {c.next_of(fi, si)};")
    out.close()
    out.line(f"validationFailed(run, {ids}, {name}, {c.string(step.get('error'))});")
    fail = c.target(fi, step["onFail"]) if "onFail" in step else _nearest_ask(c, fi, si)
    out.line(f"return {fail};")


def _opt(value: Any) -> str:
    return "null" if value is None else js_value(value)


def _save(c: _Compiler, fi: int, si: int, step: dict[str, Any]) -> None:
    out, flow = c.out, js_string(c.spec["flows"][fi]["id"])
    names = sort_keys(step["set"])
    for i, name in enumerate(names):
        expr = step["set"][name]
        if isinstance(expr, dict) and "unset" in expr:
            continue
        if isinstance(expr, dict) and "increment" in expr:
            value = f"increment(run, {js_string(name)}, {js_value(expr['increment'])})"
        elif isinstance(expr, dict):
            value = js_value(expr["value"])
        else:
            value = typed_js(expr) if isinstance(expr, str) else js_value(expr)
        out.line(f"const v{i} = {value}; // {name}")
    for i, name in enumerate(names):
        expr = step["set"][name]
        if isinstance(expr, dict) and "unset" in expr:
            out.line(f"unset(run, {js_string(name)});")
        else:
            out.line(f"write(run, {flow}, {js_string(name)}, v{i});")
    out.line(f'completed(run, {_ids(c, fi, step)}, "save");')
    out.line(f"return {c.next_of(fi, si)};")


def _goto(c: _Compiler, fi: int, si: int, step: dict[str, Any]) -> None:
    then = c.target(fi, step["next"])
    otherwise = c.target(fi, step["elseNext"]) if "elseNext" in step else c.default_next(fi, si)
    condition = step.get("when", True)
    target = then if condition is True else f"{condition_js(condition)} ? {then} : {otherwise}"
    c.out.line(f"const target = {target};")
    c.out.line(f'completed(run, {_ids(c, fi, step)}, "goto");')
    c.out.line("return target;")


def _api_call(c: _Compiler, fi: int, si: int, step: dict[str, Any]) -> None:
    out, flow_id = c.out, c.spec["flows"][fi]["id"]
    name = f"API_{fi}_{si}"
    headers = js_object({k: js_string(v) for k, v in step.get("headers", {}).items()})
    request = [
        ("method", js_string(step["method"])),
        ("url", f"renderUrl(run, {template_js(step['url'])})"),
        ("headers", headers),
        ("body", literal_js(step["body"]) if "body" in step else "null"),
        ("timeoutMs", js_number(step.get("timeoutMs", 3000))),
        ("retries", js_number(step.get("retries", 1))),
        ("backoffMs", js_number(step.get("backoffMs", 200))),
        ("maxResponseBytes", c.max_response_bytes()),
    ]
    out.line(f"apiStart(run, {js_string(flow_id)});")
    out.open(f"return apiCall(run, {_ids(c, fi, step)}, {{")
    for key, value in request:
        out.line(f"{key}: {value},")
    out.close("});")
    mapping = step.get("map", {})
    entries = ", ".join(f"[{js_string(var)}, {js_value(pointer_tokens(mapping[var]))}]" for var in sort_keys(mapping))
    fields = [
        ("flow", js_string(flow_id)),
        ("step", js_string(step["id"])),
        ("map", f"[{entries}]"),
        ("next", c.next_of(fi, si)),
        ("onError", c.target(fi, step["onError"]) if "onError" in step else "null"),
    ]
    c.descriptors.append(f"const {name} = {js_record(fields)};")
    c.apis.append((f"{flow_id}/{step['id']}", name))


STEP_EMITTERS: dict[str, Callable[[_Compiler, int, int, dict[str, Any]], None]] = {
    "reply": _reply,
    "ask": _ask,
    "validate": _validate,
    "save": _save,
    "goto": _goto,
    "apiCall": _api_call,
}
"""Step type -> the emitter of its function body (§8)."""


def compile_spec(spec: dict[str, Any]) -> str:
    """The bot.js text for a valid ``spec`` (deterministic; behaviour on invalid specs is undefined)."""
    return _Compiler(spec).compile()
