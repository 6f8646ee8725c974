"""Helpers of the API tests: a real uvicorn server in a thread, gql clients over HTTP and WebSocket.

``Api`` is one browser: a gql client over HTTP with its own cookie jar that,
like the console, copies the ``botkiln_csrf`` cookie into ``X-CSRF-Token``.
``ProgressWatch`` holds a ``progress`` subscription over graphql-transport-ws in a
thread of its own and queues what arrives. Every body either one receives is
appended to a shared ``transcript`` so tests can check that no secret ever left
the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
import uvicorn
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport
from gql.transport.websockets import WebsocketsTransport
from starlette.types import ASGIApp

from botkiln.infra.redis_keys import PROGRESS_ALL, progress_channel


class ServerThread:
    """``app`` served by uvicorn on a loopback port bound before the app is built (``port`` is known early)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, app: ASGIApp, *, ws_max_size: int = 16 * 1024 * 1024) -> None:
        """Serve ``app``; returns once the lifespan started (or fails if it did not)."""
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", ws_max_size=ws_max_size, server_header=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server at {self.url} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut down gracefully (lifespan shutdown runs)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
        self.sock.close()


@dataclass
class Reply:
    """A GraphQL answer: ``data`` and ``errors`` as the server sent them."""

    data: Any
    errors: list[dict[str, Any]] | None

    @property
    def codes(self) -> list[str | None]:
        """``extensions.code`` of each error."""
        return [(e.get("extensions") or {}).get("code") for e in self.errors or []]

    def ok(self) -> Any:
        """``data``, asserting there were no errors."""
        assert not self.errors, self.errors
        return self.data


@dataclass
class Api:
    """One browser talking to the API over HTTP through gql."""

    base_url: str
    transcript: list[str] = field(default_factory=list)
    origin: str | None = None

    def __post_init__(self) -> None:
        headers = {} if self.origin is None else {"Origin": self.origin}
        self.transport = HTTPXTransport(
            url=f"{self.base_url}/graphql", timeout=30, headers=headers, event_hooks={"response": [self._record]}
        )
        self.client = Client(transport=self.transport)
        self.session = self.client.connect_sync()

    def _record(self, response: Any) -> None:
        response.read()
        self.transcript.append(response.text)
        self.transcript.append(json.dumps(dict(response.headers)))

    @property
    def cookies(self) -> Any:
        """The cookie jar (an ``httpx.Cookies`` of whichever httpx gql runs on)."""
        assert self.transport.client is not None
        return self.transport.client.cookies

    def run(self, query: str, variables: dict[str, Any] | None = None, *, csrf: bool | str = True) -> Reply:
        """Execute; ``csrf`` True sends the cookie's token, a string sends that, False sends none."""
        headers: dict[str, str] = {}
        if csrf is True:
            if self.cookies.get("botkiln_csrf") is None:
                self.run("{ __typename }", csrf=False)
            headers["X-CSRF-Token"] = self.cookies["botkiln_csrf"]
        elif isinstance(csrf, str):
            headers["X-CSRF-Token"] = csrf
        request = GraphQLRequest(query, variable_values=variables)
        try:
            data = self.session.execute(request, extra_args={"headers": headers})
        except TransportQueryError as exc:
            return Reply(exc.data, exc.errors)
        return Reply(data, None)

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close_sync()


def sign_up(api: Api, *, email: str | None = None, password: str = "correct horse battery") -> dict[str, Any]:
    """Create an account on ``api`` (which is then signed in); the viewer."""
    email = email or f"u{secrets.token_hex(5)}@example.com"
    reply = api.run(
        "mutation($e: String!, $p: String!) { signUp(email: $e, password: $p) {"
        " __typename ... on SignedIn { viewer { id email } } ... on Problem { message } } }",
        {"e": email, "p": password},
    ).ok()
    assert reply["signUp"]["__typename"] == "SignedIn", reply
    viewer: dict[str, Any] = reply["signUp"]["viewer"]
    return viewer


def cookie_header(api: Api) -> str:
    """The ``Cookie`` header a browser would send with ``api``'s cookies."""
    return "; ".join(f"{name}={value}" for name, value in api.cookies.items())


PROGRESS = """
subscription($botId: ID) {
  progress(botId: $botId) {
    __typename botId taskId at
    ... on GenerateSucceeded { revHash }
    ... on GenerateFailed { reason }
    ... on DeployProgress { stage }
    ... on DeployFlipped { revHash deploymentId }
    ... on DeployFailed { stage reason }
    ... on RollbackFlipped { revHash deploymentId }
  }
}
"""


class ProgressWatch:
    """A ``progress`` subscription over graphql-transport-ws, consumed in a background thread."""

    def __init__(
        self,
        base_url: str,
        *,
        cookies: str,
        redis_url: str,
        bot_id: str | None = None,
        transcript: list[str] | None = None,
        origin: str | None = None,
    ) -> None:
        self.events: queue.Queue[dict[str, Any] | BaseException] = queue.Queue()
        self._transcript = transcript if transcript is not None else []
        self._url = base_url.replace("http://", "ws://") + "/graphql"
        self._headers = {"Cookie": cookies} | ({} if origin is None else {"Origin": origin})
        self._bot_id = bot_id
        self._redis = redis.Redis.from_url(redis_url)
        self._channel = PROGRESS_ALL if bot_id is None else progress_channel(bot_id)
        self._baseline = self._subscribers()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()

    def _subscribers(self) -> int:
        counts = self._redis.pubsub_numsub(self._channel)
        return int(counts[0][1]) if counts else 0

    def _main(self) -> None:
        asyncio.run(self._consume())

    async def _consume(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        transport = WebsocketsTransport(
            url=self._url, headers=self._headers, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
        )
        try:
            async with Client(transport=transport) as session:
                request = GraphQLRequest(PROGRESS, variable_values={"botId": self._bot_id})
                async for data in session.subscribe(request):
                    self._transcript.append(json.dumps(data))
                    self.events.put(data["progress"])
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # handed to the test thread
            self.events.put(exc)

    def wait_active(self, timeout: float = 10.0) -> None:
        """Return once Redis counts this subscriber (events published from now on reach it)."""
        deadline = time.monotonic() + timeout
        while self._subscribers() <= self._baseline:
            self._raise_if_failed()
            if time.monotonic() > deadline:
                raise AssertionError("the progress subscription did not become active")
            time.sleep(0.01)

    def _raise_if_failed(self) -> None:
        with contextlib.suppress(queue.Empty):
            item = self.events.queue[0] if self.events.queue else None
            if isinstance(item, BaseException):
                raise item

    def next(self, timeout: float = 20.0) -> dict[str, Any]:
        """The next event."""
        item = self.events.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    def until(self, typename: str, *, task_id: str | None = None, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Every event up to and including the first ``typename`` (of ``task_id`` if given)."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(event)
            if event["__typename"] == typename and (task_id is None or event["taskId"] == task_id):
                return seen
            failed = event["__typename"] in ("GenerateFailed", "DeployFailed")
            assert not failed or typename in ("GenerateFailed", "DeployFailed"), f"unexpected failure: {event}"

    def close(self) -> None:
        """End the subscription and the thread."""
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout=10)
        self._redis.close()


@contextlib.contextmanager
def watching(base_url: str, **kwargs: Any) -> Iterator[ProgressWatch]:
    """A ``ProgressWatch`` that is active on entry and closed on exit."""
    watch = ProgressWatch(base_url, **kwargs)
    try:
        watch.wait_active()
        yield watch
    finally:
        watch.close()
