"""Workers: the control-plane Dramatiq actors (generate, deploy, rollback) and their API side.

Key contracts:

- actors take a task id, never a payload; the ``tasks`` row is the truth, a
  message only wakes a worker, and duplicates are harmless (``workers/attempt.py``);
- ``build_broker(settings)`` makes the broker and declares the actors on it; no
  broker or actor exists at import time;
- a deploy passes preflight, compat, stage, prewarm and health, then flips in one
  compare-and-set transaction; a rollback is a new deployment, never an edit
  (``workers/deploy_policy.py``, docs/deploys.md);
- no task stays "running" after its worker died: leases expire and the recovery
  monitor re-queues or fails it (``workers/recovery.py``);
- progress goes out on Redis pub/sub (``infra/progress.py``).
"""

from botkiln.workers.broker import ControlActors, WorkerResources, build_broker, register_actors
from botkiln.workers.compat import CompatReport, compare_state
from botkiln.workers.enqueue import enqueue_deploy, enqueue_generate, enqueue_rollback
from botkiln.workers.process import serve, start_worker
from botkiln.workers.recovery import Recovered, recover
from botkiln.workers.runtime import Runtime, WorkerOptions, open_runtime

__all__ = [
    "CompatReport",
    "ControlActors",
    "Recovered",
    "Runtime",
    "WorkerOptions",
    "WorkerResources",
    "build_broker",
    "compare_state",
    "enqueue_deploy",
    "enqueue_generate",
    "enqueue_rollback",
    "open_runtime",
    "recover",
    "register_actors",
    "serve",
    "start_worker",
]
