"""The GraphQL schema: every area's queries and mutations, the subscription, and the guards.

Extensions, in order:

- ``OperationMetrics``: each operation's duration and errors in Prometheus, its execution
  in a span (``graphql/observability.py``);
- ``TransportGuard``: CSRF on HTTP mutations; subscriptions only over the WebSocket;
- ``QueryDepthLimiter(MAX_DEPTH)``, ``MaxAliasesLimiter(MAX_ALIASES)``,
  ``MaxTokensLimiter(MAX_TOKENS)``: abusive documents are refused before they run
  (pass large values such as a spec as variables: variables are not tokens);
- ``MaskUnexpectedErrors``: an exception that is not a GraphQL error (a bug, an
  unreachable database) reaches the client only as "Unexpected error" with the
  request id, and is logged with that id and its traceback. Validation errors,
  permission refusals and bad arguments are shown as they are.

``python -m botkiln.graphql.schema`` prints the SDL; ``graphql/schema.graphql`` is
that output, kept current by ``tests/graphql/test_sdl.py``.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.types import ExecutionContext

from botkiln.graphql.analytics import AnalyticsQuery
from botkiln.graphql.auth import AuthMutation, AuthQuery
from botkiln.graphql.bots import BotMutation, BotQuery
from botkiln.graphql.console import ConsoleQuery
from botkiln.graphql.context import Context
from botkiln.graphql.deployments import DeploymentMutation, DeploymentQuery
from botkiln.graphql.dlq import DeadLetterMutation, DeadLetterQuery, InboundDeadLetter, OutboundDeadLetter
from botkiln.graphql.observability import OperationMetrics
from botkiln.graphql.permissions import TransportGuard
from botkiln.graphql.progress import EVENT_TYPES, Subscription
from botkiln.graphql.projects import ProjectMutation, ProjectQuery
from botkiln.graphql.revisions import RevisionQuery
from botkiln.graphql.rollouts import RolloutMutation, RolloutQuery
from botkiln.graphql.secrets import SecretMutation
from botkiln.graphql.simulate import SimulateMutation
from botkiln.graphql.specs import SpecMutation, SpecQuery

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000

_log = logging.getLogger("botkiln.graphql")


@strawberry.type
class Query(
    AuthQuery,
    ProjectQuery,
    BotQuery,
    SpecQuery,
    RevisionQuery,
    DeploymentQuery,
    AnalyticsQuery,
    ConsoleQuery,
    DeadLetterQuery,
    RolloutQuery,
):
    pass


@strawberry.type
class Mutation(
    AuthMutation,
    ProjectMutation,
    BotMutation,
    SpecMutation,
    DeploymentMutation,
    SimulateMutation,
    DeadLetterMutation,
    RolloutMutation,
    SecretMutation,
):
    pass


def is_unexpected(error: GraphQLError) -> bool:
    """Whether ``error`` came from an exception that is not meant for the client."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def _request_id(execution_context: ExecutionContext | None) -> str:
    context = None if execution_context is None else execution_context.context
    return context.request_id if isinstance(context, Context) else "-"


class MaskUnexpectedErrors(MaskErrors):
    """``MaskErrors`` for unexpected errors only, with the request id in the message and extensions."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        request_id = _request_id(self.execution_context)
        return GraphQLError(
            f"Unexpected error (request id {request_id}).",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )


class Schema(strawberry.Schema):
    """strawberry's Schema, logging unexpected errors with their request id."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        request_id = _request_id(execution_context)
        for error in errors:
            if is_unexpected(error):
                _log.error(
                    "unexpected error at %s (request id %s)", error.path, request_id, exc_info=error.original_error
                )
            else:
                _log.debug("refused (request id %s): %s", request_id, error.message)


def build_schema() -> Schema:
    """The schema with its extensions."""
    # Classes and factories: strawberry makes fresh extension instances per operation.
    extensions: list[Any] = [
        OperationMetrics,
        TransportGuard,
        partial(QueryDepthLimiter, max_depth=MAX_DEPTH),
        partial(MaxAliasesLimiter, max_alias_count=MAX_ALIASES),
        partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
        MaskUnexpectedErrors,
    ]
    types = [*EVENT_TYPES, InboundDeadLetter, OutboundDeadLetter]
    return Schema(query=Query, mutation=Mutation, subscription=Subscription, types=types, extensions=extensions)


def sdl() -> str:
    """The schema's SDL, as stored in ``graphql/schema.graphql``."""
    return build_schema().as_str() + "\n"


if __name__ == "__main__":
    print(sdl(), end="")
