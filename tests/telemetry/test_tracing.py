"""One trace per message across the pipeline, with OpenTelemetry's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chatcore.backends import Backends
from chatcore.log.memory import MemoryLog
from chatcore.node import ChatNode, NodeOptions
from chatcore.offline.memory import MemoryPushNotifier
from chatcore.pipeline.records import TracedMessage, decode_message, decode_traced_message
from chatcore.telemetry.tracing import Tracing

pytestmark = pytest.mark.anyio

STAGES = ["chatcore.send", "chatcore.sequence", "chatcore.store", "chatcore.deliver"]


@pytest.fixture
def exported() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def attribute(span: ReadableSpan, name: str) -> object:
    return (span.attributes or {}).get(name)


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_each_message_is_one_trace_through_every_stage(
    kind: str, tmp_path: Path, exported: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = exported
    backends = Backends.in_memory() if kind == "memory" else Backends.embedded(tmp_path / "d")
    backends.push = MemoryPushNotifier()
    options = NodeOptions(partitions=2, tracing=Tracing(provider))
    tracer = provider.get_tracer("app")
    async with ChatNode(backends, options) as node, node.connect("bob", "phone"):
        chat = (await node.create_chat("alice", kind="direct", members=["bob"])).chat_id
        with tracer.start_as_current_span("http request") as request:
            first = await node.send("alice", chat, client_msg_id="a", body="one")
        await node.send("alice", chat, client_msg_id="b", body="two")
        await node.settled()
        page = await node.history("alice", chat, limit=10)
    spans = exporter.get_finished_spans()
    sends = by_name(spans, "chatcore.send")
    assert len(sends) == 2
    (traced,) = [s for s in sends if attribute(s, "chatcore.message_id") == str(first.message_id)]
    trace_id = traced.context.trace_id
    assert trace_id == request.get_span_context().trace_id, "the caller's span is the root"
    assert traced.parent is not None and traced.parent.span_id == request.get_span_context().span_id
    one = [s for s in spans if s.context.trace_id == trace_id]
    assert sorted(s.name for s in one) == sorted([*STAGES, "http request"])
    (sequence,) = by_name(tuple(one), "chatcore.sequence")
    assert sequence.parent is not None and sequence.parent.span_id == traced.context.span_id
    for stage in ("chatcore.store", "chatcore.deliver"):
        (span,) = by_name(tuple(one), stage)
        assert span.parent is not None and span.parent.span_id == sequence.context.span_id
        assert attribute(span, "chatcore.seq") == 1
    assert len({s.context.trace_id for s in sends}) == 2, "one trace per message"
    # history and clients never see the trace context
    assert all(type(m).__name__ == "StoredMessage" for m in page.messages)


async def test_tracing_off_adds_nothing_to_the_records() -> None:
    log = MemoryLog()
    backends = Backends.in_memory()
    backends.log = log
    async with ChatNode(backends, NodeOptions(partitions=1)) as node:
        log.expect_group(node.topics.messages, "probe")  # keep the record for the probe
        chat = (await node.create_chat("alice", kind="direct", members=["bob"])).chat_id
        await node.send("alice", chat, client_msg_id="a", body="one")
        await node.settled()
        async with log.consumer(node.topics.messages, group="probe") as probe:
            batch = await probe.poll(max_records=10)
    (record,) = batch.records
    assert b"trace" not in record.value
    assert decode_traced_message(record.value).trace == ""
    assert not isinstance(decode_message(record.value), TracedMessage)
