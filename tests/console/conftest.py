"""The console in a real headless Chromium against the real platform, all on loopback.

One module gets: a fresh migrated database, its own Redis key prefix and Dramatiq
namespace (deleted afterwards), the Telegram stand-in, the API app serving the built
console (``web/dist``, see ``graphql/console_static.py``) on one origin, and an
in-process Dramatiq worker running generate, deploy, rollback and the bots' chats.
The browser is Debian's Chromium driven by Playwright (``scripts/browser`` installs it).

Chromium or a built console that is missing fails the tests (CI must not go green by
skipping them); locally, ``BOTKILN_ALLOW_SKIP=1`` turns that into a skip (never when
``CI`` is set). ``BOTKILN_CHROMIUM`` names another Chromium binary.

Screenshots of the main screens go to ``test-artifacts/console/`` (gitignored), and
a failing test leaves one of the page as it was (``FAILED-<test>.png``).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import dramatiq
import pytest
from playwright.sync_api import Browser, BrowserContext, Error, Page, Playwright, expect, sync_playwright

from botkiln.graphql.app import WS_MAX_MESSAGE_BYTES, build_app
from botkiln.graphql.console_static import CONSOLE_DIR
from botkiln.infra.crypto import generate_secret_key
from botkiln.infra.settings import Settings
from botkiln.infra.telegram_standin import BotApiStandIn
from botkiln.workers import WorkerOptions, build_broker, start_worker
from tests.graphql.support import ServerThread
from tests.services import delete_keys
from tests.workers.runtime_support import served_standin

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM = os.environ.get("BOTKILN_CHROMIUM", "/usr/bin/chromium")
WAIT_MS = 20_000
"""How long an ``expect`` or an action waits for the page (a loaded 2-core CI machine is slow, never stuck)."""


def cannot_run(message: str) -> NoReturn:
    """Fail (locally, with BOTKILN_ALLOW_SKIP=1 and no CI, skip) saying why the browser tests cannot run."""
    if os.environ.get("BOTKILN_ALLOW_SKIP") == "1" and not os.environ.get("CI"):
        pytest.skip(message)
    pytest.fail(message)


def console_dir() -> Path:
    """The built console the app serves (``BOTKILN_CONSOLE_DIR`` or ``web/dist``)."""
    return Path(os.environ.get("BOTKILN_CONSOLE_DIR") or CONSOLE_DIR)


# --- the platform ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_console(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of ``web/dist``, which must hold a built console.

    The module serves its own copy, so a rebuild of ``web/dist`` meanwhile (``npm run build``
    empties it first) cannot pull files from under a running test.
    """
    where = console_dir()
    if not (where / "index.html").is_file():
        cannot_run(f"the console is not built ({where}/index.html is missing): scripts/install builds it (npm in web/)")
    snapshot = tmp_path_factory.mktemp("console") / "dist"
    shutil.copytree(where, snapshot)
    index = (snapshot / "index.html").read_text() if (snapshot / "index.html").is_file() else ""
    missing = [ref for ref in re.findall(r'(?:src|href)="/(assets/[^"]+)"', index) if not (snapshot / ref).is_file()]
    if not index or missing:
        pytest.fail(f"{where} is incomplete (missing {missing or 'index.html'}): was it being rebuilt?")
    return snapshot


@pytest.fixture(scope="module")
def prefix() -> str:
    """The module's Redis key prefix (sessions, chat queues, outbound) for the API and the worker alike."""
    return f"botkiln-test-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def standin() -> Iterator[BotApiStandIn]:
    """The Bot API stand-in on a loopback port (``standin.url``)."""
    made, server = served_standin()
    yield made
    server.stop()


