"""The API's observability: ``GET /metrics`` and the GraphQL operations' metrics and spans.

- ``metrics``: the process's ``REGISTRY`` plus the app's ``RedisCollector`` (queue depth,
  oldest update, dead letters, read at scrape time in a thread). With ``BOTKILN_METRICS_TOKEN``
  set it answers 401 unless ``Authorization: Bearer <token>`` matches (constant-time); unset, it
  answers anyone, so the route must then be kept off the public network (docs/observability.md).
- ``OperationMetrics`` (a strawberry extension): each query and mutation is observed in
  ``botkiln_graphql_operation_seconds{type,field}`` once per distinct root field it selects, and
  each error of a result counts in ``botkiln_graphql_errors_total{type,field}`` under the root
  field of its path. Labels are the schema's own names (``field`` is a root field of the schema,
  ``_unknown`` for any other name, ``_operation`` for an error without a path; ``type`` is
  ``_invalid`` when the document did not parse): never the client's operation name, aliases or
  arguments. The execution runs in a ``graphql.<type>`` span. A subscription counts its errors
  only (its lifetime is no latency), and its span covers the set-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.utilities import get_operation_ast
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from strawberry.extensions import SchemaExtension

from botkiln.infra.metrics import (
    CONTENT_TYPE_LATEST,
    GRAPHQL_ERRORS,
    GRAPHQL_OPERATION_SECONDS,
    REGISTRY,
    exposition,
    token_ok,
)
from botkiln.infra.tracing import start_span

INVALID = "_invalid"
UNKNOWN = "_unknown"
NO_PATH = "_operation"
_META_FIELDS = frozenset({"__typename", "__schema", "__type"})


async def metrics(request: Request) -> Response:
    """``GET /metrics`` (see the module docstring)."""
    token: str | None = request.state.services.settings.metrics_token
    if not token_ok(request.headers.get("authorization"), token):
        return PlainTextResponse("unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"})
    cluster: CollectorRegistry = request.state.cluster_metrics
    body = await asyncio.to_thread(exposition, REGISTRY, cluster)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def root_fields(document: DocumentNode, operation: OperationDefinitionNode) -> Iterator[tuple[str, str]]:
    """``(response key, field name)`` of each root field ``operation`` selects, fragments followed."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    seen: set[str] = set()

    def walk(selections: SelectionSetNode) -> Iterator[tuple[str, str]]:
        for node in selections.selections:
            if isinstance(node, FieldNode):
                yield (node.alias or node.name).value, node.name.value
            elif isinstance(node, InlineFragmentNode):
                yield from walk(node.selection_set)
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
                seen.add(node.name.value)
                fragment = fragments.get(node.name.value)
                if fragment is not None:
                    yield from walk(fragment.selection_set)

    yield from walk(operation.selection_set)


class OperationMetrics(SchemaExtension):
    """Metrics and a span per GraphQL operation (see the module docstring)."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        kind, keys = self._shape()
        ctx = self.execution_context
        if kind not in ("subscription", INVALID):
            for field in sorted(set(keys.values())) or [UNKNOWN]:
                GRAPHQL_OPERATION_SECONDS.labels(kind, field).observe(elapsed)
        errors: dict[int, GraphQLError] = {id(e): e for e in ctx.pre_execution_errors or []}
        if ctx.result is not None:
            errors.update((id(e), e) for e in ctx.result.errors or [])
        for error in errors.values():
            key = error.path[0] if error.path else None
            field = NO_PATH if key is None else keys.get(str(key), UNKNOWN)
            GRAPHQL_ERRORS.labels(kind, field).inc()

    def on_execute(self) -> Iterator[None]:
        kind, keys = self._shape()
        attributes = {"graphql.operation.type": kind, "graphql.root_fields": sorted(set(keys.values()))}
        with start_span(f"graphql.{kind}", attributes, kind=SpanKind.SERVER):
            yield

    def _shape(self) -> tuple[str, dict[str, str]]:
        """The operation's type and its root fields (response key -> label)."""
        ctx = self.execution_context
        document = ctx.graphql_document
        operation = None if document is None else get_operation_ast(document, ctx.operation_name)
        if document is None or operation is None:
            return INVALID, {}
        kind = operation.operation.value
        root = ctx.schema._schema.get_root_type(operation.operation)
        known = root.fields if isinstance(root, GraphQLObjectType) else {}
        return kind, {
            key: name if name in known or name in _META_FIELDS else UNKNOWN
            for key, name in root_fields(document, operation)
        }
