"""Expected failures as GraphQL values (STYLE rule 11).

A mutation whose failure is part of normal use returns a union of its success
type and the failures below (``SaveSpecResult = SpecSaved | SpecInvalid |
VersionConflict``). Every failure implements ``Problem``, so a client can always
ask ``... on Problem { message }``. Failures that are not the caller's business —
bugs, an unreachable database — are exceptions, masked by ``MaskErrors`` and
logged with the request id; access refusals are GraphQL errors with
``extensions.code`` ``FORBIDDEN`` (``graphql/permissions.py``).
"""

from __future__ import annotations

import strawberry

from botkiln.interpreter.errors import SpecError


@strawberry.interface(description="Any expected failure; `message` is a sentence for a person.")
class Problem:
    message: str


@strawberry.type(description="An argument is malformed; `field` names it.")
class InvalidInput(Problem):
    field: str


@strawberry.type(description="The thing named does not exist (or is not visible to you).")
class NotFound(Problem):
    what: str


@strawberry.type(description="Too many attempts; try again after `retryAfterSeconds`.")
class RateLimited(Problem):
    retry_after_seconds: int


@strawberry.type(description="Telegram refused the bot's token (wrong or revoked).")
class TokenRejected(Problem):
    pass


@strawberry.type(description="The Telegram Bot API did not answer usefully; nothing was changed. Try again later.")
class TelegramUnavailable(Problem):
    retry_after_seconds: int | None = None


@strawberry.type(description="The idempotency key already names a different request.")
class IdempotencyKeyReused(Problem):
    idempotency_key: str
    task_id: strawberry.ID


@strawberry.type(description="One problem of a BotSpec: where (JSON pointer), what (stable code), why, and a fix.")
class SpecProblem:
    pointer: str
    code: str
    message: str
    hint: str | None

    @classmethod
    def from_error(cls, error: SpecError) -> SpecProblem:
        """The GraphQL form of a validation ``SpecError``."""
        return cls(pointer=error.pointer, code=error.code, message=error.message, hint=error.hint)


@strawberry.type(description="The spec does not validate; every problem, sorted by pointer.")
class SpecInvalid(Problem):
    errors: list[SpecProblem]


@strawberry.type(description="Someone saved a newer version first; reload `currentVersion` and redo the edit.")
class VersionConflict(Problem):
    expected_version: int
    current_version: int


def invalid(field: str, message: str) -> InvalidInput:
    """An ``InvalidInput`` for the argument ``field``."""
    return InvalidInput(message=message, field=field)


def not_found(what: str) -> NotFound:
    """A ``NotFound`` naming ``what``."""
    return NotFound(message=f"{what} does not exist or is not visible to you", what=what)
