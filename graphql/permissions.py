"""Who may do what (docs/api.md#roles), and which transport may carry what.

Roles are per project and ordered: viewer < editor < owner. A viewer reads; an
editor also saves spec versions and generates revisions; an owner also deploys,
rolls back, manages members and creates or deletes bots. Signed-in users may
create projects (becoming their owner).

Each rule is a ``BasePermission`` with a ``message`` and ``extensions.code``
``FORBIDDEN``. A bot-scoped rule reads the ``bot_id`` argument (or the parent
object's ``bot_id``); a project-scoped rule the ``project_id`` argument. An
object that does not exist and one the viewer may not see are refused alike, so
probing reveals nothing. Lookups by another id (a deployment, a task) check with
``require_bot_role`` once the row names its bot.

``TransportGuard`` enforces the transport rules: over HTTP a mutation needs a
valid CSRF token (``Context.csrf_ok``), subscriptions run only over the
WebSocket, and the WebSocket carries no mutations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar
from uuid import UUID

from graphql import ExecutionResult, GraphQLError
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission
from strawberry.types import Info
from strawberry.types.graphql import OperationType

from botkiln.graphql.context import Context
from botkiln.infra.db.projects import Role, at_least

FORBIDDEN = {"code": "FORBIDDEN"}
UNAUTHENTICATED = {"code": "UNAUTHENTICATED"}


def forbidden(needed: Role | None, scope: str) -> str:
    """The refusal sentence for a rule."""
    if needed is None:
        return "Sign in first."
    return f"Forbidden: this needs the {needed} role on the {scope} (or it does not exist)."


class IsSignedIn(BasePermission):
    """Any signed-in user."""

    message = forbidden(None, "")
    error_extensions = UNAUTHENTICATED

    def has_permission(self, source: Any, info: Info[Context, None], **kwargs: Any) -> bool:
        return info.context.user_id is not None


def _bot_id(source: Any, kwargs: dict[str, Any]) -> str | None:
    value = kwargs.get("bot_id")
    if value is None:
        value = getattr(source, "bot_id", None)
    return None if value is None else str(value)


class _BotRole(BasePermission):
    needed: ClassVar[Role]
    error_extensions = FORBIDDEN

    async def has_permission(self, source: Any, info: Info[Context, None], **kwargs: Any) -> bool:
        bot_id = _bot_id(source, kwargs)
        return bot_id is not None and at_least(await info.context.bot_role(bot_id), self.needed)


class CanViewBot(_BotRole):
    """Viewer or better on the bot's project."""

    needed = "viewer"
    message = forbidden("viewer", "bot's project")


class CanEditBot(_BotRole):
    """Editor or better on the bot's project."""

    needed = "editor"
    message = forbidden("editor", "bot's project")


class CanOwnBot(_BotRole):
    """Owner of the bot's project."""

    needed = "owner"
    message = forbidden("owner", "bot's project")


class _ProjectRole(BasePermission):
    needed: ClassVar[Role]
    error_extensions = FORBIDDEN

    async def has_permission(self, source: Any, info: Info[Context, None], **kwargs: Any) -> bool:
        raw = kwargs.get("project_id")
        try:
            project_id = UUID(str(raw))
        except ValueError:
            return False
        return at_least(await info.context.project_role(project_id), self.needed)


class CanViewProject(_ProjectRole):
    """Any member of the project."""

    needed = "viewer"
    message = forbidden("viewer", "project")


class CanOwnProject(_ProjectRole):
    """Owner of the project."""

    needed = "owner"
    message = forbidden("owner", "project")


async def require_bot_role(context: Context, bot_id: str, needed: Role) -> None:
    """Refuse (as the permission classes do) unless the viewer has ``needed`` on ``bot_id``.

    Raises:
        StrawberryGraphQLError: FORBIDDEN.
    """
    if not at_least(await context.bot_role(bot_id), needed):
        raise StrawberryGraphQLError(forbidden(needed, "bot's project"), extensions=FORBIDDEN)


class TransportGuard(SchemaExtension):
    """CSRF on HTTP mutations; subscriptions only, and no mutations, over the WebSocket."""

    def on_execute(self) -> Iterator[None]:
        refusal = self._refusal()
        if refusal is not None:
            self.execution_context.result = ExecutionResult(data=None, errors=[refusal])
        yield

    def _refusal(self) -> GraphQLError | None:
        context = self.execution_context.context
        operation = self.execution_context.operation_type
        if not isinstance(context, Context):
            return None
        if context.transport == "http":
            if operation is OperationType.SUBSCRIPTION:
                return GraphQLError(
                    "subscriptions run over the WebSocket (graphql-transport-ws) only",
                    extensions={"code": "BAD_REQUEST"},
                )
            if operation is OperationType.MUTATION and not context.csrf_ok:
                return GraphQLError(
                    "CSRF token missing or invalid: send the botkiln_csrf cookie's value in the X-CSRF-Token header",
                    extensions={"code": "CSRF"},
                )
        elif operation is OperationType.MUTATION:
            return GraphQLError("mutations are accepted over HTTP only", extensions={"code": "BAD_REQUEST"})
        return None
