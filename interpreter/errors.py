"""Botkiln's error tree and the spec-problem value.

::

    BotkilnError                 root of every exception Botkiln raises on purpose
    ├── SpecInvalid              a spec was used although it does not validate
    ├── UnusableInput            a file that cannot be read or is not JSON
    ├── EngineError              an engine could not produce an output
    ├── SettingsError            infra.settings: a BOTKILN_* variable is malformed
    ├── BuildFailed              generator.revision: no candidate passed both gates
    ├── LlmUnavailable, LlmOutputError      generator.llm
    ├── ArtifactError            infra.ports: Exists, Missing, Corrupt, StoreUnavailable
    ├── DatabaseUnavailable      infra.db.pool
    ├── MigrationError           infra.db.migrate
    └── DecryptionFailed         infra.crypto
    SandboxError                 interpreter.quickjs.errors (its own root: sandbox
                                 failures are findings about bot code, not Botkiln's)

Problems in a user's spec are not exceptions: they are ``SpecError`` values, all
collected and returned together by validation.
"""

from __future__ import annotations

from dataclasses import dataclass


class BotkilnError(Exception):
    """Root of Botkiln's exceptions."""


class UnusableInput(BotkilnError):
    """An input file is missing, unreadable or not JSON."""


class EngineError(BotkilnError):
    """An engine failed to run a step."""


@dataclass(frozen=True, order=True)
class SpecError:
    """One problem in a BotSpec: where (JSON pointer), what (stable code), why.

    ``code`` is a kebab-case id documented in docs/errors.md.
    """

    pointer: str
    code: str
    message: str
    hint: str | None = None

    def as_json(self) -> dict[str, str]:
        """The machine form used by ``--json`` and the API."""
        out = {"pointer": self.pointer, "code": self.code, "message": self.message}
        if self.hint is not None:
            out["hint"] = self.hint
        return out

    def __str__(self) -> str:
        where = self.pointer or "/"
        text = f"{where}: {self.message} [{self.code}]"
        return f"{text} ({self.hint})" if self.hint else text


class SpecInvalid(BotkilnError):
    """Raised when an invalid spec is handed to something that needs a valid one."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = errors
        first = str(errors[0]) if errors else "invalid spec"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)
