"""The embedded platform: all of Botkiln in one process, with a local Telegram to chat through (DESIGN §8).

``EmbeddedPlatform(state_dir, example="faq")`` starts, in this order:

1. ``EmbeddedServices`` (PostgreSQL, Redis, artifacts, chdb, secret key) and the migrations;
2. the Telegram stand-in on ``127.0.0.1:standin_port``, with the user route below;
3. the analytics drainer (Redis stream -> chdb; only this process opens the chdb directory);
4. a Dramatiq worker in this process (control queue and runtime executors);
5. the API and webhook ingress (``build_app``) on ``127.0.0.1:api_port``;
6. the example bot, through the real control plane: the ``admin@localhost`` user (password in
   ``<state>/admin.txt``, 0600), a project, the bot ``<example>-bot`` with a token the stand-in
   issued (the stand-in forgets tokens with the process, so a restart re-issues and stores one),
   a made-up value for each ``{{secret.NAME}}`` the example's headers name (its apiCalls are
   answered from its fixture, so no real credential is involved), the example spec with
   ``meta.botId`` rewritten, generate and deploy tasks (skipped when the active revision was
   built from this very spec), then ``setWebhook`` to ``{api}/wh/{botId}``.

``stop()`` undoes them in reverse, is idempotent and also runs after a failed ``start()``.
Signals are the process owner's business: ``stop_on_signals()`` makes SIGTERM raise
``Stopped`` in the main thread (SIGINT raises ``KeyboardInterrupt`` anyway), so a ``with``
block or ``finally`` calls ``stop()``; ``stop()`` ignores both signals while it runs.

The user side (``say``) sends what a person types through the stand-in's webhook
delivery, then waits until the chat's queue is empty (every reply to it is sent before
the executor acknowledges an update) or ``timeout_s``; replies that come later are
returned by the next ``say`` in that chat. Typing the label of an inline button of the
chat's latest inline keyboard presses it (a callback query). ``POST /_user/{username}/say``
on the stand-in's port does the same over HTTP (local mode only: the stand-in itself has
no user routes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self
from uuid import UUID

import dramatiq
import httpx
import redis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from botkiln.infra.crypto import SecretBox, new_webhook_secret
from botkiln.infra.db import Pool, bot_secrets, bots, create_pool, projects, revisions, specs, tasks, users
from botkiln.infra.embedded import EmbeddedServices
from botkiln.infra.http_api import HttpApi
from botkiln.infra.redis_keys import PREFIX, ChatQueueKeys
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_api import BotApiClient
from botkiln.infra.telegram_standin import BotApiStandIn, CallRecord, StandInBot
from botkiln.infra.telegram_standin_updates import DEFAULT_CHAT, Update, user_callback, user_command, user_message
from botkiln.interpreter.api_fixture import FixtureApi
from botkiln.interpreter.canonical import spec_hash
from botkiln.interpreter.errors import BotkilnError
from botkiln.interpreter.host import ApiPerformer
from botkiln.interpreter.templates import secret_names
from botkiln.workers.active import ActiveBot

__all__ = [
    "ADMIN_EMAIL", "EXAMPLES_DIR", "USER_ROUTE", "EmbeddedPlatform", "PlatformError", "Stopped", "example_spec",
    "render", "stop_on_signals",
]  # fmt: skip

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
ADMIN_EMAIL = "admin@localhost"
USER_ROUTE = "/_user/{username}/say"
_REPLY_METHODS = {"sendMessage", "sendPhoto", "sendDocument", "editMessageText", "editMessageReplyMarkup",
                  "answerCallbackQuery"}  # fmt: skip
_log = logging.getLogger(__name__)


class PlatformError(BotkilnError):
    """The platform could not start: a port in use, an unknown example, a failed deploy."""


class Stopped(BaseException):
    """SIGTERM arrived (raised in the main thread by ``stop_on_signals``)."""


def example_spec(example: str) -> tuple[str, dict[str, Any]]:
    """``(name, spec)`` of ``examples/<example>.json`` or of a spec file path.

    Raises:
        PlatformError: no such example or file, or not a JSON object.
    """
    path = Path(example) if example.endswith(".json") or os.sep in example else EXAMPLES_DIR / f"{example}.json"
    try:
        spec = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        known = ", ".join(sorted(p.stem for p in EXAMPLES_DIR.glob("*.json")))
        raise PlatformError(f"no example {example!r} (looked for {path}); examples: {known}") from None
    except (OSError, ValueError) as exc:
        raise PlatformError(f"{path} is not a readable JSON spec: {exc}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("meta"), dict):
        raise PlatformError(f"{path} is not a BotSpec (a JSON object with meta)")
    name = re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_") or "example"
    return name, spec


class _Served:
    """An ASGI app served by uvicorn from a thread, on a loopback socket bound at construction."""

    def __init__(self, port: int, what: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind(("127.0.0.1", port))
        except OSError as exc:
            self.sock.close()
            raise PlatformError(
                f"cannot serve the {what} on 127.0.0.1:{port} ({exc.strerror}); pick another port"
            ) from None
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, app: ASGIApp, *, ws_max_size: int = 1 << 20) -> None:
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, server_header=False,
                                ws_max_size=ws_max_size, timeout_graceful_shutdown=5)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise PlatformError(f"the server at {self.url} did not start; see the log")
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut down gracefully (lifespan shutdown runs); closes the socket. Idempotent."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
        self._server = self._thread = None
        self.sock.close()


class EmbeddedPlatform:
    """API, ingress, workers, analytics and a local Telegram with one deployed example bot."""

    def __init__(
        self,
        state_dir: str | Path = "var/embedded",
        *,
        example: str = "faq",
        api_port: int = 8000,
        standin_port: int = 8081,
        threads: int = 4,
        deploy_timeout_s: float = 180.0,
    ) -> None:
        self.example, self.spec = example_spec(example)
        self.state_dir = Path(state_dir).absolute()
        self.api_port, self.standin_port, self.threads = api_port, standin_port, threads
        self.deploy_timeout_s = deploy_timeout_s
        self.bot_id = f"{self.example.replace('_', '-')}-bot"
        self.spec["meta"]["botId"] = self.bot_id
        self.services = EmbeddedServices(self.state_dir)
        self._fixture_apis: dict[str, FixtureApi] = {}
        self.standin = BotApiStandIn()
        self.admin_password: str | None = None
        """The admin's password when this start created (or reset) it, else None (it is in admin.txt)."""
        self.rev_hash: str | None = None
        self._settings: Settings | None = None
        self._bot: StandInBot | None = None
        self._stops: list[Callable[[], None]] = []
        self._redis: redis.Redis | None = None
        self._lock = threading.Lock()
        self._cursor: dict[int, int] = {}
        self._inline: dict[int, dict[str, tuple[str, int]]] = {}
        self._callbacks: dict[int, set[str]] = {}

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> Self:
        """Start everything and deploy the example bot (see the module docstring).

        Raises:
            PlatformError: a port is taken, or the bot could not be generated or deployed.
            EmbeddedError: an embedded service did not start (``StateDirInUse``: another owner).
        """
        if self._stops:
            return self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from botkiln.graphql.app import WS_MAX_MESSAGE_BYTES, build_app
        from botkiln.workers import WorkerOptions, build_broker, start_worker

        self.standin = BotApiStandIn()  # a fresh Telegram each start: it lives in memory
        self._cursor, self._inline, self._callbacks = {}, {}, {}
        self.services.start()
        self._stops.append(self.services.stop)
        asyncio.run(self.services.migrate())
        standin_server = self._serve(self.standin_port, "Telegram stand-in")
        api_server = self._serve(self.api_port, "API")
        self.standin.url = standin_server.url
        self._started(standin_server, self.user_app())
        self._settings = settings = Settings.from_env({
            **os.environ, **self.services.env(), "BOTKILN_TELEGRAM_API_URL": standin_server.url,
            "BOTKILN_PUBLIC_URL": api_server.url, "BOTKILN_CONSOLE_ORIGIN": api_server.url,
            "BOTKILN_APICALL_PRIVATE_OK": "true",
        })  # fmt: skip
        self._redis = redis.Redis.from_url(settings.redis_url)
        self._stops.append(self._redis.close)
        self._start_drainer(settings)
        broker = build_broker(settings, options=WorkerOptions(api_performer=self._api_for))
        self._stops.append(broker.close)
        worker = start_worker(broker, threads=self.threads)
        self._stops.append(lambda: worker.stop(timeout=15_000))
        self._started(api_server, build_app(settings, broker=broker), ws_max_size=WS_MAX_MESSAGE_BYTES)
        asyncio.run(self._provision(broker))

    def _api_for(self, bot: ActiveBot) -> ApiPerformer:
        """The example's apiCalls answered from ``examples/fixtures/<example>.api.json`` (its hosts are made up)."""
        fixture_path = EXAMPLES_DIR / "fixtures" / f"{self.example}.api.json"
        if bot.bot_id == self.bot_id and fixture_path.is_file():
            cached = self._fixture_apis.get(bot.rev_hash)
            if cached is None:
                fixture = json.loads(fixture_path.read_text("utf-8"))
                cached = self._fixture_apis[bot.rev_hash] = FixtureApi.for_spec(fixture, bot.spec)
            return cached
        return HttpApi.for_spec(bot.spec)

    def _serve(self, port: int, what: str) -> _Served:
        server = _Served(port, what)
        self._stops.append(server.stop)  # closes the socket if it never serves
        return server

    def _started(self, server: _Served, app: ASGIApp, *, ws_max_size: int = 1 << 20) -> None:
        self._stops.append(server.stop)  # and stops it in its turn once it does
        server.start(app, ws_max_size=ws_max_size)

    def _start_drainer(self, settings: Settings) -> None:
        # The one call site of the analytics drainer: this process owns the chdb directory.
        from botkiln.infra.analytics_relay import start_drainer_thread

        stop = threading.Event()
        thread = start_drainer_thread(settings, stop)

        def stop_drainer() -> None:
            stop.set()
            thread.join(timeout=15)

        self._stops.append(stop_drainer)

    def stop(self) -> None:
        """Stop everything started, newest first; safe to call again. SIGINT/SIGTERM wait meanwhile."""
        if not self._stops:
            return
        with _signals_ignored():
            while self._stops:
                step = self._stops.pop()
                try:
                    step()
                except Exception:
                    _log.exception("stopping the embedded platform: %r failed", step)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what tests, benchmarks and the CLI use ------------------------------

    @property
    def settings(self) -> Settings:
        """The settings the API and the workers run with."""
        if self._settings is None:
            raise PlatformError("the platform is not started")
        return self._settings

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:<api_port>``: GraphQL at ``/graphql``, webhooks at ``/wh/{botId}``."""
        return self.settings.public_url

    @property
    def standin_url(self) -> str:
        """The local Telegram: the Bot API at ``/bot<token>/<method>``, the user route at ``/_user/...``."""
        return self.settings.telegram_api_url

    @property
    def bot(self) -> StandInBot:
        """The example bot as the stand-in knows it (``standin.calls(bot)`` lists what it called)."""
        if self._bot is None:
            raise PlatformError("the platform is not started")
        return self._bot

    @property
    def token(self) -> str:
        """The bot's Telegram token (issued by the stand-in for this run)."""
        return self.bot.token

    @property
    def admin_file(self) -> Path:
        """Where the admin's email and password are kept (0600)."""
        return self.state_dir / "admin.txt"

    # -- provisioning --------------------------------------------------------

    async def _provision(self, broker: dramatiq.Broker) -> None:
        settings, box = self.settings, self.settings.secret_box()
        assert settings.database_url is not None
        pool = await create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            user_id = await self._admin(pool)
            found = [a.project for a in await projects.list_projects(pool, user_id) if a.project.name == "Local"]
            project = found[0] if found else await projects.create_project(pool, name="Local", owner_id=user_id)
            name = str(self.spec["meta"].get("name") or self.bot_id)
            self._bot = bot = self.standin.register(username=f"{self.example}_bot"[-32:], first_name=name[:64])
            async with httpx.AsyncClient() as http:
                api = BotApiClient(http, bot.token, base_url=settings.telegram_api_url)
                me = await api.get_me()
                existing = await bots.get_bot(pool, self.bot_id)
                if existing is None:
                    secret = new_webhook_secret()
                    made = await bots.create_bot(
                        pool, box, bot_id=self.bot_id, project_id=project.id, name=name[:128], token=bot.token,
                        webhook_secret=secret, created_by=user_id, telegram_bot_id=me.id, telegram_username=me.username,
                    )  # fmt: skip
                    if not isinstance(made, bots.Bot):
                        raise PlatformError(f"cannot create bot {self.bot_id}: {made}")
                else:
                    await bots.set_token(
                        pool, box, self.bot_id, bot.token, telegram_bot_id=me.id, telegram_username=me.username
                    )
                    known = await bots.decrypt_webhook_secret(pool, box, self.bot_id)
                    secret = known or new_webhook_secret()
                    if known is None:
                        await bots.set_webhook_secret(pool, box, self.bot_id, secret)
                await self._demo_secrets(pool, box, user_id)
                self.rev_hash = await self._deploy(pool, broker, user_id)
                await api.set_webhook(f"{settings.public_url}/wh/{self.bot_id}", secret_token=secret)
        finally:
            await pool.close()

    async def _demo_secrets(self, pool: Pool, box: SecretBox, user_id: UUID) -> None:
        """A made-up value for each secret the example's headers name and the bot lacks (its apiCalls are fixtures)."""
        for name in await bot_secrets.missing_secrets(pool, self.bot_id, secret_names(self.spec)):
            await bot_secrets.set_secret(
                pool, box, self.bot_id, name, f"demo-{secrets.token_hex(8)}", updated_by=user_id
            )

    async def _admin(self, pool: Pool) -> UUID:
        """The admin's id; a new password (written to admin.txt and kept in ``admin_password``) if none is known."""
        user = await users.find_user(pool, ADMIN_EMAIL)
        if user is not None and self.admin_file.exists():
            return user.id
        password = secrets.token_urlsafe(15)
        if user is None:
            made = await users.create_user(pool, email=ADMIN_EMAIL, password=password, display_name="Admin")
            assert isinstance(made, users.User)
            user = made
        else:
            await users.set_password(pool, user.id, password)
        tmp = self.admin_file.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
            out.write(f"email: {ADMIN_EMAIL}\npassword: {password}\n")
        tmp.replace(self.admin_file)
        self.admin_password = password
        return user.id

    async def _deploy(self, pool: Pool, broker: dramatiq.Broker, user_id: UUID) -> str:
        """The active revision, generated and deployed first unless it was built from this spec."""
        from botkiln.workers import enqueue_deploy, enqueue_generate

        digest = spec_hash(self.spec)
        bot = await bots.get_bot(pool, self.bot_id)
        active = None if bot is None or bot.active_rev is None else bot.active_rev
        if active is not None:
            record = await revisions.get_revision(pool, self.bot_id, active)
            if record is not None and record.spec_hash == digest:
                return active
        latest = await specs.get_spec_version(pool, self.bot_id)
        version = None if latest is None or latest.spec_hash != digest else latest.version
        if version is None:
            saved = await specs.save_spec_version(
                pool, self.bot_id, self.spec, 0 if latest is None else latest.version, author_id=user_id,
                message=f"botkiln up: {self.example}",
            )  # fmt: skip
            if not isinstance(saved, specs.SpecSaved):
                raise PlatformError(f"cannot save the spec of {self.bot_id}: {saved}")
            version = saved.version.version
        generated = await enqueue_generate(
            pool, broker, bot_id=self.bot_id, spec_version=version, user_id=user_id, idempotency_key=None
        )
        rev_hash = str((await self._finished(pool, generated, "generate")).result["revHash"])
        if rev_hash != active:
            deployed = await enqueue_deploy(
                pool, broker, bot_id=self.bot_id, rev_hash=rev_hash, user_id=user_id, idempotency_key=None
            )
            await self._finished(pool, deployed, "deploy")
        return rev_hash

    async def _finished(self, pool: Pool, task: object, what: str) -> tasks.Task:
        if not isinstance(task, tasks.Task):
            raise PlatformError(f"{what} of {self.bot_id} was not queued: {task}")
        deadline = time.monotonic() + self.deploy_timeout_s
        while True:
            found = await tasks.get_task(pool, task.id)
            if found is not None and found.status == "succeeded":
                return found
            if found is not None and found.status == "failed":
                raise PlatformError(f"{what} of {self.bot_id} failed: {found.error}")
            if time.monotonic() > deadline:
                raise PlatformError(f"{what} of {self.bot_id} did not finish in {self.deploy_timeout_s:g} s")
            await asyncio.sleep(0.05)

    # -- the user side -------------------------------------------------------

    def say(self, text: str, *, chat_id: int = DEFAULT_CHAT, timeout_s: float = 10.0) -> list[str]:
        """Send ``text`` as the user of ``chat_id`` (a command if it starts with ``/``, a button press if it
        is a label of the chat's latest inline keyboard); the bot's replies, rendered (see ``render``).

        Raises:
            PlatformError: the webhook did not accept the update.
        """
        bot, queue = self.bot, ChatQueueKeys(PREFIX).chat(f"{self.bot_id}:{chat_id}")
        assert self._redis is not None
        with self._lock:
            delivery = self.standin.send_update(bot, self._update_for(chat_id, text))
            if not delivery.delivered:
                raise PlatformError(f"the webhook did not accept the update (attempts: {delivery.attempts})")
            if "callback_query" in delivery.update:
                self._callbacks.setdefault(chat_id, set()).add(delivery.update["callback_query"]["id"])
            deadline = time.monotonic() + timeout_s
            while self._redis.llen(queue) and time.monotonic() < deadline:
                time.sleep(0.02)
            return [shown for record in self._replies(chat_id) if (shown := render(record))]

    def _update_for(self, chat_id: int, text: str) -> Update:
        pressed = self._inline.get(chat_id, {}).get(text.strip().casefold())
        if pressed is not None:
            return user_callback(pressed[0], pressed[1], chat_id=chat_id)
        return user_command(text, chat_id=chat_id) if text.startswith("/") else user_message(chat_id, text)

    def _replies(self, chat_id: int) -> list[CallRecord]:
        """The bot's successful calls to ``chat_id`` since the last look; remembers its latest inline keyboard."""
        records = list(self.bot.records)
        start, self._cursor[chat_id] = self._cursor.get(chat_id, 0), len(records)
        callbacks = self._callbacks.get(chat_id, set())
        mine = [
            r for r in records[start:]
            if r.ok and r.method in _REPLY_METHODS
            and (str(r.params.get("chat_id")) == str(chat_id) or r.params.get("callback_query_id") in callbacks)
        ]  # fmt: skip
        for record in mine:
            rows = _markup(record.params).get("inline_keyboard")
            if rows and isinstance(record.result, dict):
                message_id = int(record.result["message_id"])
                self._inline[chat_id] = {
                    b["text"].strip().casefold(): (b["callback_data"], message_id)
                    for row in rows for b in row if "callback_data" in b
                }  # fmt: skip
        return mine

    def user_app(self) -> Starlette:
        """The stand-in's app plus ``POST /_user/{username}/say`` (``{"text", "chat_id"?}`` -> ``{"replies"}``)."""
        return Starlette(routes=[Route(USER_ROUTE, self._user_say, methods=["POST"]), Mount("/", app=self.standin.app)])

    async def _user_say(self, request: Request) -> JSONResponse:
        if self._bot is None or request.path_params["username"] != self._bot.username:
            return JSONResponse({"ok": False, "description": "no such bot on this platform"}, status_code=404)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        text = body.get("text") if isinstance(body, dict) else None
        chat_id = body.get("chat_id", DEFAULT_CHAT) if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip() or not isinstance(chat_id, int) or isinstance(chat_id, bool):
            return JSONResponse({"ok": False, "description": 'send {"text": "...", "chat_id": 1001}'}, status_code=400)
        try:
            replies = await asyncio.to_thread(self.say, text, chat_id=chat_id)
        except PlatformError as exc:
            return JSONResponse({"ok": False, "description": str(exc)}, status_code=502)
        return JSONResponse({"ok": True, "replies": replies})

    def __repr__(self) -> str:
        return f"EmbeddedPlatform({str(self.state_dir)!r}, example={self.example!r}, running={bool(self._stops)})"


