"""Validation: every error code with its pointer, exact texts, all errors at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from botkiln.interpreter.errors import SpecError
from botkiln.interpreter.validation import MAX_SPEC_BYTES, validate_spec
from tests.conftest import minimal_spec

Mutation = Callable[[dict[str, Any]], object]


def _step(spec: dict[str, Any], index: int) -> dict[str, Any]:
    step: dict[str, Any] = spec["flows"][0]["steps"][index]
    return step


def _add_step(spec: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
    spec["flows"][0]["steps"].append(step)
    return spec


def _api(**extra: Any) -> dict[str, Any]:
    return {"id": "call", "type": "apiCall", "method": "GET", "url": "https://api.example.com/x", **extra}


def _allow(spec: dict[str, Any], *domains: str) -> dict[str, Any]:
    spec["security"] = {"allowedDomains": list(domains)}
    return spec


CASES: list[tuple[str, Mutation, str, str]] = [
    (
        "spec-too-large",
        lambda s: s["localization"]["strings"].update({f"k{i}": {"en": "a" * 4096} for i in range(130)}),
        "",
        "spec-too-large",
    ),
    ("duplicate-locale", lambda s: s["meta"].update(locales=["en", "ru", "en"]), "/meta/locales", "duplicate-locale"),
    (
        "unknown-default-locale",
        lambda s: s["meta"].update(defaultLocale="de"),
        "/meta/defaultLocale",
        "unknown-default-locale",
    ),
    (
        "duplicate-flow-id",
        lambda s: s["flows"].append({"id": "main", "steps": [{"id": "a", "type": "reply", "text": "hello"}]}),
        "/flows/1/id",
        "duplicate-flow-id",
    ),
    (
        "duplicate-step-id",
        lambda s: _add_step(s, {"id": "hello", "type": "reply", "text": "hello"}),
        "/flows/0/steps/4/id",
        "duplicate-step-id",
    ),
    (
        "duplicate-command",
        lambda s: s["commands"].append({"command": "start", "flow": "main"}),
        "/commands/1/command",
        "duplicate-command",
    ),
    (
        "duplicate-intent-id",
        lambda s: s.update(intents=[{"id": "i", "flow": "main", "keywords": {"en": ["a"]}}] * 2),
        "/intents/1/id",
        "duplicate-intent-id",
    ),
    (
        "too-many-flows",
        lambda s: s.update(
            flows=[{"id": f"f{i}", "steps": [{"id": "a", "type": "reply", "text": "hello"}]} for i in range(101)]
            + s["flows"]
        ),
        "/flows",
        "too-many-flows",
    ),
    (
        "too-many-steps",
        lambda s: s["flows"][0]["steps"].extend({"id": f"x{i}", "type": "reply", "text": "hello"} for i in range(50)),
        "/flows/0/steps",
        "too-many-steps",
    ),
    (
        "timeout-too-long",
        lambda s: (_allow(s, "api.example.com"), _add_step(s, _api(timeoutMs=6000))),
        "/flows/0/steps/4/timeoutMs",
        "timeout-too-long",
    ),
    (
        "response-limit-too-large",
        lambda s: s.update(security={"maxApiResponseKB": 65}),
        "/security/maxApiResponseKB",
        "response-limit-too-large",
    ),
    ("state-limit-too-large", lambda s: s["state"].update(maxBytes=70000), "/state/maxBytes", "state-limit-too-large"),
    ("unresolved-flow", lambda s: s["commands"][0].update(flow="mian"), "/commands/0/flow", "unresolved-flow"),
    (
        "unresolved-flow-target",
        lambda s: _step(s, 0).update(next="@nowhere"),
        "/flows/0/steps/0/next",
        "unresolved-flow",
    ),
    ("unresolved-step", lambda s: _step(s, 0).update(next="nmae"), "/flows/0/steps/0/next", "unresolved-step"),
    (
        "validate-without-retry",
        lambda s: s["flows"][0]["steps"].insert(0, {"id": "v", "type": "validate", "var": "name", "regex": "a"}),
        "/flows/0/steps/0",
        "validate-without-retry",
    ),
    ("unresolved-string", lambda s: _step(s, 0).update(text="helo"), "/flows/0/steps/0/text", "unresolved-string"),
    (
        "missing-default-translation",
        lambda s: s["localization"]["strings"].update(x={"ru": "только"}),
        "/localization/strings/x",
        "missing-default-translation",
    ),
    (
        "unknown-locale",
        lambda s: s["localization"]["strings"]["hello"].update(de="Hallo"),
        "/localization/strings/hello/de",
        "unknown-locale",
    ),
    (
        "missing-default-keywords",
        lambda s: s.update(intents=[{"id": "i", "flow": "main", "keywords": {"ru": ["да"]}}]),
        "/intents/0/keywords",
        "missing-default-keywords",
    ),
    (
        "empty-keyword",
        lambda s: s.update(intents=[{"id": "i", "flow": "main", "keywords": {"en": ["!!"]}}]),
        "/intents/0/keywords/en/0",
        "empty-keyword",
    ),
    (
        "bad-placeholder",
        lambda s: s["localization"]["strings"]["hello"].update(en="Hi {{ name }}"),
        "/localization/strings/hello/en",
        "bad-placeholder",
    ),
    (
        "secret-not-allowed",
        lambda s: s["localization"]["strings"]["hello"].update(en="{{secret.TOKEN}}"),
        "/localization/strings/hello/en",
        "secret-not-allowed",
    ),
    (
        "bad-header-placeholder",
        lambda s: (_allow(s, "api.example.com"), _add_step(s, _api(headers={"X-Name": "{{state.name}}"}))),
        "/flows/0/steps/4/headers/X-Name",
        "bad-placeholder",
    ),
    (
        "unknown-state-var",
        lambda s: s["localization"]["strings"]["hello"].update(en="Hi {{state.nmae}}"),
        "/localization/strings/hello/en",
        "unknown-state-var",
    ),
    ("unknown-state-var-write", lambda s: _step(s, 1).update(var="email"), "/flows/0/steps/1/var", "unknown-state-var"),
    (
        "unknown-context-field",
        lambda s: s["localization"]["strings"]["hello"].update(en="{{context.password}}"),
        "/localization/strings/hello/en",
        "unknown-context-field",
    ),
    (
        "bad-condition-path",
        lambda s: _add_step(s, {"id": "g", "type": "goto", "next": "hello", "when": {"left": "name", "op": "exists"}}),
        "/flows/0/steps/4/when/left",
        "bad-condition-path",
    ),
    (
        "missing-right-operand",
        lambda s: _add_step(
            s, {"id": "g", "type": "goto", "next": "hello", "when": {"all": [{"left": "state.name", "op": "eq"}]}}
        ),
        "/flows/0/steps/4/when/all/0",
        "missing-right-operand",
    ),
    (
        "default-type-mismatch",
        lambda s: s["state"]["vars"].update(n={"type": "number", "default": "5"}),
        "/state/vars/n/default",
        "default-type-mismatch",
    ),
    (
        "bad-url",
        lambda s: (_allow(s, "api.example.com"), _add_step(s, _api(url="ftp://api.example.com/x"))),
        "/flows/0/steps/4/url",
        "bad-url",
    ),
    (
        "insecure-url",
        lambda s: (_allow(s, "api.example.com"), _add_step(s, _api(url="http://api.example.com/x"))),
        "/flows/0/steps/4/url",
        "insecure-url",
    ),
    (
        "placeholder-in-host",
        lambda s: (_allow(s, "api.example.com"), _add_step(s, _api(url="https://{{state.name}}.example.com/x"))),
        "/flows/0/steps/4/url",
        "placeholder-in-host",
    ),
    (
        "url-not-allowed",
        lambda s: (_allow(s, "*.example.com"), _add_step(s, _api(url="https://example.com/x"))),
        "/flows/0/steps/4/url",
        "url-not-allowed",
    ),
    (
        "regex-syntax",
        lambda s: _add_step(s, {"id": "v", "type": "validate", "var": "name", "regex": "a(b"}),
        "/flows/0/steps/4/regex",
        "regex-syntax",
    ),
    (
        "regex-unsupported",
        lambda s: _add_step(s, {"id": "v", "type": "validate", "var": "name", "regex": "(a)\\1"}),
        "/flows/0/steps/4/regex",
        "regex-unsupported",
    ),
    (
        "regex-too-complex",
        lambda s: _add_step(s, {"id": "v", "type": "validate", "var": "name", "regex": "((a{100}){100}){100}"}),
        "/flows/0/steps/4/regex",
        "regex-too-complex",
    ),
    (
        "bad-toast",
        lambda s: (
            s.update(callbacks=[{"data": "x", "flow": "main", "toast": "hello"}]),
            s["localization"]["strings"]["hello"].update(ru="{{state.name}}"),
        ),
        "/callbacks/0/toast",
        "bad-toast",
    ),
    (
        "regex-case-mismatch",
        lambda s: _add_step(
            s, {"id": "v", "type": "validate", "var": "name", "regex": "\\D[A-Z]Ax", "ignoreCase": True}
        ),
        "/flows/0/steps/4/regex",
        "regex-case-mismatch",
    ),
    (
        "impossible-schema",
        lambda s: _step(s, 2).update(schema={"type": "string", "minLength": 5, "maxLength": 2}),
        "/flows/0/steps/2/schema",
        "impossible-schema",
    ),
    (
        "callback-data-too-long",
        lambda s: _step(s, 0).update(buttons={"inline": [[{"text": "hello", "data": "я" * 33}]]}),
        "/flows/0/steps/0/buttons/inline/0/0/data",
        "callback-data-too-long",
    ),
    (
        "too-many-button-rows",
        lambda s: _step(s, 0).update(buttons={"keyboard": [["hello"] * 8] * 12 + [["hello"]]}),
        "/flows/0/steps/0/buttons/keyboard",
        "schema-max-items",
    ),
    ("schema-required", lambda s: s["meta"].pop("name"), "/meta", "schema-required"),
    (
        "schema-additional-properties",
        lambda s: _step(s, 0).update(txt="x"),
        "/flows/0/steps/0/txt",
        "schema-additional-properties",
    ),
    ("schema-enum", lambda s: _step(s, 0).update(type="say"), "/flows/0/steps/0/type", "schema-enum"),
    ("schema-pattern", lambda s: s["flows"][0].update(id="2bad"), "/flows/0/id", "schema-pattern"),
    ("schema-type", lambda s: s["meta"].update(locales="en"), "/meta/locales", "schema-type"),
    ("reserved-id", lambda s: s["flows"][0].update(id="__proto__"), "/flows/0/id", "schema-pattern"),
]


@pytest.mark.parametrize(("mutate", "pointer", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_error_code_is_reported_at_its_pointer(mutate: Mutation, pointer: str, code: str) -> None:
    spec = minimal_spec()
    mutate(spec)
    errors = validate_spec(spec)
    assert (pointer, code) in [(e.pointer, e.code) for e in errors], errors


def test_minimal_spec_is_valid() -> None:
    assert validate_spec(minimal_spec()) == []


def test_every_documented_code_has_a_case() -> None:
    with open("docs/errors.md", encoding="utf-8") as doc:
        text = doc.read()
    documented = set(__import__("re").findall(r'<a id="([a-z-]+)"></a>', text))
    tested = {c[3] for c in CASES}
    assert documented - tested == set()


def test_all_errors_are_reported_at_once_sorted_by_pointer() -> None:
    spec = minimal_spec()
    spec["commands"][0]["flow"] = "nope"
    spec["flows"][0]["steps"][0]["text"] = "missing"
    spec["localization"]["strings"]["hello"]["de"] = "Hallo"
    errors = validate_spec(spec)
    assert [e.code for e in errors] == ["unresolved-flow", "unresolved-string", "unknown-locale"]
    assert [e.pointer for e in errors] == sorted(
        (e.pointer for e in errors), key=lambda p: [(0, int(x)) if x.isdigit() else (1, x) for x in p.split("/")[1:]]
    )


def test_messages_say_what_where_and_suggest_the_fix() -> None:
    spec = minimal_spec()
    spec["flows"][0]["steps"][0]["next"] = "nmae"
    spec["flows"][0]["steps"][0]["txt"] = "x"
    errors = validate_spec(spec)
    assert (
        SpecError("/flows/0/steps/0/next", "unresolved-step", 'no step "nmae" in flow "main"', 'did you mean "name"?')
        in errors
    )
    unknown = next(e for e in errors if e.code == "schema-additional-properties")
    assert unknown.message == 'unknown field "txt"'
    assert unknown.hint == 'did you mean "text"?'
    assert (
        str(unknown)
        == '/flows/0/steps/0/txt: unknown field "txt" [schema-additional-properties] (did you mean "text"?)'
    )


def test_semantic_errors_are_found_even_when_the_schema_fails() -> None:
    spec = minimal_spec()
    spec["meta"]["name"] = 5
    spec["commands"][0]["flow"] = "nope"
    codes = {e.code for e in validate_spec(spec)}
    assert {"schema-type", "unresolved-flow"} <= codes


@pytest.mark.parametrize("value", [None, [], "spec", 3])
def test_a_non_object_is_one_clear_error(value: Any) -> None:
    errors = validate_spec(value)
    assert [(e.pointer, e.code) for e in errors] == [("", "schema-type")]


def test_malformed_parts_never_raise() -> None:
    spec: dict[str, Any] = {
        "schema_ver": 1,
        "meta": [],
        "flows": [5, {"id": 3, "steps": "x"}],
        "localization": {"strings": []},
        "intents": "x",
        "callbacks": [1],
        "commands": [{"command": 1}],
        "state": {"vars": []},
    }
    errors = validate_spec(spec)
    assert errors
    assert all(e.code.startswith("schema-") for e in errors)


def test_size_limit_uses_the_given_size() -> None:
    assert [e.code for e in validate_spec(minimal_spec(), size=MAX_SPEC_BYTES + 1)] == ["spec-too-large"]


def test_wildcard_domains_match_subdomains_only() -> None:
    spec = minimal_spec()
    _allow(spec, "*.example.com")
    _add_step(spec, _api(url="https://api.example.com/v1?q={{state.name}}"))
    assert validate_spec(spec) == []
