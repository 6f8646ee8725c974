"""Scripted apiCall results for reproducible runs (``--api FIXTURE.json``).

A fixture is a JSON object mapping ``"METHOD URL"`` to a result or a list of
results used in turn (the last one repeats). A key ending in ``*`` matches any URL
with that prefix; exact keys win over prefixes, longer prefixes over shorter ones.
A result is ``{"status": 200, "body": ...}`` (2xx is success, anything else an
``http`` error) or ``{"error": "timeout"|"network"|"not_json"|"too_large"}``.
A request that matches nothing gets ``{"ok": false, "error": "network"}``, as an
unreachable host would. Requests outside the spec's allow-list get ``forbidden``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botkiln.interpreter.canonical import canonical_json
from botkiln.interpreter.domains import url_allowed
from botkiln.interpreter.errors import UnusableInput
from botkiln.interpreter.types import ApiRequest, ApiResult

RESULT_ERRORS = frozenset({"timeout", "network", "http", "not_json", "too_large", "forbidden"})


def _check_result(key: str, result: Any) -> None:
    if not isinstance(result, dict):
        raise UnusableInput(f"API fixture entry {key!r}: a result must be an object")
    if "error" in result:
        if result["error"] not in RESULT_ERRORS:
            raise UnusableInput(f"API fixture entry {key!r}: unknown error {result['error']!r}")
    elif not isinstance(result.get("status"), int):
        raise UnusableInput(f'API fixture entry {key!r}: needs "status" (an integer) or "error"')


class FixtureApi:
    """An ``ApiPerformer`` answering from a fixture, in order, per key."""

    def __init__(
        self,
        fixture: dict[str, Any],
        *,
        allowed_domains: Sequence[str] = (),
        insecure_ok: bool = False,
    ) -> None:
        for key, value in fixture.items():
            for result in value if isinstance(value, list) else [value]:
                _check_result(key, result)
        self._fixture = fixture
        self._used: dict[str, int] = {}
        self._domains = tuple(allowed_domains)
        self._insecure_ok = insecure_ok

    @classmethod
    def for_spec(cls, fixture: dict[str, Any], spec: dict[str, Any]) -> FixtureApi:
        """A fixture performer enforcing ``spec``'s allow-list."""
        security = spec.get("security", {})
        return cls(
            fixture,
            allowed_domains=security.get("allowedDomains", []),
            insecure_ok=bool(security.get("allowInsecureHttp", False)),
        )

    def _key(self, request: ApiRequest) -> str | None:
        exact = f"{request['method']} {request['url']}"
        if exact in self._fixture:
            return exact
        prefixes = [k for k in self._fixture if k.endswith("*") and exact.startswith(k[:-1])]
        return max(prefixes, key=len) if prefixes else None

    def perform(self, request: ApiRequest) -> ApiResult:
        """The next scripted result for ``request``."""
        if not url_allowed(request["url"], self._domains, insecure_ok=self._insecure_ok):
            return {"ok": False, "error": "forbidden", "status": None}
        key = self._key(request)
        if key is None:
            return {"ok": False, "error": "network", "status": None}
        entry = self._fixture[key]
        if isinstance(entry, list):
            index = self._used.get(key, 0)
            self._used[key] = index + 1
            entry = entry[min(index, len(entry) - 1)]
        if "error" in entry:
            return {"ok": False, "error": entry["error"], "status": entry.get("status")}
        status = int(entry["status"])
        if not 200 <= status < 300:
            return {"ok": False, "error": "http", "status": status}
        body = entry.get("body")
        if len(canonical_json(body)) > request["maxResponseBytes"]:
            return {"ok": False, "error": "too_large", "status": status}
        return {"ok": True, "status": status, "body": body}
