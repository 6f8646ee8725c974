"""Settings: one frozen dataclass read from the environment (``BOTKILN_*``).

Every variable, its default and meaning:

| variable | default | meaning |
|---|---|---|
| ``BOTKILN_LLM_BASE_URL`` | ``https://api.openai.com/v1`` | OpenAI-compatible endpoint of the LLM generator |
| ``BOTKILN_LLM_API_KEY`` | (none) | its API key; required only when the LLM generator runs |
| ``BOTKILN_LLM_MODEL`` | ``gpt-5`` | model name |
| ``BOTKILN_LLM_TIMEOUT_S`` | ``120`` | per-request timeout, seconds |
| ``BOTKILN_LLM_MAX_ATTEMPTS`` | ``3`` | generate -> gates -> feedback rounds before a build fails |
| ``BOTKILN_LLM_SEED`` | ``0`` | seed sent to the model and recorded in the build metadata |

A malformed value fails at start-up with a sentence naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from botkiln.interpreter.errors import BotkilnError


class SettingsError(BotkilnError):
    """A configuration variable is missing or malformed."""


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class Settings:
    """Botkiln's configuration (see the module docstring for the table)."""

    llm_base_url: str = "https://api.openai.com/v1"
    llm_api_key: str | None = None
    llm_model: str = "gpt-5"
    llm_timeout_s: int = 120
    llm_max_attempts: int = 3
    llm_seed: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``BOTKILN_*`` variables (``env`` defaults to ``os.environ``).

        Raises:
            SettingsError: a value is malformed.
        """
        env = os.environ if env is None else env
        return cls(
            llm_base_url=env.get("BOTKILN_LLM_BASE_URL") or cls.llm_base_url,
            llm_api_key=env.get("BOTKILN_LLM_API_KEY") or None,
            llm_model=env.get("BOTKILN_LLM_MODEL") or cls.llm_model,
            llm_timeout_s=_int(env, "BOTKILN_LLM_TIMEOUT_S", cls.llm_timeout_s, minimum=1),
            llm_max_attempts=_int(env, "BOTKILN_LLM_MAX_ATTEMPTS", cls.llm_max_attempts, minimum=1),
            llm_seed=_int(env, "BOTKILN_LLM_SEED", cls.llm_seed),
        )

    def __repr__(self) -> str:
        key = "set" if self.llm_api_key else "unset"
        return f"Settings(llm_base_url={self.llm_base_url!r}, llm_model={self.llm_model!r}, llm_api_key=<{key}>)"
