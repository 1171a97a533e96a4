"""What the pipeline writes to its log topics, and the names of those topics.

``chat.submitted``  Submitted records keyed by chat (Router → Sequencer)
``chat.messages``   StoredMessage records keyed by chat, seq contiguous (Sequencer → workers)
``chat.receipts``   ReceiptSubmitted records keyed by chat (Router → ReceiptWorker)
``chat.sequencer``  compacted changelog of the Sequencer's state (last seq, dedupe window)

Records are MessagePack; new fields always get defaults so old records still decode.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from chatcore.model import Attachment, EventKind, MessageKind, ReceiptStatus, StoredMessage

__all__ = [
    "DEFAULT_TOPICS",
    "ReceiptSubmitted",
    "Submitted",
    "Topics",
    "TracedMessage",
    "decode_message",
    "decode_receipt",
    "decode_submitted",
    "decode_traced_message",
    "encode",
]


class Topics(NamedTuple):
    """Log topic names; a prefix lets several deployments share one cluster."""

    submitted: str = "chat.submitted"
    messages: str = "chat.messages"
    receipts: str = "chat.receipts"
    sequencer_state: str = "chat.sequencer"

    @classmethod
    def prefixed(cls, prefix: str) -> Topics:
        return cls(*(f"{prefix}{name}" for name in cls()))


DEFAULT_TOPICS = Topics()


class Submitted(msgspec.Struct, frozen=True):
    """A message (or lifecycle event) the Router accepted: durable, not yet sequenced."""

    message_id: int
    chat_id: str
    sender: str
    client_msg_id: str
    kind: MessageKind | EventKind
    body: str
    ts: int
    attachment: Attachment | None = None
    encrypted: bool = False
    sender_device: str = ""
    target: int = 0
    """An event's target message (seq)."""
    trace: str = ""
    """W3C ``traceparent`` of the send, when tracing is on (``chatcore.telemetry.tracing``)."""

    def sequenced(self, seq: int, counted: int = 0) -> StoredMessage:
        return StoredMessage(
            chat_id=self.chat_id,
            seq=seq,
            message_id=self.message_id,
            sender=self.sender,
            client_msg_id=self.client_msg_id,
            kind=self.kind,
            body=self.body,
            ts=self.ts,
            attachment=self.attachment,
            encrypted=self.encrypted,
            sender_device=self.sender_device,
            target=self.target,
            counted=counted,
        )


class TracedMessage(StoredMessage, frozen=True):
    """A sequenced message with the trace context of its Sequencer span, as
    ``chat.messages`` carries it when tracing is on. Stores get :meth:`untraced`."""

    trace: str = ""

    def untraced(self) -> StoredMessage:
        return StoredMessage(*(getattr(self, f) for f in StoredMessage.__struct_fields__))


class ReceiptSubmitted(msgspec.Struct, frozen=True):
    """A member's cumulative receipt: delivered or read up to ``seq``."""

    chat_id: str
    user: str
    status: ReceiptStatus
    seq: int
    ts: int


_encoder = msgspec.msgpack.Encoder()
_submitted = msgspec.msgpack.Decoder(Submitted)
_message = msgspec.msgpack.Decoder(StoredMessage)
_traced = msgspec.msgpack.Decoder(TracedMessage)
_receipt = msgspec.msgpack.Decoder(ReceiptSubmitted)


def encode(record: Submitted | StoredMessage | TracedMessage | ReceiptSubmitted) -> bytes:
    return _encoder.encode(record)


def decode_submitted(data: bytes) -> Submitted:
    return _submitted.decode(data)


def decode_message(data: bytes) -> StoredMessage:
    return _message.decode(data)


def decode_traced_message(data: bytes) -> TracedMessage:
    """A ``chat.messages`` record with its trace context ("" when it has none)."""
    return _traced.decode(data)


def decode_receipt(data: bytes) -> ReceiptSubmitted:
    return _receipt.decode(data)
