"""Hypothesis strategies: valid BotSpecs, conversations and API fixtures.

Specs are built from small pools (variables v0..v4, strings s0..s7, data values,
keywords) so that generated conversations actually hit commands, intents,
callbacks, asks, validations, API calls and goto branches, rather than falling
through to the fallback every time.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

VARS = ["v0", "v1", "v2", "v3", "v4"]
WORDS = ["price", "hours", "help", "да", "цена", "Ölçü", "ΣΟΦΙΑ", "café", "🙂", "42", "-7.5", "a@b.co"]
DATA = ["yes", "no", "item:1", "item:22", "🙂", "x" * 64]
LOCALES = ["en", "ru", "de"]
PATTERNS = ["[a-z]+", "\\d{1,3}", "(ab|c)*", "[^@\\s]+@[^@\\s]+\\.[a-z]{2,}", "[А-Яа-яЁё ]+", ".{2,5}", "x?y+z*"]
API = "https://api.example.com"

texts = st.sampled_from(
    [
        "Hi",
        "Ok {{state.v0}}",
        "{{context.firstName}}: {{state.v1}}",
        "Σ {{ state.v2 }} İ",
        "😀" * 3,
        "{{state.v3.k}}/{{state.v4.0}}",
        "line\n" * 3,
        "",
    ]
)

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False, width=64)
    | st.sampled_from(WORDS),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["k", "0", "é", "__proto__", "constructor"]), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths() -> st.SearchStrategy[str]:
    return st.sampled_from(
        [f"state.{v}" for v in VARS]
        + ["state.v3.k", "state.v4.0", "context.locale", "context.firstName", "context.chatId"]
    )


conditions = st.recursive(
    st.booleans()
    | st.builds(
        lambda left, op, right: (
            {"left": left, "op": op, "right": right} if op != "exists" else {"left": left, "op": op}
        ),
        _paths(),
        st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "exists"]),
        st.sampled_from([1, 2.5, "yes", "price", None, True, ["yes", 1], "en"]),
    ),
    lambda inner: (
        st.builds(lambda c: {"all": c}, st.lists(inner, max_size=3))
        | st.builds(lambda c: {"any": c}, st.lists(inner, max_size=3))
        | st.builds(lambda c: {"not": c}, inner)
    ),
    max_leaves=5,
)


@st.composite
def buttons(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["keyboard", "inline", "remove"]))
    if kind == "remove":
        return {"remove": True}
    keys = st.sampled_from([f"s{i}" for i in range(8)])
    if kind == "keyboard":
        return {
            "keyboard": draw(st.lists(st.lists(keys, min_size=1, max_size=3), min_size=1, max_size=2)),
            "oneTime": draw(st.booleans()),
        }
    button = st.builds(lambda k, d: {"text": k, "data": d}, keys, st.sampled_from(DATA))
    return {"inline": draw(st.lists(st.lists(button, min_size=1, max_size=3), min_size=1, max_size=2))}


@st.composite
def steps(draw: st.DrawFn, flow_ids: list[str], count: int) -> list[dict[str, Any]]:
    ids = [f"t{i}" for i in range(count)]
    targets = st.sampled_from(ids + [f"@{f}" for f in flow_ids] + ["#end"])
    out: list[dict[str, Any]] = []
    keys = st.sampled_from([f"s{i}" for i in range(8)])
    for step_id in ids:
        kind = draw(st.sampled_from(["reply", "ask", "validate", "save", "apiCall", "goto"]))
        step: dict[str, Any] = {"id": step_id, "type": kind}
        if kind == "reply":
            if draw(st.booleans()):
                step["media"] = {
                    "kind": draw(st.sampled_from(["photo", "document"])),
                    "source": "https://cdn.example.com/m.png",
                }
                if draw(st.booleans()):
                    step["media"]["caption"] = draw(keys)
            if "media" not in step or draw(st.booleans()):
                step["text"] = draw(keys)
            if draw(st.booleans()):
                step["buttons"] = draw(buttons())
        elif kind == "ask":
            step.update(var=draw(st.sampled_from(VARS)), prompt=draw(keys))
            if draw(st.booleans()):
                step["buttons"] = draw(buttons())
        elif kind == "validate":
            step["var"] = draw(st.sampled_from(VARS))
            if draw(st.booleans()):
                step["regex"] = draw(st.sampled_from(PATTERNS))
                step["ignoreCase"] = draw(st.booleans())
            else:
                step["schema"] = draw(
                    st.sampled_from(
                        [
                            {"type": "string", "minLength": 1, "maxLength": 6},
                            {"type": "string", "enum": ["yes", "no", "price"]},
                            {"type": "integer", "minimum": 0, "maximum": 100},
                            {"type": "number", "enum": [42, -7.5]},
                            {"type": "string", "pattern": "[a-z]+"},
                        ]
                    )
                )
            step["onFail"] = draw(targets)
            if draw(st.booleans()):
                step["error"] = draw(keys)
        elif kind == "save":
            exprs = st.one_of(
                st.sampled_from(["{{state.v1}}", "x={{state.v0}}", "{{context.locale}}", 3, -0.5, True, None]),
                st.builds(lambda v: {"value": v}, values),
                st.builds(lambda n: {"increment": n}, st.sampled_from([1, -2, 0.1, 2**53])),
                st.just({"unset": True}),
            )
            step["set"] = draw(st.dictionaries(st.sampled_from(VARS), exprs, min_size=1, max_size=3))
        elif kind == "apiCall":
            step.update(
                method=draw(st.sampled_from(["GET", "POST"])),
                url=draw(st.sampled_from([f"{API}/a", f"{API}/q?x={{{{state.v0}}}}&l={{{{context.locale}}}}"])),
            )
            if step["method"] == "POST":
                step["body"] = {"v": "{{state.v1}}", "t": "id-{{state.v2}}", "n": [1, "{{context.chatId}}"]}
                step["headers"] = {"Authorization": "Bearer {{secret.TOKEN}}"}
            if draw(st.booleans()):
                step["map"] = draw(
                    st.dictionaries(
                        st.sampled_from(VARS),
                        st.sampled_from(["", "/id", "/items/0", "/items/1", "/items/01", "/a~1b", "/missing"]),
                        max_size=2,
                    )
                )
            if draw(st.booleans()):
                step["onError"] = draw(targets)
        else:
            step["next"] = draw(targets)
            if draw(st.booleans()):
                step["when"] = draw(conditions)
            if draw(st.booleans()):
                step["elseNext"] = draw(targets)
        if kind != "goto" and draw(st.integers(0, 3)) == 0:
            step["next"] = draw(targets)
        out.append(step)
    return out


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid BotSpec exercising every step type and routing rule."""
    locales = LOCALES[: draw(st.integers(1, 3))]
    flow_ids = [f"f{i}" for i in range(draw(st.integers(1, 3)))]
    flows = [{"id": f, "steps": draw(steps(flow_ids, draw(st.integers(1, 6))))} for f in flow_ids]
    flow = st.sampled_from(flow_ids)
    strings = {
        f"s{i}": {loc: draw(texts) or "·" for loc in locales if loc == locales[0] or draw(st.booleans())}
        for i in range(8)
    }
    strings["toast"] = {locales[0]: "Got it ✓"}
    declared = {
        v: {
            "type": "json",
            **({"pii": True} if draw(st.booleans()) else {}),
            **({"ttlSec": draw(st.sampled_from([1, 5, 30]))} if draw(st.integers(0, 4)) == 0 else {}),
        }
        for v in VARS
    }
    spec: dict[str, Any] = {
        "schema_ver": 1,
        "meta": {"botId": "fuzz", "name": "Fuzz", "locales": locales, "defaultLocale": locales[0]},
        "commands": [{"command": "start", "flow": flow_ids[0]}, {"command": "c1", "flow": draw(flow), "argsVar": "v1"}],
        "intents": [
            {
                "id": f"i{i}",
                "flow": draw(flow),
                "priority": draw(st.integers(-1, 2)),
                "cooldownSec": draw(st.sampled_from([0, 2])),
                "keywords": {
                    locales[0]: draw(st.lists(st.sampled_from([*WORDS[:9], "how much"]), min_size=1, max_size=3))
                },
            }
            for i in range(draw(st.integers(0, 3)))
        ],
        "callbacks": draw(
            st.lists(
                st.sampled_from(
                    [
                        {"data": "yes", "flow": flow_ids[0], "toast": "toast"},
                        {"prefix": "item:", "flow": flow_ids[-1], "var": "v2"},
                    ]
                ),
                max_size=2,
                unique_by=lambda c: str(c),
            )
        ),
        "flows": flows,
        "state": {"vars": declared, "maxBytes": draw(st.sampled_from([256, 2048, 65536]))},
        "localization": {"strings": strings},
        "security": {"allowedDomains": ["api.example.com"]},
        "telemetry": draw(st.sampled_from([{}, {"enabled": False}, {"exclude": ["step_completed", "api_call"]}])),
    }
    if draw(st.booleans()):
        spec["fallback"] = {"flow": draw(flow)}
    if draw(st.booleans()):
        spec["meta"]["retention"] = {"stateTtlSec": 60, "piiTtlSec": 60}
    return spec


