"""Revision building: spec -> bot.js through both gates -> immutable artifacts.

A revision is ``bot.js``, ``spec.json`` (canonical) and ``rev.json``. Its
``revHash`` is the sha256 of the canonical JSON of the deterministic build
inputs only: the spec hash, generator kind and version, model, seed, SDK version
and AST rules version (docs/revisions.md). A candidate program becomes a revision
only after it passes the AST policy and the conformance gate; a generator that
can learn (the LLM) gets the violations or the divergence back as feedback and
tries again, and every attempt is kept in the build log.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from botkiln.generator.ast_policy import AST_RULES_VERSION, check_source
from botkiln.generator.url_hosts import spec_url_hosts
from botkiln.interpreter.canonical import canonical_json, spec_hash
from botkiln.interpreter.conformance import Report, check_conformance, derive_scripts
from botkiln.interpreter.conformance.derive import Script
from botkiln.interpreter.errors import BotkilnError, SpecInvalid
from botkiln.interpreter.quickjs import QuickJsEngine, SandboxError
from botkiln.interpreter.templates import secret_names
from botkiln.interpreter.validation import validate_spec

MAX_BOT_JS_BYTES = 1024 * 1024
"""The size cap of a revision's bot.js (a 100-flow spec compiles to ~180 KiB)."""


class Generator(Protocol):
    """Something that writes a bot.js for a spec (the compiler, an LLM)."""

    kind: str
    version: str
    model: str | None
    seed: int | None
    sdk_version: str

    def generate(self, spec: dict[str, Any], feedback: str | None) -> str:
        """A candidate bot.js; ``feedback`` says what was wrong with the last one."""
        ...


class BuildFailed(BotkilnError):
    """No candidate passed both gates; ``stage`` is ``ast-policy``, ``conformance`` or ``generate``."""

    def __init__(self, stage: str, message: str, attempts: list[dict[str, Any]]) -> None:
        super().__init__(f"build failed at {stage}: {message}")
        self.stage = stage
        self.detail = message
        self.attempts = attempts


@dataclass(frozen=True)
class Revision:
    """A built revision: its files (name -> bytes) and metadata."""

    rev_hash: str
    files: dict[str, bytes]
    rev: dict[str, Any]
    log: list[dict[str, Any]] = field(default_factory=list)

    def write(self, out: Path) -> None:
        """Write the artifacts (and ``build-log.json``) into ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            (out / name).write_bytes(data)
        (out / "build-log.json").write_bytes(canonical_json(self.log) + b"\n")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rev_hash(spec: dict[str, Any], generator: Generator) -> str:
    """The revision hash from the deterministic build inputs alone."""
    inputs = {
        "specHash": spec_hash(spec),
        "generator": generator.kind,
        "generatorVersion": generator.version,
        "model": generator.model,
        "seed": generator.seed,
        "sdkVersion": generator.sdk_version,
        "astRulesVersion": AST_RULES_VERSION,
    }
    return _sha(canonical_json(inputs))


def allowed_domains(spec: dict[str, Any]) -> list[str]:
    """What string-literal URLs in this spec's bot.js may name."""
    return sorted({*spec.get("security", {}).get("allowedDomains", []), *spec_url_hosts(spec)})


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None


def _security(spec: dict[str, Any], source: str) -> dict[str, Any]:
    steps = [s for f in spec["flows"] for s in f["steps"]]
    secrets = secret_names(spec)
    return {
        "allowedDomains": spec.get("security", {}).get("allowedDomains", []),
        "apiCallSteps": sum(1 for s in steps if s["type"] == "apiCall"),
        "piiVars": sorted(k for k, v in spec.get("state", {}).get("vars", {}).items() if v.get("pii")),
        "secretsReferenced": secrets,
        "astPolicy": {"rulesVersion": AST_RULES_VERSION, "violations": 0},
        "botJsBytes": len(source.encode("utf-8")),
    }


def _gate(spec: dict[str, Any], source: str, scripts: list[Script]) -> tuple[str, str | None, Report | None]:
    """Run both gates -> (stage reached, failure text or None, conformance report)."""
    policy = check_source(source, allowed_domains=allowed_domains(spec), max_bytes=MAX_BOT_JS_BYTES)
    if not policy.ok:
        return "ast-policy", policy.render(), None
    try:
        engine = QuickJsEngine(source)
    except SandboxError as exc:
        return "conformance", f"bot.js does not load in QuickJS: {exc}", None
    report = check_conformance(spec, engine, scripts)
    if report.divergence is not None:
        return "conformance", report.divergence.render(), report
    return "conformance", None, report


def build_revision(
    spec: dict[str, Any],
    generator: Generator,
    *,
    spec_version: int | None = None,
    max_attempts: int = 1,
    extra_scripts: list[Script] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Revision:
    """Generate, gate and package one revision.

    Raises:
        SpecInvalid: the spec does not validate.
        BuildFailed: no attempt passed the AST policy and conformance.
    """
    errors = validate_spec(spec)
    if errors:
        raise SpecInvalid(errors)
    scripts = [*(extra_scripts or []), *derive_scripts(spec)]
    log: list[dict[str, Any]] = []
    feedback: str | None = None
    stage: str = "generate"
    failure: str | None = "no attempt was made"
    for attempt in range(1, max_attempts + 1):
        if progress:
            progress(f"attempt {attempt}: generating")
        try:
            source = generator.generate(spec, feedback)
        except BotkilnError as exc:
            stage, failure = "generate", str(exc)
            log.append({"attempt": attempt, "stage": stage, "ok": False, "error": failure})
            feedback = None
            continue
        if progress:
            progress(f"attempt {attempt}: AST policy and conformance")
        stage, failure, report = _gate(spec, source, scripts)
        log.append(
            {
                "attempt": attempt,
                "stage": stage,
                "ok": failure is None,
                "error": failure,
                "botJsSha256": _sha(source.encode()),
            }
        )
        if failure is None and report is not None:
            return _package(spec, generator, source, report, spec_version, log)
        feedback = failure
    raise BuildFailed(stage, failure or "unknown", log)


def _package(
    spec: dict[str, Any],
    generator: Generator,
    source: str,
    report: Report,
    spec_version: int | None,
    log: list[dict[str, Any]],
) -> Revision:
    files = {"bot.js": source.encode("utf-8"), "spec.json": canonical_json(spec)}
    revision_hash = rev_hash(spec, generator)
    rev = {
        "revHash": revision_hash,
        "botId": spec["meta"]["botId"],
        "specHash": spec_hash(spec),
        "specVersion": spec_version,
        "artifacts": {name: {"sha256": _sha(data), "size": len(data)} for name, data in sorted(files.items())},
        "build": {
            "generator": generator.kind,
            "generatorVersion": generator.version,
            "model": generator.model,
            "seed": generator.seed,
            "sdkVersion": generator.sdk_version,
            "astRulesVersion": AST_RULES_VERSION,
            "sourceGitSha": _git_sha(),
            "attempts": len(log),
        },
        "security": _security(spec, source),
        "conformance": {
            "scripts": report.scripts,
            "updates": report.updates,
            "calls": report.calls,
        },
    }
    files["rev.json"] = canonical_json(rev)
    return Revision(revision_hash, files, rev, log)
