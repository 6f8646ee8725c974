"""``botkiln build`` and ``botkiln conformance``.

build: exit 0 written, 1 the spec is invalid or the build failed a gate (the AST
violations or the divergence are printed), 2 unusable input.
conformance: exit 0 the engines agree, 1 divergence, invalid spec or a bot.js
that does not load, 2 unusable input. Never a traceback or a hang: bot.js runs in
the sandbox with its time, memory and stack limits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from botkiln.generator.generators import GENERATORS, build_generator
from botkiln.generator.revision import BuildFailed, build_revision
from botkiln.infra.files import load_json, parse_json, read_text
from botkiln.infra.settings import SettingsError
from botkiln.interpreter.conformance import Script, check_conformance, derive_scripts
from botkiln.interpreter.errors import SpecInvalid, UnusableInput
from botkiln.interpreter.quickjs import QuickJsEngine, SandboxError
from botkiln.interpreter.validation import validate_spec


def _spec(path: str) -> dict[str, Any]:
    spec, size = load_json(path)
    errors = validate_spec(spec, size=size)
    if errors:
        raise SpecInvalid(errors)
    assert isinstance(spec, dict)
    return spec


def _extra_scripts(args: argparse.Namespace) -> list[Script]:
    if not args.events:
        return []
    events = [
        parse_json(line, f"{args.events}:{n}")
        for n, line in enumerate(read_text(args.events).splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    fixture: dict[str, Any] = {}
    if args.api:
        loaded, _ = load_json(args.api)
        if not isinstance(loaded, dict):
            raise UnusableInput(f"{args.api}: an API fixture must be a JSON object")
        fixture = loaded
    return [Script(Path(args.events).name, events, fixture)]


def _print_invalid(exc: SpecInvalid, path: str) -> None:
    print(f"{path}: the spec is invalid ({len(exc.errors)} errors):", file=sys.stderr)
    for error in exc.errors:
        print(f"  {error}", file=sys.stderr)


def _build(args: argparse.Namespace) -> int:
    try:
        spec = _spec(args.spec)
        generator = build_generator(args.generator)
        revision = build_revision(
            spec,
            generator,
            max_attempts=generator.max_attempts,
            extra_scripts=_extra_scripts(args),
            progress=(lambda m: print(f"  {m}", file=sys.stderr)) if args.verbose else None,
        )
    except SpecInvalid as exc:
        _print_invalid(exc, args.spec)
        return 1
    except BuildFailed as exc:
        print(f"{args.spec}: build failed at {exc.stage} after {len(exc.attempts)} attempt(s):", file=sys.stderr)
        print(exc.detail, file=sys.stderr)
        return 1
    except (UnusableInput, SettingsError) as exc:
        print(exc, file=sys.stderr)
        return 2
    out = Path(args.out)
    revision.write(out)
    conformance = revision.rev["conformance"]
    print(f"revision {revision.rev_hash}")
    print(
        f"  {out}/bot.js ({revision.rev['artifacts']['bot.js']['size']} bytes), spec.json, rev.json; "
        f"conformance: {conformance['scripts']} conversations, {conformance['calls']} calls agreed"
    )
    return 0


def _conformance(args: argparse.Namespace) -> int:
    try:
        spec = _spec(args.spec)
        source = read_text(args.js) if args.js else build_generator("compiler").generate(spec, None)
        scripts = [*_extra_scripts(args), *derive_scripts(spec)]
        engine = QuickJsEngine(source)
    except SpecInvalid as exc:
        _print_invalid(exc, args.spec)
        return 1
    except SandboxError as exc:
        print(f"{args.js or 'bot.js'}: does not load in QuickJS: {exc}", file=sys.stderr)
        return 1
    except UnusableInput as exc:
        print(exc, file=sys.stderr)
        return 2
    report = check_conformance(spec, engine, scripts)
    if report.divergence is not None:
        print(report.divergence.render())
        print(f"FAILED after {report.scripts} conversation(s), {report.calls} call(s)")
        return 1
    print(f"conforms: {report.scripts} conversations, {report.updates} updates, {report.calls} calls identical")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``build`` and ``conformance``."""
    build = sub.add_parser(
        "build",
        help="build a verified revision (bot.js, spec.json, rev.json) from a spec",
        description="Exit codes: 0 built, 1 invalid spec or a failed gate, 2 unusable input.",
    )
    build.add_argument("spec", metavar="SPEC")
    build.add_argument("--out", required=True, metavar="DIR")
    build.add_argument("--generator", choices=sorted(GENERATORS), default="compiler")
    build.add_argument("--events", metavar="EVENTS.jsonl", help="an extra conversation for the conformance gate")
    build.add_argument("--api", metavar="FIXTURE.json", help="API fixture for --events")
    build.add_argument("-v", "--verbose", action="store_true")
    build.set_defaults(handler=_build)

    conformance = sub.add_parser(
        "conformance",
        help="prove a bot.js behaves exactly like the reference interpreter",
        description="Exit codes: 0 identical, 1 divergence / invalid spec / bot.js does not load, 2 unusable input.",
    )
    conformance.add_argument("spec", metavar="SPEC")
    conformance.add_argument("--js", metavar="BOT.js", help="the program to check (default: compile the spec)")
    conformance.add_argument("--events", metavar="EVENTS.jsonl", help="an extra conversation to check")
    conformance.add_argument("--api", metavar="FIXTURE.json", help="API fixture for --events")
    conformance.set_defaults(handler=_conformance)
