"""A read-only, indexed view of a valid BotSpec, built once per spec.

The engine never walks the raw document on the hot path: flows, steps, default
targets, commands, intents (with their keyword words pre-folded) and variable
declarations are looked up here. Build it only from a spec that validates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from botkiln.interpreter.canonical import normalize
from botkiln.interpreter.text import words

MAX_STATE_BYTES = 65536
DEFAULT_API_RESPONSE_KB = 64


@dataclass(frozen=True)
class StepView:
    """One step, its position and its default ``next`` target."""

    flow: str
    index: int
    raw: dict[str, Any]
    default_next: str

    @property
    def id(self) -> str:
        """The step id."""
        return str(self.raw["id"])

    @property
    def type(self) -> str:
        """The step type."""
        return str(self.raw["type"])

    @property
    def next(self) -> str:
        """Where the step goes on success."""
        return str(self.raw.get("next", self.default_next))


@dataclass(frozen=True)
class FlowView:
    """A flow: its steps in order and by id."""

    id: str
    steps: tuple[StepView, ...]
    by_id: MappingProxyType[str, StepView]

    @property
    def first(self) -> StepView:
        """The step a started flow runs first."""
        return self.steps[0]


@dataclass(frozen=True)
class IntentView:
    """An intent with its keywords per locale as folded word tuples."""

    id: str
    flow: str
    cooldown_ms: int
    keywords: MappingProxyType[str, tuple[tuple[str, ...], ...]]


@dataclass(frozen=True)
class SpecView:
    """Everything the engine needs from a spec, indexed."""

    raw: dict[str, Any]
    bot_id: str
    locales: frozenset[str]
    default_locale: str
    flows: MappingProxyType[str, FlowView]
    commands: MappingProxyType[str, dict[str, Any]]
    intents: tuple[IntentView, ...]
    callbacks: tuple[dict[str, Any], ...]
    fallback: str | None
    vars: MappingProxyType[str, dict[str, Any]]
    var_ttl_ms: MappingProxyType[str, int]
    strings: MappingProxyType[str, dict[str, str]]
    state_ttl_ms: int | None
    max_state_bytes: int
    max_response_bytes: int
    telemetry_enabled: bool
    telemetry_exclude: frozenset[str] = field(default_factory=frozenset)


def _flow_view(raw: dict[str, Any]) -> FlowView:
    steps_raw = raw["steps"]
    steps = tuple(
        StepView(
            flow=raw["id"],
            index=i,
            raw=s,
            default_next=steps_raw[i + 1]["id"] if i + 1 < len(steps_raw) else "#end",
        )
        for i, s in enumerate(steps_raw)
    )
    return FlowView(raw["id"], steps, MappingProxyType({s.id: s for s in steps}))


def _intent_view(raw: dict[str, Any]) -> IntentView:
    keywords = {locale: tuple(words(k) for k in keys) for locale, keys in raw["keywords"].items()}
    return IntentView(
        id=raw["id"],
        flow=raw["flow"],
        cooldown_ms=int(raw.get("cooldownSec", 0)) * 1000,
        keywords=MappingProxyType(keywords),
    )


def _var_ttls(vars_: dict[str, Any], pii_ttl: int | None) -> dict[str, int]:
    ttls: dict[str, int] = {}
    for name, decl in vars_.items():
        if "ttlSec" in decl:
            ttls[name] = int(decl["ttlSec"]) * 1000
        elif decl.get("pii") and pii_ttl is not None:
            ttls[name] = pii_ttl * 1000
    return ttls


def build_view(spec: dict[str, Any]) -> SpecView:
    """Index a valid spec. Behaviour on an invalid spec is undefined.

    The spec's numbers are brought into the engines' number model first (§2.2):
    a literal beyond ±(2**53-1) is the double it denotes, as in JavaScript.
    """
    spec = normalize(spec)
    meta = spec["meta"]
    retention = meta.get("retention", {})
    state = spec.get("state", {})
    vars_ = state.get("vars", {})
    telemetry = spec.get("telemetry", {})
    intents = [(i, _intent_view(raw), raw.get("priority", 0)) for i, raw in enumerate(spec.get("intents", []))]
    intents.sort(key=lambda t: (-t[2], t[0]))
    state_ttl = retention.get("stateTtlSec")
    return SpecView(
        raw=spec,
        bot_id=meta["botId"],
        locales=frozenset(meta["locales"]),
        default_locale=meta["defaultLocale"],
        flows=MappingProxyType({f["id"]: _flow_view(f) for f in spec["flows"]}),
        commands=MappingProxyType({c["command"]: c for c in spec.get("commands", [])}),
        intents=tuple(view for _, view, _ in intents),
        callbacks=tuple(spec.get("callbacks", [])),
        fallback=spec["fallback"]["flow"] if "fallback" in spec else None,
        vars=MappingProxyType(vars_),
        var_ttl_ms=MappingProxyType(_var_ttls(vars_, retention.get("piiTtlSec"))),
        strings=MappingProxyType(spec["localization"]["strings"]),
        state_ttl_ms=int(state_ttl) * 1000 if state_ttl is not None else None,
        max_state_bytes=int(state.get("maxBytes", MAX_STATE_BYTES)),
        max_response_bytes=int(spec.get("security", {}).get("maxApiResponseKB", DEFAULT_API_RESPONSE_KB)) * 1024,
        telemetry_enabled=bool(telemetry.get("enabled", True)),
        telemetry_exclude=frozenset(telemetry.get("exclude", [])),
    )
