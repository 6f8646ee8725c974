"""Hosts of the URLs a spec itself holds: what its bot.js may legitimately name."""

from __future__ import annotations

import re
from typing import Any

_URL_HOST = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://([^/\s?#:@]+)")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


def spec_url_hosts(spec: dict[str, Any]) -> list[str]:
    """Hosts of every URL the spec itself holds (media, url buttons, texts).

    bot.js may contain these: they come from the spec. What the policy stops is a
    program naming a host the spec never mentions.
    """
    hosts = {m.group(1).lower() for text in _strings(spec) for m in _URL_HOST.finditer(text)}
    return sorted(h for h in hosts if "{{" not in h)
