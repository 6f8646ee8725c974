"""The Redis Lua scripts of ``infra/lua/`` by name: ``lua_script(redis, "claim")``.

Each file's header documents its keys, arguments and result. A script is registered on the
client (run by EVALSHA, loaded on first use); the source is read once per process.
"""

from __future__ import annotations

import functools
from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

__all__ = ["lua_script"]


@functools.cache
def _source(name: str) -> str:
    return files("botkiln.infra").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def lua_script(redis: Redis, name: str) -> AsyncScript:
    """``infra/lua/<name>.lua`` registered on ``redis``."""
    return redis.register_script(_source(name))
