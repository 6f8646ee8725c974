"""The QuickJS engine: hardened sandboxes running one ``bot.js`` each, and their warm pool.

Key contracts: JSON text in, JSON text out; no host capability, clock or randomness inside;
every failure is a :class:`SandboxError` and never takes the process down.
"""

from .engine import PooledEngine, QuickJsEngine
from .errors import (
    BotCodeError,
    BotOutputError,
    SandboxError,
    SandboxLoadError,
    SandboxMemoryError,
    SandboxStackOverflow,
    SandboxTimeout,
)
from .pool import PoolStats, SandboxPool
from .sandbox import Sandbox, SandboxLimits

__all__ = [
    "BotCodeError",
    "BotOutputError",
    "PoolStats",
    "PooledEngine",
    "QuickJsEngine",
    "Sandbox",
    "SandboxError",
    "SandboxLimits",
    "SandboxLoadError",
    "SandboxMemoryError",
    "SandboxPool",
    "SandboxStackOverflow",
    "SandboxTimeout",
]
