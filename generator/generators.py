"""The generators a build can use, by name: ``compiler`` (default) and ``llm``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from importlib import resources
from typing import Any

from botkiln.generator.compiler import COMPILER_VERSION, compile_spec


def sdk_version() -> str:
    """A content hash of the JS SDK every bot.js embeds."""
    text = resources.files("botkiln.generator").joinpath("prelude/bot_sdk.js").read_bytes()
    return "sha256:" + hashlib.sha256(text).hexdigest()[:16]


class CompilerGenerator:
    """The deterministic compiler as a ``Generator``."""

    kind = "compiler"
    version = COMPILER_VERSION
    model: str | None = None
    seed: int | None = None
    max_attempts = 1

    def __init__(self) -> None:
        self.sdk_version = sdk_version()

    def generate(self, spec: dict[str, Any], feedback: str | None) -> str:
        """bot.js for ``spec``; the compiler ignores feedback (it is deterministic)."""
        source: str = compile_spec(spec)
        return source


def _llm() -> Any:
    from botkiln.generator.llm import LlmGenerator
    from botkiln.infra.settings import Settings

    return LlmGenerator.from_settings(Settings.from_env())


GENERATORS: dict[str, Callable[[], Any]] = {"compiler": CompilerGenerator, "llm": _llm}


def build_generator(name: str) -> Any:
    """A generator by name (``compiler`` or ``llm``)."""
    return GENERATORS[name]()
