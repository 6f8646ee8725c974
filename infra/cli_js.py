"""``botkiln js check FILE [--spec SPEC] [--json] [--max-bytes N]``: the AST policy on a file.

Exit codes: 0 the file passes; 1 policy violations (all listed, sorted by line and column,
each ``FILE:LINE:COL: rule-id: message`` with the source line and a caret); 2 unusable input
(missing or non-UTF-8 file, unreadable or non-JSON spec, a malformed allow-list) or a file
that does not parse as a JavaScript script (``FILE:LINE:COL: parse-error: message``).

``--spec`` takes the URL allow-list from the spec's ``/security/allowedDomains`` (absent:
empty). ``--json`` prints one object: ``{"file", "ok", "rulesVersion", "violations",
"parseError"}``, or ``{"file", "ok": false, "rulesVersion", "error"}`` for unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from botkiln.generator.ast_policy import AST_RULES_VERSION, DEFAULT_MAX_BYTES, check_source
from botkiln.generator.url_hosts import spec_url_hosts
from botkiln.infra.files import load_json, read_text
from botkiln.interpreter.errors import UnusableInput


def _allowed_domains(spec_path: str) -> list[str]:
    """``/security/allowedDomains`` of the spec at ``spec_path``.

    Raises:
        UnusableInput: the spec is unreadable, not JSON, or the list is malformed.
    """
    spec, _ = load_json(spec_path)
    if not isinstance(spec, dict):
        raise UnusableInput(f"{spec_path}: a spec must be a JSON object")
    security: Any = spec.get("security", {})
    domains: Any = security.get("allowedDomains", []) if isinstance(security, dict) else None
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise UnusableInput(f"{spec_path}: /security/allowedDomains must be a list of strings")
    # The same list the build gate uses: the allow-list plus hosts the spec itself names.
    return sorted({*domains, *spec_url_hosts(spec)})


def _check(args: argparse.Namespace) -> int:
    try:
        domains = _allowed_domains(args.spec) if args.spec else []
        source = read_text(args.file)
    except UnusableInput as exc:
        if args.json:
            error = {"file": args.file, "ok": False, "rulesVersion": AST_RULES_VERSION}
            print(json.dumps({**error, "error": str(exc)}, ensure_ascii=False, indent=2))
        else:
            print(f"botkiln js check: {exc}", file=sys.stderr)
        return 2
    report = check_source(source, allowed_domains=domains, max_bytes=args.max_bytes)
    if args.json:
        print(json.dumps({"file": args.file, **report.as_json()}, ensure_ascii=False, indent=2))
    else:
        print(report.render(args.file))
    return 0 if report.ok else 2 if report.parse_error else 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``js`` command group."""
    js = sub.add_parser("js", help="check bot.js files against the AST policy")
    js_sub = js.add_subparsers(dest="js_command", metavar="SUBCOMMAND")
    js_sub.required = True
    check = js_sub.add_parser(
        "check",
        help="check one bot.js against the AST policy (docs/ast-policy.md)",
        description="Exit codes: 0 passes, 1 policy violations, "
        "2 unusable input or not parsable as a JavaScript script.",
    )
    check.add_argument("file", metavar="FILE", help="the bot.js to check")
    check.add_argument("--spec", metavar="SPEC", help="BotSpec JSON whose /security/allowedDomains allow URLs")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument(
        "--max-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"size cap in UTF-8 bytes (default {DEFAULT_MAX_BYTES})",
    )
    check.set_defaults(handler=_check)
