"""The ``botkiln`` command line.

Each command group lives in its own ``cli_*`` module exposing
``register(subparsers)``; this module only assembles them. Every command returns
an exit code; no command lets a traceback reach the user for bad input.

Exit codes shared by all commands: 0 success, 1 the input was checked and found
wanting (invalid spec, policy violations, divergence), 2 unusable input (missing
file, not JSON, bad arguments).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

# Modules that add sub-commands, in the order they appear in --help.
_COMMAND_MODULES = (
    "botkiln.infra.cli_spec",
    "botkiln.infra.cli_simulate",
    "botkiln.infra.cli_js",
    "botkiln.infra.cli_build",
    "botkiln.infra.cli_db",
    "botkiln.infra.cli_up",
    "botkiln.infra.cli_serve",
    "botkiln.infra.cli_worker",
    "botkiln.infra.cli_analytics",
    "botkiln.infra.cli_dlq",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every registered command group."""
    parser = argparse.ArgumentParser(
        prog="botkiln",
        description="Botkiln: declarative Telegram bots, verified and run.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        module = import_module(name)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``botkiln`` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
