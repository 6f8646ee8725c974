"""A real worker process for the crash tests: ``python -m tests.workers.crash_worker``.

It is the production ``serve`` with one observation hook: while ``--pause-file``
exists, every deploy stops at ``--pause-at`` (after recording that the stage
started) and waits there, renewing its lease, until the process is killed.
Settings come from the environment (``BOTKILN_DATABASE_URL``, ``BOTKILN_ARTIFACTS``,
``BOTKILN_REDIS_URL``); its recovery monitor is off, so only the test's other
worker recovers what this one leaves behind.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from botkiln.infra.settings import Settings
from botkiln.workers import WorkerOptions, serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--pause-file", required=True, type=Path)
    parser.add_argument("--pause-at", default="health")
    parser.add_argument("--lease", type=float, default=1.0)
    args = parser.parse_args()

    async def pause(stage: str, deployment_id: int) -> None:
        if stage == args.pause_at and args.pause_file.exists():
            logging.getLogger("crash_worker").info("deployment %d paused at %s", deployment_id, stage)
            await asyncio.sleep(3600)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = WorkerOptions(lease_s=args.lease, recovery_interval_s=0, stage_hook=pause)
    serve(Settings.from_env(), threads=2, options=options, namespace=args.namespace)


if __name__ == "__main__":
    main()
