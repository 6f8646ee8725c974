"""Tracing with OpenTelemetry: spans, W3C ``traceparent`` strings across queues, Dramatiq propagation.

Invariants (docs/observability.md has the span names):

- with ``BOTKILN_OTLP_ENDPOINT`` unset nothing is configured: every span is the OpenTelemetry
  API's non-recording span, ``current_traceparent()`` is None and nothing is exported;
  ``configure_tracing`` makes the SDK's provider (batching, OTLP over HTTP) the process's, through
  ``set_provider`` (tests put an in-memory exporter's there, and take it back);
- context crosses a queue as one plain string, the W3C ``traceparent`` header's value: the
  producer stores ``current_traceparent()`` next to the item, the consumer opens its span with
  ``start_span(..., parent=that string)``; a missing or malformed string starts a new trace;
- ``TracePropagation`` does this for Dramatiq messages of the queues it is given: the enqueuing
  context goes into ``message.options["traceparent"]`` (kept on retries), and processing the
  message runs inside a ``dramatiq <actor>`` consumer span that is current for the actor.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Collection, Iterator, Mapping
from contextvars import Token
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name
from dramatiq.middleware import Middleware
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace import TracerProvider as TracerProviderApi
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from botkiln.infra.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = [
    "TRACEPARENT",
    "TracePropagation",
    "configure_tracing",
    "current_traceparent",
    "extract",
    "set_provider",
    "start_span",
    "tracer",
]

TRACEPARENT = "traceparent"
"""The W3C header name, and the key of the string in a Dramatiq message's options."""
TRACER_NAME = "botkiln"
_PROPAGATOR = TraceContextTextMapPropagator()
_OTLP_PATH = "/v1/traces"

Attributes = Mapping[str, AttributeValue]


def configure_tracing(settings: Settings, *, service: str) -> TracerProvider | None:
    """Export spans to ``BOTKILN_OTLP_ENDPOINT`` as ``service``; the SDK's provider, or None when tracing is off.

    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` are honoured as the SDK does.
    """
    if settings.otlp_endpoint is None:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = settings.otlp_endpoint.rstrip("/")
    if not endpoint.endswith(_OTLP_PATH):
        endpoint += _OTLP_PATH
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    set_provider(provider)
    return provider


class _Provider:
    current: TracerProviderApi | None = None


def set_provider(provider: TracerProviderApi | None) -> None:
    """Make ``provider`` the one Botkiln's spans come from (None: back to OpenTelemetry's global one)."""
    _Provider.current = provider


def tracer() -> Tracer:
    """Botkiln's tracer: from ``set_provider``'s provider, else the global one (the API's no-op by default)."""
    provider = _Provider.current or trace.get_tracer_provider()
    return provider.get_tracer(TRACER_NAME)


def extract(traceparent: str | None) -> Context:
    """The context a ``traceparent`` string carries (an empty one for None or a malformed string)."""
    return _PROPAGATOR.extract({TRACEPARENT: traceparent} if traceparent else {})


def current_traceparent() -> str | None:
    """The current span as a ``traceparent`` string, or None outside a recording span (tracing off)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


@contextlib.contextmanager
def start_span(
    name: str,
    attributes: Attributes | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: str | None = None,
) -> Iterator[Span]:
    """A span, current inside the block, child of the current one or of ``parent`` (a ``traceparent``).

    An exception leaving the block is recorded on the span, which ends with status ERROR.
    """
    context = extract(parent) if parent is not None else None
    with tracer().start_as_current_span(name, context=context, kind=kind, attributes=attributes) as span:
        yield span


class TracePropagation(Middleware):
    """Carries the enqueuing trace through Dramatiq messages of ``queues`` (all queues when None)."""

    def __init__(self, queues: Collection[str] | None = None) -> None:
        self.queues = None if queues is None else frozenset(queues)
        self._local = threading.local()

    def _traced(self, message: dramatiq.Message[Any] | MessageProxy) -> bool:
        return self.queues is None or q_name(message.queue_name) in self.queues

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        if self._traced(message) and TRACEPARENT not in message.options:
            traceparent = current_traceparent()
            if traceparent is not None:
                message.options[TRACEPARENT] = traceparent

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not self._traced(message):
            return
        parent = extract(message.options.get(TRACEPARENT))
        span = tracer().start_span(
            f"dramatiq {message.actor_name}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "dramatiq",
                "messaging.destination.name": q_name(message.queue_name),
                "messaging.message.id": message.message_id,
                "messaging.dramatiq.retries": int(message.options.get("retries", 0)),
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        self._stack().append((message.message_id, span, token))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        stack = self._stack()
        if not stack or stack[-1][0] != message.message_id:
            return
        _, span, token = stack.pop()
        if exception is not None:
            span.record_exception(exception)
            span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        otel_context.detach(token)
        span.end()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)

    def _stack(self) -> list[tuple[str, Span, Token[Context]]]:
        # before/after_process_message run on the worker thread that handles the message.
        stack: list[tuple[str, Span, Token[Context]]] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack
