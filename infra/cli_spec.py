"""``botkiln spec validate FILE…`` and ``botkiln spec hash FILE``.

validate: exit 0 all valid, 1 some invalid, 2 some unusable (missing, not JSON);
``--json`` prints one object ``{"files": [{"file", "valid", "errors": [...]}]}``.
hash: prints the sha256 of the canonical JSON (RFC 8785); exit 2 if unusable.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from botkiln.infra.files import load_json
from botkiln.interpreter.canonical import spec_hash
from botkiln.interpreter.errors import UnusableInput
from botkiln.interpreter.validation import validate_spec


def _validate(args: argparse.Namespace) -> int:
    reports: list[dict[str, Any]] = []
    worst = 0
    for path in args.files:
        try:
            spec, size = load_json(path)
        except UnusableInput as exc:
            reports.append({"file": path, "valid": False, "unusable": str(exc), "errors": []})
            worst = 2
            continue
        errors = validate_spec(spec, size=size)
        reports.append({"file": path, "valid": not errors, "errors": [e.as_json() for e in errors]})
        if errors:
            worst = max(worst, 1)
    if args.json:
        print(json.dumps({"files": reports}, ensure_ascii=False, indent=2))
        return worst
    for report in reports:
        if "unusable" in report:
            print(f"{report['unusable']}", file=sys.stderr)
        elif report["valid"]:
            print(f"{report['file']}: valid")
        else:
            count = len(report["errors"])
            print(f"{report['file']}: {count} error{'s' if count != 1 else ''}")
            for e in report["errors"]:
                hint = f"\n    hint: {e['hint']}" if "hint" in e else ""
                print(f"  {e['pointer'] or '/'}: {e['message']} [{e['code']}]{hint}")
    return worst


def _hash(args: argparse.Namespace) -> int:
    try:
        spec, _ = load_json(args.file)
    except UnusableInput as exc:
        print(exc, file=sys.stderr)
        return 2
    print(spec_hash(spec))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``spec`` command group."""
    spec = sub.add_parser("spec", help="validate and hash BotSpec files")
    spec_sub = spec.add_subparsers(dest="spec_command", metavar="SUBCOMMAND")
    spec_sub.required = True
    validate = spec_sub.add_parser(
        "validate",
        help="check BotSpec files against the schema and semantic rules",
        description="Exit codes: 0 all valid, 1 some invalid, 2 some unusable (missing file, not JSON).",
    )
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.set_defaults(handler=_validate)
    hash_ = spec_sub.add_parser("hash", help="print the canonical (RFC 8785) sha256 of a spec")
    hash_.add_argument("file", metavar="FILE")
    hash_.set_defaults(handler=_hash)
