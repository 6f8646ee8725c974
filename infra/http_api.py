"""Performs apiCall requests over real HTTP for ``botkiln chat`` (the host side of §8.6).

Enforces what the spec promises: allow-listed hosts only (checked again here, and
redirects are not followed), the request's timeout as a deadline for the whole
exchange (a server dripping bytes cannot hold a call longer), retries with doubling
backoff on network errors, timeouts and 5xx, a response size cap, and JSON-only
answers. With ``private_ok=False`` (the runtime's default) a host that resolves to a
loopback, private, link-local or otherwise non-public address is refused, so a spec
cannot reach the platform's own network (DNS rebinding between the check and the
connection remains possible; a production deployment also filters egress).
``{{secret.NAME}}`` in header values is filled from the given secrets, never
from the spec, and never logged.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from botkiln.interpreter.canonical import normalize
from botkiln.interpreter.domains import url_allowed
from botkiln.interpreter.templates import SECRET
from botkiln.interpreter.types import ApiRequest, ApiResult


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpApi:
    """An ``ApiPerformer`` doing real HTTP with the spec's limits."""

    def __init__(
        self,
        *,
        allowed_domains: Sequence[str],
        insecure_ok: bool = False,
        secrets: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        private_ok: bool = True,
    ) -> None:
        self._private_ok = private_ok
        self._domains = tuple(allowed_domains)
        self._insecure_ok = insecure_ok
        self._secrets = dict(secrets or {})
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect)

    @classmethod
    def for_spec(
        cls, spec: Mapping[str, Any], *, secrets: Mapping[str, str] | None = None, private_ok: bool = True
    ) -> HttpApi:
        """A performer enforcing ``spec``'s allow-list and insecure-HTTP setting (as ``FixtureApi.for_spec``)."""
        security = spec.get("security", {})
        return cls(
            allowed_domains=security.get("allowedDomains", []),
            insecure_ok=bool(security.get("allowInsecureHttp", False)),
            secrets=secrets,
            private_ok=private_ok,
        )

    def _headers(self, request: ApiRequest) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "botkiln-apicall/1"}
        for name, value in request["headers"].items():
            headers[name] = SECRET.sub(lambda m: self._secrets.get(m.group(1), ""), value)
        if request["body"] is not None:
            headers["Content-Type"] = "application/json"
        return headers

    def _once(self, request: ApiRequest) -> ApiResult:
        body = request["body"]
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 - scheme checked by url_allowed
            request["url"], data=data, method=request["method"], headers=self._headers(request)
        )
        limit = request["maxResponseBytes"]
        deadline = time.monotonic() + request["timeoutMs"] / 1000
        try:
            with self._opener.open(req, timeout=request["timeoutMs"] / 1000) as response:
                status = int(response.status)
                raw = _read_until(response, limit + 1, deadline)
        except urllib.error.HTTPError as exc:
            return {"ok": False, "error": "http", "status": exc.code}
        except TimeoutError:
            return {"ok": False, "error": "timeout", "status": None}
        except (urllib.error.URLError, OSError):
            return {"ok": False, "error": "network", "status": None}
        if not 200 <= status < 300:
            return {"ok": False, "error": "http", "status": status}
        if len(raw) > limit:
            return {"ok": False, "error": "too_large", "status": status}
        try:
            parsed = normalize(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, ValueError):
            return {"ok": False, "error": "not_json", "status": status}
        return {"ok": True, "status": status, "body": parsed}

    def perform(self, request: ApiRequest) -> ApiResult:
        """Perform ``request`` with its retries; never raises for HTTP failures."""
        if not url_allowed(request["url"], self._domains, insecure_ok=self._insecure_ok):
            return {"ok": False, "error": "forbidden", "status": None}
        if not self._private_ok and not _public_host(request["url"]):
            return {"ok": False, "error": "forbidden", "status": None}
        delay = request["backoffMs"] / 1000
        result = self._once(request)
        for _ in range(request["retries"]):
            retryable = result.get("error") in ("timeout", "network") or (
                result.get("error") == "http" and (result.get("status") or 0) >= 500
            )
            if result.get("ok") or not retryable:
                break
            self._sleep(delay)
            delay *= 2
            result = self._once(request)
        return result


def _read_until(response: Any, limit: int, deadline: float) -> bytes:
    """Read at most ``limit`` bytes, giving up with ``TimeoutError`` at ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        if time.monotonic() >= deadline:
            raise TimeoutError("the response did not complete within the request's timeout")
        chunk = response.read1(min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _public_host(url: str) -> bool:
    """True if every address the URL's host resolves to is a public unicast address."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return False
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    return bool(addresses) and all(a.is_global and not a.is_multicast for a in addresses)