def _markup(params: dict[str, Any]) -> dict[str, Any]:
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        with contextlib.suppress(ValueError):
            markup = json.loads(markup)
    return markup if isinstance(markup, dict) else {}


def render(record: CallRecord) -> str | None:
    """One bot call as a terminal shows it: the text (``[photo: URL] caption``, ``(callback answer)``),
    then one line per button row: ``[label]``, or ``[label -> URL]`` for a link; None if nothing to show."""
    params, method = record.params, record.method
    lines: list[str] = []
    if method in ("sendMessage", "editMessageText"):
        lines.append(str(params.get("text", "")))
    elif method in ("sendPhoto", "sendDocument"):
        kind = "photo" if method == "sendPhoto" else "document"
        lines.append(f"[{kind}: {params.get(kind)}]" + (f" {params['caption']}" if params.get("caption") else ""))
    elif method == "answerCallbackQuery" and params.get("text"):
        lines.append(f"({params['text']})")
    markup = _markup(params)
    for row in markup.get("inline_keyboard") or markup.get("keyboard") or []:
        labels = [b if isinstance(b, str) else b["text"] + (f" -> {b['url']}" if "url" in b else "") for b in row]
        lines.append(" ".join(f"[{label}]" for label in labels))
    return "\n".join(lines) or None


def stop_on_signals() -> None:
    """From now on SIGTERM raises ``Stopped`` in the main thread (SIGINT raises ``KeyboardInterrupt``)."""

    def stopped(signum: int, frame: FrameType | None) -> None:
        raise Stopped(signum)

    signal.signal(signal.SIGTERM, stopped)
    signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
