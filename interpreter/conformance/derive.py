"""Conversations derived from a spec itself, for the conformance gate.

Every command, intent keyword (per locale), callback route, the fallback and a
text-less message start a conversation; each then answers whatever the bot asks
with a rotation of candidate answers (valid and invalid ones, the spec's own
button data, keyboard texts and enum values), under three API worlds: every call
succeeds (with a body that satisfies every ``map`` pointer), every call fails
with HTTP 500, every call times out. One more conversation lets time pass, for
cooldowns and TTLs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botkiln.interpreter.pointers import split

GENERIC_ANSWERS = ["Ann", "42", "-3.5", "007", "a@b.co", "no way", "Ёлка 🙂", "x" * 300, "yes"]
MAX_SCRIPTS = 400


@dataclass(frozen=True)
class Script:
    """A named conversation: events (simulate short forms or raw updates) + API fixture."""

    name: str
    events: list[Any]
    fixture: dict[str, Any] = field(default_factory=dict)
    bot_username: str | None = None


def _routes(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    routes: list[tuple[str, dict[str, Any]]] = []
    for command in spec.get("commands", []):
        args = " ref 1" if "argsVar" in command else ""
        routes.append((f"/{command['command']}", {"text": f"/{command['command']}{args}"}))
    for intent in spec.get("intents", []):
        for locale, keywords in sorted(intent["keywords"].items()):
            routes.append((f"intent {intent['id']} ({locale})", {"text": f"{keywords[0]}?", "lang": locale}))
    for index, route in enumerate(spec.get("callbacks", [])):
        data = route.get("data", route.get("prefix", "") + "7")
        routes.append((f"callback {index}", {"callback": data}))
    routes.append(("fallback", {"text": "qwerty zxcv"}))
    routes.append(("sticker", {"media": "sticker"}))
    return routes


def _answers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    default = spec["meta"]["defaultLocale"]
    strings = spec["localization"]["strings"]
    answers: list[dict[str, Any]] = [{"text": a} for a in GENERIC_ANSWERS]
    for flow in spec["flows"]:
        for step in flow["steps"]:
            buttons = step.get("buttons", {})
            for row in buttons.get("inline", []):
                answers.extend({"callback": b["data"]} for b in row if "data" in b)
            for row in buttons.get("keyboard", []):
                answers.extend({"text": strings[k][default]} for k in row if k in strings)
            for value in step.get("schema", {}).get("enum", []):
                answers.append({"text": str(value)})
    unique: dict[str, dict[str, Any]] = {}
    for answer in answers:
        unique.setdefault(repr(sorted(answer.items())), answer)
    return list(unique.values())


def _body(pointers: list[str]) -> Any:
    """A JSON body in which every pointer resolves to a sample value."""
    body: Any = {}
    for pointer in pointers:
        tokens = split(pointer)
        if not tokens:
            continue
        node = body
        for i, token in enumerate(tokens):
            last = i == len(tokens) - 1
            if isinstance(node, dict):
                node = node.setdefault(token, f"v:{token}" if last else {})
            else:
                break
    return body


def _fixtures(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    calls = [s for f in spec["flows"] for s in f["steps"] if s["type"] == "apiCall"]
    if not calls:
        return [("no api", {})]
    keys: dict[str, list[str]] = {}
    for call in calls:
        url = call["url"].split("{{", 1)[0]
        keys.setdefault(f"{call['method']} {url}*", []).extend(call.get("map", {}).values())
    ok = {key: {"status": 200, "body": _body(pointers)} for key, pointers in keys.items()}
    return [
        ("api ok", ok),
        ("api 500", {key: {"status": 500} for key in keys}),
        ("api timeout", {key: {"error": "timeout"} for key in keys}),
    ]


def derive_scripts(spec: dict[str, Any], *, answers_per_script: int = 6) -> list[Script]:
    """Conversations covering the spec's routes, asks, branches and API outcomes."""
    answers = _answers(spec)
    scripts: list[Script] = []
    routes = _routes(spec)
    for r, (route_name, route) in enumerate(routes):
        for world, fixture in _fixtures(spec):
            picked = [answers[(r + k) % len(answers)] for k in range(answers_per_script)]
            scripts.append(Script(f"{route_name} · {world}", [route, *picked, route], fixture))
    first = routes[0][1]
    scripts.append(
        Script(
            "time passes",
            [first, {**first, "wait": 1}, {**first, "wait": 3600}, {**first, "wait": 86400 * 400}],
            _fixtures(spec)[0][1],
        )
    )
    return scripts[:MAX_SCRIPTS]
