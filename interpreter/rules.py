"""Semantic rules of BotSpec v1: what the JSON Schema cannot express.

``RULES`` is a table of functions ``(spec, facts) -> iterator of SpecError``; each
rule owns a few codes (docs/errors.md). Rules see a spec that may have failed the
schema pass; in that case (``tolerant``) a rule that trips over a malformed part
is skipped, since the schema error already describes it.

One module on purpose (~600 lines): every rule uses the same defensive walkers
(``_steps``, ``_indexed``, ``_err``), and the ``RULES`` table at the bottom is the
one place that lists them all, in the order their errors are produced.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botkiln.interpreter.domains import domain_allowed
from botkiln.interpreter.errors import SpecError
from botkiln.interpreter.pointers import join
from botkiln.interpreter.regex_dialect import check_pattern
from botkiln.interpreter.spec import DEFAULT_API_RESPONSE_KB, MAX_STATE_BYTES
from botkiln.interpreter.templates import (
    CONTEXT_FIELDS,
    SECRET,
    Path,
    parse_path,
    placeholders,
    stray_braces,
)
from botkiln.interpreter.text import fold, words

MAX_FLOWS = 100
MAX_STEPS = 50
MAX_TIMEOUT_MS = 5000
MAX_RESPONSE_KB = 64
MAX_CALLBACK_BYTES = 64

Pointer = tuple[str | int, ...]


@dataclass(frozen=True)
class Facts:
    """What several rules need, computed once."""

    locales: list[str]
    default_locale: str
    flows: dict[str, dict[str, Any]]
    vars: dict[str, Any]
    strings: dict[str, Any]
    domains: list[str]
    insecure_ok: bool


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _facts(spec: dict[str, Any]) -> Facts:
    meta = _obj(spec.get("meta"))
    flows = {f["id"]: f for f in _dicts(spec.get("flows")) if isinstance(f.get("id"), str)}
    security = _obj(spec.get("security"))
    locales = meta.get("locales")
    default = meta.get("defaultLocale")
    return Facts(
        locales=[x for x in locales if isinstance(x, str)] if isinstance(locales, list) else [],
        default_locale=default if isinstance(default, str) else "",
        flows=flows,
        vars=_obj(_obj(spec.get("state")).get("vars")),
        strings=_obj(_obj(spec.get("localization")).get("strings")),
        domains=[d for d in security.get("allowedDomains", []) if isinstance(d, str)],
        insecure_ok=security.get("allowInsecureHttp") is True,
    )


def _dicts(items: Any) -> list[dict[str, Any]]:
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _indexed(items: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict):
                yield i, item


def _steps(spec: dict[str, Any]) -> Iterator[tuple[Pointer, dict[str, Any], dict[str, Any]]]:
    """(pointer, flow, step) for every step."""
    for fi, flow in _indexed(spec.get("flows")):
        for si, step in _indexed(flow.get("steps")):
            yield ("flows", fi, "steps", si), flow, step


def _err(at: Pointer, code: str, message: str, hint: str | None = None) -> SpecError:
    return SpecError(join(*at), code, message, hint)


def _suggest(name: str, options: list[str]) -> str | None:
    close = difflib.get_close_matches(name, options, n=1)
    return f'did you mean "{close[0]}"?' if close else None


# -- identity and limits -------------------------------------------------------
def rule_locales(spec: dict[str, Any], facts: Facts) -> Iterator[SpecError]:
    """duplicate-locale, unknown-default-locale."""
    for locale, count in Counter(facts.locales).items():
        if count > 1:
            yield _err(
                ("meta", "locales"),
                "duplicate-locale",
                f'locale "{locale}" is listed {count} times',
            )
    if facts.default_locale and facts.default_locale not in facts.locales:
        yield _err(
            ("meta", "defaultLocale"),
            "unknown-default-locale",
            f'defaultLocale "{facts.default_locale}" is not among meta.locales ({", ".join(facts.locales)})',
        )


def _duplicates(items: list[tuple[Pointer, Any]], code: str, what: str) -> Iterator[SpecError]:
    seen: dict[Any, Pointer] = {}
    for at, key in items:
        if key in seen:
            yield _err(at, code, f'{what} "{key}" is already used at {join(*seen[key])}')
        else:
            seen[key] = at


def rule_unique_ids(spec: dict[str, Any], facts: Facts) -> Iterator[SpecError]:
    """duplicate-flow-id, duplicate-step-id, duplicate-command, duplicate-intent-id."""
    yield from _duplicates(
        [(("flows", i, "id"), f.get("id")) for i, f in _indexed(spec.get("flows"))],
        "duplicate-flow-id",
        "flow id",
    )
    for fi, flow in _indexed(spec.get("flows")):
        yield from _duplicates(
            [(("flows", fi, "steps", si, "id"), s.get("id")) for si, s in _indexed(flow.get("steps"))],
            "duplicate-step-id",
            "step id",
        )
    yield from _duplicates(
        [(("commands", i, "command"), c.get("command")) for i, c in _indexed(spec.get("commands"))],
        "duplicate-command",
        "command",
    )
    yield from _duplicates(
        [(("intents", i, "id"), c.get("id")) for i, c in _indexed(spec.get("intents"))],
        "duplicate-intent-id",
        "intent id",
    )


def rule_limits(spec: dict[str, Any], facts: Facts) -> Iterator[SpecError]:
    """too-many-flows, too-many-steps, timeout-too-long, response-limit-too-large, state-limit-too-large."""
    flows = spec.get("flows")
    if isinstance(flows, list) and len(flows) > MAX_FLOWS:
        yield _err(
            ("flows",),
            "too-many-flows",
            f"the spec has {len(flows)} flows; the limit is {MAX_FLOWS}",
        )
    for fi, flow in _indexed(flows):
        steps = flow.get("steps")
        if isinstance(steps, list) and len(steps) > MAX_STEPS:
            yield _err(
                ("flows", fi, "steps"),
                "too-many-steps",
                f'flow "{flow.get("id")}" has {len(steps)} steps; the limit is {MAX_STEPS}',
                "split it into several flows joined by goto",
            )
    for at, _flow, step in _steps(spec):
        timeout = step.get("timeoutMs")
        if step.get("type") == "apiCall" and isinstance(timeout, int) and timeout > MAX_TIMEOUT_MS:
            yield _err(
                (*at, "timeoutMs"),
                "timeout-too-long",
                f"timeoutMs is {timeout}; the limit is {MAX_TIMEOUT_MS}",
            )
    kb = spec.get("security", {}).get("maxApiResponseKB", DEFAULT_API_RESPONSE_KB)
    if isinstance(kb, int) and kb > MAX_RESPONSE_KB:
        yield _err(
            ("security", "maxApiResponseKB"),
            "response-limit-too-large",
            f"maxApiResponseKB is {kb}; the limit is {MAX_RESPONSE_KB}",
        )
    max_bytes = spec.get("state", {}).get("maxBytes", MAX_STATE_BYTES)
    if isinstance(max_bytes, int) and max_bytes > MAX_STATE_BYTES:
        yield _err(
            ("state", "maxBytes"),
            "state-limit-too-large",
            f"state.maxBytes is {max_bytes}; the limit is {MAX_STATE_BYTES} (64 KiB)",
        )


# -- references ----------------------------------------------------------------
def _flow_ref(facts: Facts, at: Pointer, flow: Any) -> Iterator[SpecError]:
    if isinstance(flow, str) and flow not in facts.flows:
        yield _err(at, "unresolved-flow", f'no flow "{flow}"', _suggest(flow, list(facts.flows)))


def _target(facts: Facts, at: Pointer, flow: dict[str, Any], target: Any) -> Iterator[SpecError]:
    if not isinstance(target, str) or target == "#end":
        return
    if target.startswith("@"):
        yield from _flow_ref(facts, at, target[1:])
        return
    ids = [s.get("id") for s in _dicts(flow.get("steps"))]
    if target not in ids:
        yield _err(
            at,
            "unresolved-step",
            f'no step "{target}" in flow "{flow.get("id")}"',
            _suggest(target, [i for i in ids if isinstance(i, str)]),
        )


def rule_references(spec: dict[str, Any], facts: Facts) -> Iterator[SpecError]:
    """unresolved-flow, unresolved-step, validate-without-retry."""
    for kind in ("commands", "intents", "callbacks"):
        for i, entry in _indexed(spec.get(kind)):
            yield from _flow_ref(facts, (kind, i, "flow"), entry.get("flow"))
    if isinstance(spec.get("fallback"), dict):
        yield from _flow_ref(facts, ("fallback", "flow"), spec["fallback"].get("flow"))
    for at, flow, step in _steps(spec):
        for field in ("next", "elseNext", "onFail", "onError"):
            if field in step:
                yield from _target(facts, (*at, field), flow, step[field])
        if step.get("type") == "validate" and "onFail" not in step:
            earlier = flow["steps"][: at[3]]
            if not any(isinstance(s, dict) and s.get("type") == "ask" for s in earlier):
                yield _err(
                    at,
                    "validate-without-retry",
                    f'validate step "{step.get("id")}" has no onFail and no ask before it to return to',
                    'add "onFail" (a step id, "@flow" or "#end")',
                )


def _string_keys(spec: dict[str, Any]) -> Iterator[tuple[Pointer, str]]:
    for i, c in _indexed(spec.get("commands")):
        if isinstance(c.get("description"), str):
            yield ("commands", i, "description"), c["description"]
    for i, c in _indexed(spec.get("callbacks")):
        if isinstance(c.get("toast"), str):
            yield ("callbacks", i, "toast"), c["toast"]
    for at, _flow, step in _steps(spec):
        for field in ("text", "prompt", "error"):
            if isinstance(step.get(field), str):
                yield (*at, field), step[field]
        media = step.get("media")
        if isinstance(media, dict) and isinstance(media.get("caption"), str):
            yield (*at, "media", "caption"), media["caption"]
        buttons = step.get("buttons")
        if isinstance(buttons, dict):
            for r, row in enumerate(buttons.get("keyboard") or []):
                for b, key in enumerate(row if isinstance(row, list) else []):
                    if isinstance(key, str):
                        yield (*at, "buttons", "keyboard", r, b), key
            for r, row in enumerate(buttons.get("inline") or []):
                for b, button in enumerate(row if isinstance(row, list) else []):
                    if isinstance(button, dict) and isinstance(button.get("text"), str):
                        yield (*at, "buttons", "inline", r, b, "text"), button["text"]


def rule_strings(spec: dict[str, Any], facts: Facts) -> Iterator[SpecError]:
    """unresolved-string, missing-default-translation, unknown-locale."""
    keys = list(facts.strings)
    for at, key in _string_keys(spec):
        if key not in facts.strings:
            yield _err(
                at,
                "unresolved-string",
                f'no string "{key}" in localization.strings',
                _suggest(key, keys),
            )
    for key, variants in facts.strings.items():
        if not isinstance(variants, dict):
            continue
        if facts.default_locale in facts.locales and facts.default_locale not in variants:
            yield _err(
                ("localization", "strings", key),
                "missing-default-translation",
                f'string "{key}" has no text for the default locale "{facts.default_locale}"',
                "every other locale falls back to it",
            )
        for locale in variants:
            if facts.locales and locale not in facts.locales:
                yield _err(
                    ("localization", "strings", key, locale),
                    "unknown-locale",
                    f'locale "{locale}" is not among meta.locales ({", ".join(facts.locales)})',
                )


MAX_TOAST = 200


def rule_toasts(spec: dict[str, Any], facts: Facts) -> Iterator[SpecError]:
    """bad-toast: callback toasts are static and at most 200 code points (Telegram's limit)."""
    for i, route in _indexed(spec.get("callbacks")):
        variants = facts.strings.get(str(route.get("toast")))
        for locale, text in variants.items() if isinstance(variants, dict) else ():
            if isinstance(text, str) and ("{{" in text or len(text) > MAX_TOAST):
                yield _err(
                    ("callbacks", i, "toast"), "bad-toast",
                    f'toast string "{route["toast"]}" ({locale}) must have no placeholders and at most {MAX_TOAST} '
                    f"code points; it has {len(text)}",
                )  # fmt: skip


def rule_intents(spec: dict[str, Any], facts: Facts) -> Iterator[SpecError]:
    """missing-default-keywords, unknown-locale, empty-keyword."""
    for i, intent in _indexed(spec.get("intents")):
        keywords = intent.get("keywords")
        if not isinstance(keywords, dict):
            continue
        if facts.default_locale in facts.locales and facts.default_locale not in keywords:
            yield _err(
                ("intents", i, "keywords"),
                "missing-default-keywords",
                f'intent "{intent.get("id")}" has no keywords for the default locale "{facts.default_locale}"',
            )
        for locale, items in keywords.items():
            if facts.locales and locale not in facts.locales:
                yield _err(
                    ("intents", i, "keywords", locale),
                    "unknown-locale",
                    f'locale "{locale}" is not among meta.locales ({", ".join(facts.locales)})',
                )
            for k, keyword in enumerate(items if isinstance(items, list) else []):
                if isinstance(keyword, str) and not words(keyword):
                    yield _err(
                        ("intents", i, "keywords", locale, k),
                        "empty-keyword",
                        f"keyword {keyword!r} has no word characters, so it can never match",
                    )


# -- templates, variables, conditions ----------------------------------------
def _check_path(facts: Facts, at: Pointer, path: Path) -> Iterator[SpecError]:
    if path.root == "state" and path.head not in facts.vars:
        yield _err(
            at, "unknown-state-var", f'"{path}" names an undeclared variable "{path.head}"',
            _suggest(path.head, list(facts.vars)) or "declare it in state.vars",
        )  # fmt: skip
    elif path.root == "context" and (path.head not in CONTEXT_FIELDS or len(path.segments) > 1):
        yield _err(
            at, "unknown-context-field", f'"{path}" is not a context field',
            "context fields: " + ", ".join(sorted(CONTEXT_FIELDS)),
        )  # fmt: skip


def _check_template(facts: Facts, at: Pointer, template: str) -> Iterator[SpecError]:
    for offset in stray_braces(template):
        secret = SECRET.match(template, offset)
        if secret:
            yield _err(at, "secret-not-allowed", "{{secret.*}} is only allowed in apiCall header values")
        else:
            yield _err(
                at, "bad-placeholder",
                f'"{{{{" at offset {offset} does not begin a placeholder such as {{{{state.name}}}}',
            )  # fmt: skip
    for path in placeholders(template):
        yield from _check_path(facts, at, path)


def _json_strings(value: Any, at: Pointer) -> Iterator[tuple[Pointer, str]]:
    if isinstance(value, str):
        yield at, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_strings(item, (*at, i))
    elif isinstance(value, dict):
        for k, item in value.items():
            yield from _json_strings(item, (*at, k))


def rule_templates(spec: dict[str, Any], facts: Facts) -> Iterator[SpecError]:
    """bad-placeholder, secret-not-allowed, unknown-state-var, unknown-context-field (in texts)."""
    for key, variants in facts.strings.items():
        for locale, text in variants.items() if isinstance(variants, dict) else ():
            if isinstance(text, str):
                yield from _check_template(facts, ("localization", "strings", key, locale), text)
    for at, _flow, step in _steps(spec):
        kind = step.get("type")
        if kind == "save" and isinstance(step.get("set"), dict):
            for name, expr in step["set"].items():
                if isinstance(expr, str):
                    yield from _check_template(facts, (*at, "set", name), expr)
        if kind == "apiCall":
            for where, text in _json_strings(step.get("body"), (*at, "body")):
                yield from _check_template(facts, where, text)
            headers = step.get("headers")
            for name, value in headers.items() if isinstance(headers, dict) else ():
                if isinstance(value, str) and "{{" in SECRET.sub("", value):
                    yield _err(
                        (*at, "headers", name), "bad-placeholder",
                        "header values may hold only {{secret.NAME}} placeholders (NAME in A-Z, 0-9, _)",
                    )  # fmt: skip


def _declared(facts: Facts, at: Pointer, name: Any) -> Iterator[SpecError]:
    if isinstance(name, str) and name not in facts.vars:
        yield _err(
            at, "unknown-state-var", f'variable "{name}" is not declared in state.vars',
            _suggest(name, list(facts.vars)) or "declare it in state.vars",
        )  # fmt: skip


def _conditions(cond: Any, at: Pointer) -> Iterator[tuple[Pointer, dict[str, Any]]]:
    if not isinstance(cond, dict):
        return
    for op in ("all", "any"):
        if isinstance(cond.get(op), list):
            for i, c in enumerate(cond[op]):
                yield from _conditions(c, (*at, op, i))
    if "not" in cond:
        yield from _conditions(cond["not"], (*at, "not"))
    if "left" in cond:
        yield at, cond


def rule_variables(spec: dict[str, Any], facts: Facts) -> Iterator[SpecError]:
    """unknown-state-var (writes), bad-condition-path, missing-right-operand, default-type-mismatch."""
    for i, c in _indexed(spec.get("commands")):
        if "argsVar" in c:
            yield from _declared(facts, ("commands", i, "argsVar"), c["argsVar"])
    for i, c in _indexed(spec.get("callbacks")):
        if "var" in c:
            yield from _declared(facts, ("callbacks", i, "var"), c["var"])
    for at, _flow, step in _steps(spec):
        if "var" in step:
            yield from _declared(facts, (*at, "var"), step["var"])
        for field in ("set", "map"):
            for name in step.get(field, {}) if isinstance(step.get(field), dict) else ():
                yield from _declared(facts, (*at, field, name), name)
        for where, cond in _conditions(step.get("when"), (*at, "when")):
            left = cond.get("left")
            path = parse_path(left) if isinstance(left, str) else None
            if path is None:
                yield _err(
                    (*where, "left"), "bad-condition-path",
                    f"{_short(left)} is not a path like state.name or context.locale",
                )  # fmt: skip
            else:
                yield from _check_path(facts, (*where, "left"), path)
            if cond.get("op") != "exists" and "right" not in cond:
                yield _err(where, "missing-right-operand", f'operator "{cond.get("op")}" needs "right"')
    types: dict[str, type | tuple[type, ...]] = {"string": str, "number": (int, float), "boolean": bool}
    for name, decl in facts.vars.items():
        if not isinstance(decl, dict) or "default" not in decl or decl.get("type") not in types:
            continue
        value = decl["default"]
        kind = types[decl["type"]]
        if value is not None and (
            not isinstance(value, kind) or (decl["type"] == "number" and isinstance(value, bool))
        ):
            yield _err(
                ("state", "vars", name, "default"), "default-type-mismatch",
                f'default {_short(value)} is not a {decl["type"]}',
            )  # fmt: skip


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- api calls, regexes, buttons ---------------------------------------------
def rule_urls(spec: dict[str, Any], facts: Facts) -> Iterator[SpecError]:
    """bad-url, insecure-url, placeholder-in-host, url-not-allowed."""
    for at, _flow, step in _steps(spec):
        url = step.get("url")
        if step.get("type") != "apiCall" or not isinstance(url, str):
            continue
        where = (*at, "url")
        scheme, _, rest = url.partition("://")
        authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        if "{{" in authority:
            yield _err(
                where,
                "placeholder-in-host",
                "placeholders may appear only after the host of the URL",
            )
            continue
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            _ = parts.port
        except ValueError:
            host = ""
        if scheme not in ("https", "http") or not host or "@" in authority:
            yield _err(
                where,
                "bad-url",
                f"{url!r} is not an absolute https:// URL with a host (and no user info)",
            )
            continue
        if scheme == "http" and not facts.insecure_ok:
            yield _err(
                where,
                "insecure-url",
                "apiCall URLs must use https://",
                "or set security.allowInsecureHttp",
            )
        if not domain_allowed(host, facts.domains):
            yield _err(
                where, "url-not-allowed", f'host "{host}" is not in security.allowedDomains',
                f'add "{host}" to security.allowedDomains',
            )  # fmt: skip
        yield from _check_template(facts, where, url)


def _regexes(spec: dict[str, Any]) -> Iterator[tuple[Pointer, str]]:
    for at, _flow, step in _steps(spec):
        if step.get("type") != "validate":
            continue
        if isinstance(step.get("regex"), str):
            yield (*at, "regex"), step["regex"]
        schema = step.get("schema")
        if isinstance(schema, dict) and isinstance(schema.get("pattern"), str):
            yield (*at, "schema", "pattern"), schema["pattern"]


def rule_regexes(spec: dict[str, Any], facts: Facts) -> Iterator[SpecError]:
    """regex-syntax, regex-unsupported, regex-too-complex, regex-case-mismatch, impossible-schema."""
    for at, pattern in _regexes(spec):
        problem = check_pattern(pattern)
        if problem is not None:
            yield _err(at, problem.code, problem.message)
    for at, _flow, step in _steps(spec):
        regex = step.get("regex")
        if step.get("ignoreCase") is True and isinstance(regex, str):
            # Literals outside classes only: a class may list both cases harmlessly.
            literal = re.sub(r"\[(?:\\.|[^\]\\])*\]", "", re.sub(r"\\.", "", regex))
            upper = sorted({c for c in literal if fold(c) != c})
            if upper:
                yield _err(
                    (*at, "regex"), "regex-case-mismatch",
                    f"with ignoreCase the value is lowercased before matching, so {''.join(upper)!r} can never match",
                    "write the pattern in lowercase",
                )  # fmt: skip
    for at, _flow, step in _steps(spec):
        schema = step.get("schema")
        if step.get("type") != "validate" or not isinstance(schema, dict):
            continue
        for low, high in (("minLength", "maxLength"), ("minimum", "maximum")):
            lo, hi = schema.get(low), schema.get(high)
            if isinstance(lo, int | float) and isinstance(hi, int | float) and lo > hi:
                yield _err((*at, "schema"), "impossible-schema", f"{low} {lo} is greater than {high} {hi}")


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def rule_buttons(spec: dict[str, Any], facts: Facts) -> Iterator[SpecError]:
    """callback-data-too-long (the schema caps rows at 12 and row length at 8)."""
    for i, c in _indexed(spec.get("callbacks")):
        for field in ("data", "prefix"):
            if isinstance(c.get(field), str) and _utf8_len(c[field]) > MAX_CALLBACK_BYTES:
                yield _err(
                    ("callbacks", i, field), "callback-data-too-long",
                    f"{field} is {_utf8_len(c[field])} bytes; Telegram allows {MAX_CALLBACK_BYTES}",
                )  # fmt: skip
    for at, _flow, step in _steps(spec):
        buttons = step.get("buttons")
        if not isinstance(buttons, dict):
            continue
        for r, row in enumerate(buttons.get("inline") or []):
            for b, button in enumerate(row if isinstance(row, list) else []):
                data = button.get("data") if isinstance(button, dict) else None
                if isinstance(data, str) and _utf8_len(data) > MAX_CALLBACK_BYTES:
                    yield _err(
                        (*at, "buttons", "inline", r, b, "data"), "callback-data-too-long",
                        f"callback data is {_utf8_len(data)} bytes; Telegram allows {MAX_CALLBACK_BYTES}",
                    )  # fmt: skip


Rule = Callable[[dict[str, Any], Facts], Iterator[SpecError]]

RULES: tuple[Rule, ...] = (
    rule_locales,
    rule_unique_ids,
    rule_limits,
    rule_references,
    rule_strings,
    rule_toasts,
    rule_intents,
    rule_templates,
    rule_variables,
    rule_urls,
    rule_regexes,
    rule_buttons,
)


def run_rules(spec: dict[str, Any], *, tolerant: bool) -> list[SpecError]:
    """Every semantic problem of ``spec``.

    With ``tolerant`` (the schema pass failed) a rule that raises on a malformed
    part contributes what it found before that point.
    """
    facts = _facts(spec)
    errors: list[SpecError] = []
    for rule in RULES:
        try:
            errors.extend(rule(spec, facts))
        except (KeyError, TypeError, AttributeError, IndexError, ValueError):
            if not tolerant:
                raise
    return errors
