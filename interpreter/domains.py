"""The apiCall domain allow-list (docs/botspec.md §8.6), checked statically and at run time."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit


def domain_allowed(host: str, patterns: Sequence[str]) -> bool:
    """True if ``host`` is an exact entry or a subdomain of a ``*.`` entry."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def url_allowed(url: str, patterns: Sequence[str], *, insecure_ok: bool = False) -> bool:
    """True if ``url`` is https (or http when allowed) to an allowed host, without user info."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        return False
    schemes = ("https", "http") if insecure_ok else ("https",)
    return parts.scheme in schemes and not parts.username and bool(host) and domain_allowed(host, patterns)
