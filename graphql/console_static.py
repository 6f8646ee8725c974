"""The web console (``web/``, built into ``web/dist`` by ``npm run build``) served by the API.

``console_routes(api_routes)`` is one catch-all route after the API's own: ``GET /`` and
the files of ``web/dist``, and ``index.html`` for any other path without a file extension
(the console's client-side routes, such as ``/bots/faq-bot/spec``). It is empty when
``web/dist`` does not exist, so the API (and its tests) never depend on a built console
(the directory, not its ``index.html``, decides: a rebuild empties it for a moment).
Paths under the API's routes (``/graphql``, ``/healthz``, ``/wh/…``) are never matched:
a ``GET /graphql`` stays a 405 from the API, not the console's page.

Same origin: the console talks to ``/graphql`` on the host that served it, so the session
and ``botkiln_csrf`` cookies apply and no CORS is involved; the WebSocket's ``Origin`` is
the API's own, which ``BOTKILN_CONSOLE_ORIGIN`` must name (default ``http://127.0.0.1:8000``).
Hashed build files (``/assets/…``) are cached for a year; ``index.html`` is revalidated.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "web" / "dist"
"""Where ``npm run build`` puts the console (``web/dist`` of the repository)."""


class ConsoleFiles(StaticFiles):
    """``StaticFiles(html=True)`` with a fallback to ``index.html`` for client-side routes."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            last = path.rsplit("/", 1)[-1]
            if exc.status_code != 404 or "." in last:
                raise
            response = await super().get_response("index.html", scope)
        if path.startswith("assets/") and response.status_code == 200:
            response.headers["cache-control"] = "public, max-age=31536000, immutable"
        else:
            response.headers.setdefault("cache-control", "no-cache")
        return response


class _ConsoleMount(Mount):
    """A mount at ``/`` that leaves the API's paths alone (so their 405s survive)."""

    def __init__(self, app: StaticFiles, reserved: frozenset[str]) -> None:
        super().__init__("", app=app, name="console")
        self._reserved = reserved

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        first = str(scope.get("path", "/")).lstrip("/").split("/", 1)[0]
        if first in self._reserved:
            return Match.NONE, {}
        return super().matches(scope)


def _first_segment(route: BaseRoute) -> str | None:
    if isinstance(route, Route | WebSocketRoute | Mount):
        return route.path.lstrip("/").split("/", 1)[0] or None
    return None


def console_routes(api_routes: Sequence[BaseRoute], directory: Path | None = None) -> list[BaseRoute]:
    """The console's route, to put after ``api_routes``; none when the console is not built.

    ``directory`` defaults to ``BOTKILN_CONSOLE_DIR`` if set, else ``web/dist``.
    """
    if directory is None:
        directory = Path(os.environ.get("BOTKILN_CONSOLE_DIR") or CONSOLE_DIR)
    if not directory.is_dir():
        return []
    reserved = frozenset(s for s in map(_first_segment, api_routes) if s)
    return [_ConsoleMount(ConsoleFiles(directory=directory, html=True), reserved)]
