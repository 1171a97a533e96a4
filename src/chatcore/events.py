"""Events the pipeline sends to gateways over the GatewayBus: pure values.

An :class:`Envelope` names the target connections (by ``conn_id``) on one gateway
and carries one event; :func:`encode_envelope` / :func:`decode_envelope` are its
bytes on the bus. One bus payload may carry several envelopes for the same gateway:
:func:`join_envelopes` makes a MessagePack array of encoded envelopes without
decoding them again, and :func:`decode_envelopes` reads either form. Gateways turn
events into wire frames for each client (:mod:`chatcore.gateway.convert`); the bus
itself only moves bytes. This module sits below both the pipeline and the gateway,
so neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from chatcore.model import ChatInfo, PresenceState, ReceiptStatus, StoredMessage

__all__ = [
    "ChatEvent",
    "Envelope",
    "Event",
    "KeysChangedEvent",
    "MessageEvent",
    "PresenceEvent",
    "ReceiptEvent",
    "TypingEvent",
    "decode_envelope",
    "decode_envelopes",
    "encode_envelope",
    "join_envelopes",
]


class MessageEvent(msgspec.Struct, frozen=True, tag="message"):
    message: StoredMessage


class ReceiptEvent(msgspec.Struct, frozen=True, tag="receipt"):
    chat_id: str
    user: str
    status: ReceiptStatus
    seq: int
    ts: int


class ChatEvent(msgspec.Struct, frozen=True, tag="chat"):
    chat: ChatInfo
    last_seq: int
    removed: tuple[str, ...] = ()
    """Members this change took out (gateways re-check their presence watches)."""


class TypingEvent(msgspec.Struct, frozen=True, tag="typing"):
    chat_id: str
    user: str


class PresenceEvent(msgspec.Struct, frozen=True, tag="presence"):
    states: tuple[PresenceState, ...]


class KeysChangedEvent(msgspec.Struct, frozen=True, tag="keys.changed"):
    """``user``'s ``device`` published key ``version`` (``public_key``), or, with both
    None, had its key revoked."""

    user: str
    device: str
    version: int | None = None
    public_key: str | None = None


Event = MessageEvent | ReceiptEvent | ChatEvent | TypingEvent | PresenceEvent | KeysChangedEvent


class Envelope(msgspec.Struct, frozen=True):
    conns: tuple[str, ...]
    event: Event


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Envelope)
_many_decoder = msgspec.msgpack.Decoder(Envelope | list[Envelope])


def encode_envelope(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode_envelope(data: bytes) -> Envelope:
    """Raises ``msgspec.DecodeError`` on bytes that are not an envelope."""
    return _decoder.decode(data)


def join_envelopes(payloads: Sequence[bytes]) -> bytes:
    """One bus payload of encoded envelopes (from :func:`encode_envelope`), in order.

    A single payload is returned as it is (what a gateway that reads only single
    envelopes understands); several become one MessagePack array of the payloads as
    they are (``msgspec.Raw``: not decoded or encoded again). Raises ValueError for none.
    """
    if len(payloads) == 1:
        return payloads[0]
    if not payloads:
        raise ValueError("join_envelopes needs at least one payload")
    return _encoder.encode([msgspec.Raw(p) for p in payloads])


def decode_envelopes(data: bytes) -> list[Envelope]:
    """The envelopes of one bus payload, in order: one (from :func:`encode_envelope`)
    or several (from :func:`join_envelopes`). Raises ``msgspec.DecodeError`` on bytes
    that are neither."""
    decoded = _many_decoder.decode(data)
    return decoded if isinstance(decoded, list) else [decoded]
