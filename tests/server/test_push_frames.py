"""PushFrames: one encoding per (event, codec), shared by every target connection."""

from __future__ import annotations

import msgspec

from chatcore.events import ChatEvent, TypingEvent
from chatcore.model import ChatInfo
from chatcore.protocol import SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, ServerFrame, codec_for
from chatcore.server.metrics import ServerMetrics
from chatcore.server.push import PushFrames

JSON = codec_for(SUBPROTOCOL_JSON)
MSGPACK = codec_for(SUBPROTOCOL_MSGPACK)


def test_an_event_is_built_once_per_codec_and_decodes_to_its_frame() -> None:
    frames = PushFrames(ServerMetrics())
    event = TypingEvent("c1", "alice")
    as_json = frames.message(event, JSON)
    assert frames.message(event, JSON) is as_json
    as_msgpack = frames.message(event, MSGPACK)
    assert as_msgpack is not as_json
    assert as_json["type"] == as_msgpack["type"] == "websocket.send"
    decoded_json = JSON.decode_server(as_json["text"])
    decoded_msgpack = MSGPACK.decode_server(as_msgpack["bytes"])
    assert decoded_json == decoded_msgpack
    assert msgspec.to_builtins(decoded_json) == {"type": "typing", "chat": "c1", "user": "alice"}


def test_equal_but_distinct_events_are_not_confused_and_old_ones_are_evicted() -> None:
    frames = PushFrames(ServerMetrics(), size=2)
    first = TypingEvent("c1", "alice")
    same_fields = TypingEvent("c1", "alice")
    chat = ChatEvent(ChatInfo("c2", "group", ("alice", "bob"), "t", 1), last_seq=4)
    a = frames.message(first, JSON)
    b = frames.message(same_fields, JSON)
    assert a is not b and a == b  # keyed by identity, same bytes
    frames.message(chat, JSON)  # evicts `first`
    assert frames.message(first, JSON) is not a
    frame: ServerFrame = JSON.decode_server(frames.message(chat, JSON)["text"])
    assert msgspec.to_builtins(frame)["chat"]["members"] == ["alice", "bob"]
