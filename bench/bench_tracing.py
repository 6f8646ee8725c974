"""What tracing costs an update: the spans of one update with tracing off, and on (batched export).

One update opens these spans in the executor and the ingress (docs/observability.md): ``webhook``,
``update`` (child of the webhook's ``traceparent``), ``sandbox.step``, ``telegram.sendMessage``, and
reads ``current_traceparent()`` once. This script times exactly that sequence through
``infra.tracing`` with the provider the platform would have:

- ``off``: no ``BOTKILN_OTLP_ENDPOINT``, OpenTelemetry's no-op provider (the default);
- ``on``: the SDK's ``TracerProvider`` with a ``BatchSpanProcessor`` whose exporter drops the
  spans (so the figure is the platform's own cost, not a collector's).

Compare the per-update figure with the runtime's CPU per update (bench/bench_runtime.py: about
7.6 ms of CPU in all processes at its max rate).

Run: ``.venv/bin/python bench/bench_tracing.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from botkiln.infra.tracing import current_traceparent, set_provider, start_span

UPDATES = 20_000
ROUNDS = 5


class _Drop(SpanExporter):
    """An exporter that accepts and forgets (the batch processor's work stays in the figure)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def one_update() -> None:
    """The span work of one update, in the order the platform does it."""
    with start_span("webhook", {"botkiln.bot": "faq"}, kind=SpanKind.SERVER) as span:
        parent = current_traceparent()
        span.set_attribute("http.response.status_code", 200)
    with start_span("update", {"botkiln.bot": "faq", "botkiln.update": 1}, kind=SpanKind.CONSUMER, parent=parent):
        with start_span("sandbox.step"):
            pass
        with start_span("telegram.sendMessage", {"botkiln.bot": "faq"}, kind=SpanKind.CLIENT):
            pass


def per_update_us() -> float:
    """The best of ``ROUNDS`` mean times of ``one_update`` over ``UPDATES`` calls, in microseconds."""
    means = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(UPDATES):
            one_update()
        means.append((time.perf_counter() - started) / UPDATES * 1e6)
    return min(means)


def main() -> None:
    set_provider(None)
    off = per_update_us()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Drop(), max_queue_size=65536))
    set_provider(provider)
    try:
        on = per_update_us()
    finally:
        provider.shutdown()
        set_provider(None)
    runtime_ms = 7.6
    print(f"tracing off: {off:6.1f} µs per update ({off / (runtime_ms * 10):.2f} % of {runtime_ms} ms)")
    print(f"tracing on:  {on:6.1f} µs per update ({on / (runtime_ms * 10):.2f} % of {runtime_ms} ms), spans exported")
    print(f"(each the best of {ROUNDS} rounds of {UPDATES} updates)")


if __name__ == "__main__":
    main()
