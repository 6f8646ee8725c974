"""``python -m botkiln.workers [--threads N]``: the same as ``botkiln worker``."""

import argparse
import sys

from botkiln.infra.cli_worker import register

parser = argparse.ArgumentParser(prog="python -m botkiln.workers")
register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(["worker", *sys.argv[1:]])
sys.exit(args.handler(args))
