"""Real ``botkiln serve`` and ``botkiln worker`` processes for the runtime-plane tests.

A ``Cluster`` launches them as subprocesses with an environment of their own (the module's
database, a dedicated Redis database, the test secret key, the stand-in as Telegram) and
keeps each one's stderr in a file, so a failing test can show what the processes said.
Readiness: a server answers ``/healthz`` with 200; a worker has logged that its threads
consume the queues (its runtime is open by then). ``stop`` terminates everything it
started (SIGTERM, then SIGKILL), and ``kill_worker`` is the deliberate crash: SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BOTKILN = Path(sys.executable).with_name("botkiln")
WORKER_READY = "botkiln worker: "
"""The start of the line a worker logs once it consumes its queues."""
START_TIMEOUT_S = 60.0
TAIL_LINES = 40
TASK_DUMP = "asyncio task(s)"
"""What a worker's SIGUSR1 task dump starts with (workers/process.py)."""
_CALL_LOG = "httpx: HTTP Request:"
_SETPRIV = shutil.which("setpriv")
_ORPHAN_GUARD = [_SETPRIV, "--pdeathsig", "KILL"] if _SETPRIV else []
"""Where util-linux is there, a process outlives neither the test run (a runner killed by a CI timeout runs no
teardown) nor, strictly, the thread that launched it: launch from the main thread."""


@dataclass
class Process:
    """One launched process: what it is, its stderr file, and when it was killed on purpose."""

    name: str
    popen: subprocess.Popen[bytes]
    stderr: Path
    url: str = ""
    """A server's base URL."""
    killed_at: float | None = None

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.popen.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time the process used so far (Linux ``/proc``; 0 where there is none)."""
        try:
            fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The last ``lines`` lines of its stderr, without the line a worker logs for each Bot API call."""
        try:
            text = self.stderr.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.splitlines() if _CALL_LOG not in line]
        dump = max((i for i, line in enumerate(kept) if TASK_DUMP in line), default=None)
        if dump is not None and dump < len(kept) - lines:  # the whole task dump, then the tail
            return "\n".join([*kept[dump:][:400], "...", *kept[-lines:]])
        return "\n".join(kept[-lines:])


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    """Servers and workers sharing one environment (``env`` holds the ``BOTKILN_*`` variables)."""

    env: dict[str, str]
    logs: Path
    threads: int = 4
    servers: list[Process] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    retired: list[Process] = field(default_factory=list)
    """Workers killed on purpose (kept for their logs)."""
    _count: int = 0

    def _launch(self, name: str, *args: str) -> Process:
        self._count += 1
        stderr = self.logs / f"{self._count:02d}-{name}.stderr"
        stdout = self.logs / f"{self._count:02d}-{name}.stdout"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("BOTKILN_")}
        environment.update(self.env, PYTHONUNBUFFERED="1")
        environment.setdefault("BOTKILN_METRICS_PORT", "0")  # several workers on one host: no shared port
        with stderr.open("wb") as err, stdout.open("wb") as out:
            popen = subprocess.Popen(
                [*_ORPHAN_GUARD, str(BOTKILN), *args], env=environment, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )
        return Process(name, popen, stderr)

    def launch_server(self) -> Process:
        """Launch ``botkiln serve`` on a free port (``wait_server`` for it)."""
        port = free_port()
        process = self._launch(f"serve-{port}", "serve", "--port", str(port))
        process.url = f"http://127.0.0.1:{port}"
        self.servers.append(process)
        return process

    def wait_server(self, process: Process) -> None:
        """Return once the server answers ``/healthz`` with 200."""
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=2.0) as http:
            while True:
                self._check_started(process, deadline)
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{process.url}/healthz").status_code == 200:
                        return
                time.sleep(0.1)

    def launch_worker(self) -> Process:
        """Launch ``botkiln worker --threads N`` (``wait_worker`` for it)."""
        name = f"worker-{len(self.workers) + len(self.retired) + 1}"
        process = self._launch(name, "worker", "--threads", str(self.threads))
        self.workers.append(process)
        return process

    def wait_worker(self, process: Process) -> None:
        """Return once the worker logged that it consumes its queues (its runtime is open then)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while WORKER_READY not in process.stderr.read_text(errors="replace"):
            self._check_started(process, deadline)
            time.sleep(0.05)

    def start(self, servers: int, workers: int) -> None:
        """Launch ``servers`` servers and ``workers`` workers at once, then wait until all are ready."""
        launched = [self.launch_server() for _ in range(servers)]
        started = [self.launch_worker() for _ in range(workers)]
        for server in launched:
            self.wait_server(server)
        for worker in started:
            self.wait_worker(worker)

    @property
    def urls(self) -> list[str]:
        """The servers' base URLs."""
        return [p.url for p in self.servers]

    def _check_started(self, process: Process, deadline: float) -> None:
        if not process.alive:
            raise RuntimeError(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} did not become ready in {START_TIMEOUT_S}s:\n{process.tail()}")

    def kill_worker(self, process: Process) -> None:
        """SIGKILL ``process`` (no shutdown code runs) and retire it."""
        process.popen.send_signal(signal.SIGKILL)
        process.killed_at = time.time()
        process.popen.wait(timeout=10)
        self.workers.remove(process)
        self.retired.append(process)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each running process, by name."""
        return {p.name: p.cpu_seconds() for p in self.servers + self.workers}

    def dead(self) -> list[Process]:
        """Processes that should be running but exited."""
        return [p for p in self.servers + self.workers if not p.alive]

    def report(self) -> str:
        """Every process's state and the tail of its stderr (for a failure message).

        Running workers are asked first to log their asyncio tasks (SIGUSR1), so a stuck update shows where it waits.
        """
        asked = [p for p in self.workers if p.alive]
        for p in asked:
            with contextlib.suppress(ProcessLookupError):
                p.popen.send_signal(signal.SIGUSR1)
        if asked:
            time.sleep(1.0)
        parts = []
        for p in self.servers + self.workers + self.retired:
            state = "running" if p.alive else f"exited {p.popen.returncode}"
            parts.append(f"--- {p.name} ({state}, pid {p.popen.pid}, {p.stderr}) ---\n{p.tail()}")
        return "\n".join(parts)

    def leaks(self, secret_values: list[str]) -> list[str]:
        """``file:line`` of each line any process (killed ones too) wrote holding one of ``secret_values``."""
        found = []
        for p in self.servers + self.workers + self.retired:
            for path in (p.stderr, p.stderr.with_suffix(".stdout")):
                if not path.exists():
                    continue
                for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if any(value and value in line for value in secret_values):
                        found.append(f"{path.name}:{number}")  # (not the line: it holds the secret)
        return found

    def stop(self, grace_s: float = 8.0) -> None:
        """Terminate every process still running: SIGTERM, then SIGKILL after ``grace_s``."""
        running = [p for p in self.servers + self.workers if p.alive]
        for p in running:
            with contextlib.suppress(ProcessLookupError):
                p.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in running:
            try:
                p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait(timeout=10)
