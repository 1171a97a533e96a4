"""OpenTelemetry spans across the pipeline: one trace per message, off by default.

``NodeOptions(tracing=Tracing())`` turns it on (the ``tracing`` extra; your app sets
up the OpenTelemetry SDK and an exporter). Each message then leaves these spans in
one trace, whatever process runs each stage:

- ``chatcore.send``: the Router, from validation to the durable append. Its parent is
  whatever span is current in the caller (an HTTP request, a job);
- ``chatcore.sequence``: the Sequencer's transaction that gave the message its seq;
- ``chatcore.store``: the History stage's write;
- ``chatcore.deliver``: the Delivery stage's fan-out to gateways (and offline users).

The context travels inside the log records as a W3C ``traceparent``: in ``Submitted``
from the Router, and in ``chat.messages`` (:class:`~chatcore.pipeline.records.TracedMessage`)
from the Sequencer. With tracing off nothing is imported, added or measured.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from chatcore._extras import missing_extra

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["Tracing"]

_TRACEPARENT = "traceparent"
Attributes = Mapping[str, str | int | bool]


class Tracing:
    """Starts the pipeline's spans on an OpenTelemetry tracer.

    ``provider``: where spans go (default: the global provider the app configured).
    Raises ImportError naming the ``tracing`` extra if OpenTelemetry is missing.
    """

    def __init__(self, provider: TracerProvider | None = None) -> None:
        try:
            from opentelemetry import trace
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise missing_extra("tracing", exc, needed_by="chatcore tracing") from exc
        self._trace = trace
        self._tracer = trace.get_tracer("chatcore", tracer_provider=provider)
        self._propagator = TraceContextTextMapPropagator()

    @contextlib.contextmanager
    def send(self, attributes: Attributes) -> Iterator[Span]:
        """The ``chatcore.send`` span, a child of the caller's current span."""
        with self._tracer.start_as_current_span(
            "chatcore.send", kind=self._trace.SpanKind.PRODUCER, attributes=attributes
        ) as span:
            yield span

    def start(self, name: str, parent: str, attributes: Attributes) -> Span:
        """A span named ``name`` whose parent is the ``traceparent`` ``parent`` (a new
        trace if it is empty); end it with ``span.end()``."""
        context = self._propagator.extract({_TRACEPARENT: parent}) if parent else None
        return self._tracer.start_span(
            name, context=context, kind=self._trace.SpanKind.CONSUMER, attributes=attributes
        )

    def traceparent(self, span: Span) -> str:
        """The W3C ``traceparent`` that makes ``span`` the parent of a later span."""
        carrier: dict[str, Any] = {}
        self._propagator.inject(carrier, context=self._trace.set_span_in_context(span))
        return str(carrier.get(_TRACEPARENT, ""))