@pytest.fixture(scope="module")
def api_server() -> Iterator[ServerThread]:
    """The API's socket, bound early: its origin is the console's origin and the webhooks' public URL."""
    server = ServerThread()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def settings(
    database: str, tmp_path_factory: pytest.TempPathFactory, redis_url: str, standin: BotApiStandIn,
    api_server: ServerThread, prefix: str,
) -> Iterator[Settings]:  # fmt: skip
    """The module's services; the console is served by the API, so its origin is the API's."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    yield Settings(
        database_url=database,
        artifacts_url=f"file://{artifacts}",
        redis_url=redis_url,
        secret_key=generate_secret_key(),
        console_origin=api_server.url,
        public_url=api_server.url,
        telegram_api_url=standin.url,
        outbound_rates=(("bot_per_s", 1000.0), ("chat_per_s", 200.0)),
        executor_lease_ms=2000,
    )
    delete_keys(redis_url, f"{prefix}:*")


@pytest.fixture(scope="module")
def broker(settings: Settings, redis_url: str, prefix: str) -> Iterator[dramatiq.Broker]:
    """The module's broker on its own Dramatiq namespace; the runtime plane under the module's prefix."""
    namespace = f"botkiln-test-{secrets.token_hex(4)}"
    options = WorkerOptions(
        lease_s=2.0, lock_wait_s=30.0, recovery_interval_s=0.25, stale_queued_s=3.0,
        redis_prefix=prefix, pump_interval_s=0.2, active_ttl_s=0.5,
    )  # fmt: skip
    made = build_broker(settings, options=options, namespace=namespace)
    yield made
    made.close()
    delete_keys(redis_url, f"{namespace}:*")


@pytest.fixture(scope="module")
def base_url(
    settings: Settings, broker: dramatiq.Broker, api_server: ServerThread, prefix: str, built_console: Path
) -> str:
    """The running API, which serves the console at ``/``."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BOTKILN_CONSOLE_DIR", str(built_console))
        app = build_app(settings, broker=broker, redis_prefix=f"{prefix}:")
    api_server.start(app, ws_max_size=WS_MAX_MESSAGE_BYTES)
    return api_server.url


@pytest.fixture(scope="module")
def worker(broker: dramatiq.Broker, base_url: str) -> Iterator[dramatiq.Worker]:
    """An in-process worker: generate, deploy, rollback and the bots' chats really run."""
    running = start_worker(broker, threads=4, timeout_ms=100)
    yield running
    running.stop(timeout=10_000)


# --- the browser -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright(worker: dramatiq.Worker) -> Iterator[Playwright]:
    """Playwright's driver (the pip package's own; it downloads nothing).

    Started after the platform and stopped before it: while it runs, this thread has an
    event loop, so ``asyncio.run`` (the database fixtures') would refuse to run here.
    """
    with sync_playwright() as made:
        yield made


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium (Debian's, ``scripts/browser``)."""
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        cannot_run(f"Chromium is missing at {CHROMIUM}: scripts/browser installs it (apt-get install chromium)")
    try:
        made = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking"],
        )  # fmt: skip
    except Error as exc:
        cannot_run(f"Chromium at {CHROMIUM} did not start: {exc}")
    yield made
    made.close()


@dataclass
class Console:
    """The console as one person sees it: a browser context of their own (cookies) and its page."""

    base_url: str
    context: BrowserContext
    page: Page
    errors: list[str]
    """Uncaught exceptions of the page."""
    log: list[str]
    """What the page wrote to the browser's console (shown when the test fails)."""

    def goto(self, path: str) -> None:
        """Open ``path`` of the console (served by the API from ``web/dist``)."""
        response = self.page.goto(f"{self.base_url}{path}")
        assert response is not None and response.ok, (
            f"GET {path} answered {response and response.status}: is web/dist being rebuilt meanwhile?"
        )

    def shot(self, name: str) -> None:
        """A full-page screenshot, ``test-artifacts/console/<name>.png``."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.evaluate("window.scrollTo(0, 0)")  # else the sticky top bar is drawn mid-page
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so the ``console`` fixture knows whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def open_console(
    browser: Browser, base_url: str, worker: dramatiq.Worker, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Console]]:
    """Opens consoles (one browser context each); uncaught page errors fail the test, a failure leaves screenshots."""
    opened: list[Console] = []

    def make() -> Console:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
        context.set_default_timeout(WAIT_MS)
        context.set_default_navigation_timeout(2 * WAIT_MS)
        page = context.new_page()
        errors: list[str] = []
        log: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"{exc.name}: {exc.message}"))
        page.on("console", lambda message: log.append(f"{message.type}: {message.text}"))
        made = Console(base_url, context, page, errors, log)
        opened.append(made)
        return made

    expect.set_options(timeout=WAIT_MS)
    yield make
    report = getattr(request.node, "report_call", None)
    failed = report is not None and report.failed
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    for i, console in enumerate(opened):
        if failed:
            with contextlib.suppress(Error):
                console.shot(f"FAILED-{name}-{i}")
            print(f"browser console of page {i}:", *console.log, sep="\n  ")
        console.context.close()
    errors = [e for console in opened for e in console.errors]
    assert not errors, f"the console threw: {errors}"