events = st.one_of(
    st.builds(
        lambda t: {"text": t},
        st.sampled_from(
            [
                "/start",
                "/c1 promo 🙂",
                "/C1@fuzz_bot x",
                "/unknown",
                "how much",
                "PRICE please",
                "да",
                "42",
                "-7.5",
                "yes",
                "a@b.co",
                "абв",
                "x" * 5000,
            ]
        ),
    ),
    st.builds(lambda t: {"text": t}, st.text(max_size=12)),
    st.builds(lambda d: {"callback": d}, st.sampled_from(DATA)),
    st.just({"media": "sticker"}),
    st.builds(lambda c: {"media": "photo", "caption": c}, st.sampled_from(["price", "🙂"])),
).flatmap(
    lambda e: st.builds(
        lambda chat, wait, lang: {**e, "chat": chat, "wait": wait, "lang": lang},
        st.sampled_from([1, 2, -100]),
        st.sampled_from([0, 0, 0, 3, 61]),
        st.sampled_from(["en", "ru", "pt-BR"]),
    )
)

api_results = st.sampled_from(
    [
        {"status": 200, "body": {"id": "A-1", "items": [{"n": 1}, {"n": 2.5}], "a/b": True}},
        {"status": 201, "body": [1, 2]},
        {"status": 200, "body": "plain"},
        {"status": 503},
        {"error": "timeout"},
        {"error": "not_json", "status": 200},
    ]
)


@st.composite
def api_fixtures(draw: st.DrawFn) -> dict[str, Any]:
    """Scripted results for every API the generated specs call."""
    return {f"{method} {API}/*": draw(st.lists(api_results, min_size=1, max_size=4)) for method in ("GET", "POST")}
