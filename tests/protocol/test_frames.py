"""Frames against PROTOCOL.md: its examples decode, round-trip, and pass the JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

import chatcore.protocol as protocol
from chatcore.errors import ProtocolError
from chatcore.protocol import (
    CLIENT_FRAME_TYPES,
    SERVER_FRAME_TYPES,
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    AttachmentView,
    ChatFrame,
    ChatView,
    ErrorFrame,
    Hello,
    History,
    Message,
    PresenceFrame,
    Receipt,
    Send,
    codec_for,
    json_schema,
)
from tests.protocol._mini_schema import schema_errors
from tests.protocol.protocol_examples import CLIENT_EXAMPLES, SERVER_EXAMPLES

JSON = codec_for(SUBPROTOCOL_JSON)
MSGPACK = codec_for(SUBPROTOCOL_MSGPACK)


def test_unions_hold_every_frame_type_of_the_protocol() -> None:
    assert set(CLIENT_FRAME_TYPES) == {
        "hello", "ping", "chat.create", "chat.members", "chats", "send", "history", "sync",
        "receipt", "presence.subscribe", "presence.unsubscribe", "typing",
        "push.register", "push.unregister", "edit", "delete", "react", "unreact",
        "keys.publish", "keys.fetch", "keys.revoke",
    }  # fmt: skip
    assert set(SERVER_FRAME_TYPES) == {
        "welcome", "pong", "chat", "chats", "accepted", "message", "history", "synced",
        "receipt", "presence", "ok", "error", "typing", "keys", "keys.changed",
    }  # fmt: skip


def test_examples_have_no_placeholders_left() -> None:
    assert all("…" not in example for example in CLIENT_EXAMPLES + SERVER_EXAMPLES)


@pytest.mark.parametrize("example", CLIENT_EXAMPLES)
def test_client_example_decodes_and_round_trips(example: str) -> None:
    frame = JSON.decode_client(example)
    assert type(frame) is CLIENT_FRAME_TYPES[json.loads(example)["type"]]
    assert JSON.decode_client(JSON.encode_client(frame)) == frame
    assert MSGPACK.decode_client(MSGPACK.encode_client(frame)) == frame


@pytest.mark.parametrize("example", SERVER_EXAMPLES)
def test_server_example_decodes_and_encodes_to_the_same_object(example: str) -> None:
    frame = JSON.decode_server(example)
    assert type(frame) is SERVER_FRAME_TYPES[json.loads(example)["type"]]
    assert json.loads(JSON.encode_server(frame)) == json.loads(example)
    assert MSGPACK.decode_server(MSGPACK.encode_server(frame)) == frame


@pytest.mark.parametrize("example", CLIENT_EXAMPLES + SERVER_EXAMPLES)
def test_msgpack_carries_the_same_fields_as_json(example: str) -> None:
    as_msgpack = msgspec.msgpack.encode(json.loads(example))
    if example in CLIENT_EXAMPLES:
        assert MSGPACK.decode_client(as_msgpack) == JSON.decode_client(example)
    else:
        assert MSGPACK.decode_server(as_msgpack) == JSON.decode_server(example)


def test_client_frames_decode_to_the_documented_values() -> None:
    hello = JSON.decode_client(CLIENT_EXAMPLES[0])
    assert isinstance(hello, Hello)
    assert (hello.id, hello.device) == (1, "phone-1")
    history = JSON.decode_client('{"type":"history","id":7,"chat":"c"}')
    assert history == History(id=7, chat="c", before=None, after=None, limit=50)
    receipt = JSON.decode_client('{"type":"receipt","chat":"c","status":"read","seq":9}')
    assert receipt == Receipt(chat="c", status="read", seq=9)


def test_same_type_means_different_shapes_per_direction() -> None:
    assert type(JSON.decode_client('{"type":"typing","chat":"c"}')) is protocol.Typing
    pushed = JSON.decode_server('{"type":"typing","chat":"c","user":"u"}')
    assert pushed == protocol.TypingUpdate(chat="c", user="u")
    with pytest.raises(ProtocolError, match="user"):
        JSON.decode_server('{"type":"typing","chat":"c"}')
    assert CLIENT_FRAME_TYPES["history"] is not SERVER_FRAME_TYPES["history"]


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    frame = JSON.decode_client('{"type":"ping","id":1,"added_in_v2":{"x":[1,2]}}')
    assert frame == protocol.Ping(id=1)
    pushed = JSON.decode_server('{"type":"typing","chat":"c","user":"u","since":5}')
    assert pushed == protocol.TypingUpdate(chat="c", user="u")


def test_encoding_omits_defaults_but_keeps_required_nulls() -> None:
    view = ChatView(chat="c", kind="direct", members=["a", "b"], title=None, last_seq=0)
    encoded = json.loads(JSON.encode_server(ChatFrame(chat=view)))
    assert encoded == {
        "type": "chat",
        "chat": {
            "chat": "c",
            "kind": "direct",
            "members": ["a", "b"],
            "title": None,
            "last_seq": 0,
        },
    }
    assert json.loads(JSON.encode_server(PresenceFrame(states=[]))) == {
        "type": "presence",
        "states": [],
    }
    error = json.loads(JSON.encode_server(ErrorFrame(code="bad_frame", message="x")))
    assert error == {"type": "error", "code": "bad_frame", "message": "x"}


def test_message_id_is_a_decimal_string_on_the_wire() -> None:
    message = Message(
        chat="c", seq=1, message_id=str(2**63 + 5), sender="a", client_msg_id="m",
        kind="text", body="hi", ts=0,
    )  # fmt: skip
    assert json.loads(JSON.encode_server(message))["message_id"] == "9223372036854775813"
    assert JSON.decode_server(JSON.encode_server(message)) == message


def test_media_and_encrypted_sends_keep_their_fields() -> None:
    send = JSON.decode_client(CLIENT_EXAMPLES[7])
    assert isinstance(send, Send)
    assert send.attachment == AttachmentView(
        blob="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        name="a.png",
        size=1024,
        mime="image/png",
    )
    encrypted = JSON.decode_client(CLIENT_EXAMPLES[8])
    assert isinstance(encrypted, Send)
    assert encrypted.encrypted is True


def test_post_init_rules_hold_when_frames_are_built_in_code() -> None:
    with pytest.raises(ValueError, match="attachment"):
        Send(id=1, chat="c", client_msg_id="m", kind="video")
    with pytest.raises(ValueError, match="not both"):
        History(id=1, chat="c", before=5, after=2)


# --- JSON Schema -------------------------------------------------------------


def _schema() -> dict[str, Any]:
    schema = json_schema()
    assert json.loads(json.dumps(schema)) == schema
    return schema


def test_schema_is_json_and_names_every_tag() -> None:
    defs = _schema()["$defs"]
    client = defs["ClientFrame"]["discriminator"]
    server = defs["ServerFrame"]["discriminator"]
    assert client["propertyName"] == server["propertyName"] == "type"
    assert set(client["mapping"]) == set(CLIENT_FRAME_TYPES)
    assert set(server["mapping"]) == set(SERVER_FRAME_TYPES)


@pytest.mark.parametrize(
    ("union", "example"),
    [("ClientFrame", e) for e in CLIENT_EXAMPLES] + [("ServerFrame", e) for e in SERVER_EXAMPLES],
)
def test_every_example_passes_the_schema(union: str, example: str) -> None:
    schema = _schema()
    assert schema_errors(json.loads(example), schema["$defs"][union], schema) == []
    assert schema_errors(json.loads(example), schema, schema) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "ping"},
        {"type": "ping", "id": -1},
        {"type": "ping", "id": True},
        {"type": "nope", "id": 1},
        {"type": "receipt", "chat": "c", "status": "seen", "seq": 1},
        {"type": "history", "id": 1, "chat": "", "limit": 50},
        {"type": "history", "id": 1, "chat": "c", "limit": 201},
        {"type": "accepted", "id": 1, "chat": "c", "client_msg_id": "m", "message_id": "01"},
        {"type": "sync", "id": 1, "cursors": {"c": -1}},
    ],
)
def test_schema_rejects_what_the_decoder_rejects(bad: dict[str, Any]) -> None:
    schema = _schema()
    assert schema_errors(bad, schema, schema) != []
    encoded = json.dumps(bad)
    for decode in (JSON.decode_client, JSON.decode_server):
        with pytest.raises(ProtocolError):
            decode(encoded)


# --- public API --------------------------------------------------------------


def test_all_names_are_exported_once_and_exist() -> None:
    assert len(protocol.__all__) == len(set(protocol.__all__))
    for name in protocol.__all__:
        assert getattr(protocol, name) is not None, name


def test_every_frame_and_object_class_is_exported() -> None:
    classes = {cls.__name__ for cls in [*CLIENT_FRAME_TYPES.values(), *SERVER_FRAME_TYPES.values()]}
    nested = {"AttachmentView", "ChatView", "ChatSummary", "SyncedChat", "PresenceView"}
    assert classes | nested <= set(protocol.__all__)
