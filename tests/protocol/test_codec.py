"""The codecs: bad input only ever raises ProtocolError, sizes are checked first."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcore.errors import FrameTooLarge, ProtocolError
from chatcore.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    MAX_ID_LENGTH,
    MAX_LIST_LENGTH,
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    SUBPROTOCOLS,
    FrameCodec,
    Ping,
    Pong,
    codec_for,
)
from tests.protocol.protocol_examples import CLIENT_EXAMPLES, SERVER_EXAMPLES

JSON = codec_for(SUBPROTOCOL_JSON)
MSGPACK = codec_for(SUBPROTOCOL_MSGPACK)
CODECS = [JSON, MSGPACK]
_LONG_ID = "x" * (MAX_ID_LENGTH + 1)
_INT64_MAX = 2**63 - 1


def _send(**fields: Any) -> dict[str, Any]:
    return {"type": "send", "id": 1, "chat": "c", "client_msg_id": "m", "kind": "text"} | fields


# Well-formed JSON or MessagePack objects that break the protocol, for both codecs.
BAD_OBJECTS: list[Any] = [
    None, 42, "ping", [], [{"type": "ping", "id": 1}], {},
    {"id": 1},
    {"type": None, "id": 1},
    {"type": 7, "id": 1},
    {"type": "nope", "id": 1},
    {"type": "PING", "id": 1},
    {"type": "welcome", "id": 1, "user": "a", "device": "d", "heartbeat_s": 30},
    {"type": "ping"},
    {"type": "ping", "id": "1"},
    {"type": "ping", "id": 1.5},
    {"type": "ping", "id": True},
    {"type": "ping", "id": None},
    {"type": "ping", "id": -1},
    {"type": "ping", "id": _INT64_MAX + 1},
    {"type": "ping", "id": [1]},
    {"type": "hello", "id": 1, "token": "", "device": "d"},
    {"type": "hello", "id": 1, "token": "t", "device": _LONG_ID},
    {"type": "chat.create", "id": 1, "kind": "channel", "members": ["b"]},
    {"type": "chat.create", "id": 1, "kind": "group", "members": "bob"},
    {"type": "chat.create", "id": 1, "kind": "group", "members": [1]},
    {"type": "chat.create", "id": 1, "kind": "group", "members": [""]},
    {"type": "chat.create", "id": 1, "kind": "group", "members": ["u"] * (MAX_LIST_LENGTH + 1)},
    {"type": "chat.create", "id": 1, "kind": "group", "members": ["b"], "title": 5},
    {"type": "chat.members", "id": 1, "chat": "c", "add": None},
    _send(kind="audio"),
    _send(body=5),
    _send(kind="image"),
    _send(kind="file", attachment={"url": "u", "name": "n", "size": -1, "mime": "m"}),
    _send(kind="file", attachment={"blob": "../x", "name": "n", "size": 1, "mime": "m"}),
    _send(kind="file", attachment={"blob": "A" * 64, "name": "n", "size": 1, "mime": "m"}),
    _send(encrypted="yes"),
    _send(chat=_LONG_ID),
    _send(client_msg_id=""),
    {"type": "history", "id": 1, "chat": "c", "limit": 0},
    {"type": "history", "id": 1, "chat": "c", "limit": 201},
    {"type": "history", "id": 1, "chat": "c", "before": 5, "after": 2},
    {"type": "history", "id": 1, "chat": "c", "before": -1},
    {"type": "sync", "id": 1, "cursors": ["c"]},
    {"type": "sync", "id": 1, "cursors": {"c": -1}},
    {"type": "sync", "id": 1, "cursors": {"": 1}},
    {"type": "receipt", "chat": "c", "status": "seen", "seq": 1},
    {"type": "receipt", "chat": "c", "status": "read", "seq": -1},
    {"type": "receipt", "chat": "c", "status": "read"},
    {"type": "presence.subscribe", "id": 1, "users": [None]},
    {"type": "typing"},
    {"type": "typing", "chat": {"nested": [[[{"garbage": True}]]]}},
]  # fmt: skip

# Bytes that are not JSON at all, or JSON no decoder can handle.
BAD_JSON: list[bytes | str] = [
    b"",
    b" ",
    b"not json",
    b"{",
    b'{"type":"ping","id":1',
    b'{"type":"ping","id":1} trailing',
    b'{"type":"ping","id":NaN}',
    b'{"type":"ping","id":99999999999999999999999999999}',
    b'{"type":"ping","id":1e400}',
    b"\xef\xbb\xbf" + b'{"type":"ping","id":1}',
    b'{"type":"typing","chat":"\xff\xfe"}',
    b'{"type":"typing","chat":"\\ud800"}',
    '{"type":"typing","chat":"\ud800"}',
    b'{"type":"ping","id":1,"x":' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    b"[" * 60_000,
    b'{"type":"ping","id":1,"x":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"}",
]

# Bytes that are not MessagePack, or MessagePack no decoder can handle.
BAD_MSGPACK: list[bytes | str] = [
    b"",
    b"\xc1",
    b"\x81",
    b"\x82\xa4type\xa4ping",
    b"\x82\xa4type\xa4ping\xa2id\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x82\xa4type\xa6typing\xa4chat\xa2\xff\xfe",
    b"\x82\xa4type\xa6typing\xa4chat\xc4\x01c",
    b"\x82\xa4type\xa6typing\xa4chat\xd4\x01\x00",
    b"\x81\x01\x02",
    b"\x83\xa4type\xa4ping\xa2id\x01\xa1x" + b"\x91" * 50_000 + b"\xc0",
    b"\x91" * 60_000,
    b'{"type":"ping","id":1}',
    '{"type":"ping","id":1}',
]


def _assert_protocol_error(decode: Any, data: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(data)
    assert info.value.code in ("bad_frame", "too_large")
    assert info.value.message
    return info.value


@pytest.mark.parametrize("obj", BAD_OBJECTS)
@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.subprotocol)
def test_bad_object_is_a_bad_frame(codec: FrameCodec, obj: Any) -> None:
    data = json.dumps(obj).encode() if codec is JSON else msgspec.msgpack.encode(obj)
    error = _assert_protocol_error(codec.decode_client, data)
    assert error.code == "bad_frame"
    assert type(error) is ProtocolError


@pytest.mark.parametrize("data", BAD_JSON)
def test_bad_json_is_a_bad_frame(data: bytes | str) -> None:
    assert _assert_protocol_error(JSON.decode_client, data).code == "bad_frame"
    assert _assert_protocol_error(JSON.decode_server, data).code == "bad_frame"


@pytest.mark.parametrize("data", BAD_MSGPACK)
def test_bad_msgpack_is_a_bad_frame(data: bytes | str) -> None:
    assert _assert_protocol_error(MSGPACK.decode_client, data).code == "bad_frame"
    assert _assert_protocol_error(MSGPACK.decode_server, data).code == "bad_frame"


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.subprotocol)
@pytest.mark.parametrize("data", [None, 5, 1.5, ["x"], object()])
def test_a_frame_that_is_not_bytes_or_str_is_a_bad_frame(codec: FrameCodec, data: Any) -> None:
    assert _assert_protocol_error(codec.decode_client, data).code == "bad_frame"


def test_errors_say_what_is_wrong() -> None:
    with pytest.raises(ProtocolError, match=r"Expected `int`, got `str` - at `\$.id`"):
        JSON.decode_client('{"type":"ping","id":"1"}')
    with pytest.raises(ProtocolError, match="missing required field `type`"):
        JSON.decode_client("{}")
    with pytest.raises(ProtocolError, match="needs an `attachment`"):
        JSON.decode_client(json.dumps(_send(kind="image")))
    with pytest.raises(ProtocolError, match="must be binary"):
        MSGPACK.decode_client('{"type":"ping","id":1}')


def test_buffers_other_than_bytes_decode() -> None:
    data = b'{"type":"ping","id":1}'
    assert JSON.decode_client(bytearray(data)) == Ping(id=1)
    assert JSON.decode_client(memoryview(data)) == Ping(id=1)


# --- size limit --------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.subprotocol)
def test_frame_over_the_limit_is_too_large_before_parsing(codec: FrameCodec) -> None:
    garbage = b"\xc1" * (DEFAULT_MAX_FRAME_BYTES + 1)
    for decode in (codec.decode_client, codec.decode_server):
        with pytest.raises(FrameTooLarge) as info:
            decode(garbage)
        assert info.value.code == "too_large"
        assert str(DEFAULT_MAX_FRAME_BYTES) in info.value.message


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
def test_frame_at_the_limit_decodes(subprotocol: str) -> None:
    frame = Ping(id=1)
    size = len(codec_for(subprotocol).encode_client(frame))
    codec = codec_for(subprotocol, max_frame_bytes=size)
    assert codec.decode_client(codec.encode_client(frame)) == frame
    smaller = codec_for(subprotocol, max_frame_bytes=size - 1)
    with pytest.raises(FrameTooLarge):
        smaller.decode_client(codec.encode_client(frame))


def test_text_is_measured_in_utf8_bytes() -> None:
    codec = codec_for(SUBPROTOCOL_JSON, max_frame_bytes=41)
    text = '{"type":"typing","chat":"' + "é" * 7 + '"}'  # 34 characters, 41 bytes
    assert codec.decode_client(text) == codec.decode_client(text.encode())
    too_long = '{"type":"typing","chat":"' + "é" * 8 + '"}'  # 35 characters, 43 bytes
    assert len(too_long) <= 41
    with pytest.raises(FrameTooLarge):
        codec.decode_client(too_long)
    with pytest.raises(FrameTooLarge):
        codec.decode_client("x" * 42)


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_frame_bytes"):
        FrameCodec(max_frame_bytes=0)


# --- subprotocols and request ids --------------------------------------------


def test_codec_per_subprotocol() -> None:
    assert SUBPROTOCOLS == ("chatcore.v1.json", "chatcore.v1.msgpack")
    assert (JSON.subprotocol, JSON.binary) == ("chatcore.v1.json", False)
    assert (MSGPACK.subprotocol, MSGPACK.binary) == ("chatcore.v1.msgpack", True)
    assert codec_for().subprotocol == SUBPROTOCOL_JSON
    assert JSON.encode_server(Pong(id=3)) == b'{"type":"pong","id":3}'
    assert MSGPACK.encode_server(Pong(id=3)) == msgspec.msgpack.encode({"type": "pong", "id": 3})
    with pytest.raises(ProtocolError, match="unknown subprotocol"):
        codec_for("chatcore.v2.json")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"type":"ping","id":4}', 4),
        (b'{"type":"send","id":6,"chat":""}', 6),
        (b'{"type":"nope","id":7}', 7),
        (b'{"id":8}', 8),
        (b'{"type":"typing","chat":"c"}', None),
        (b'{"type":"ping","id":"9"}', None),
        (b'{"type":"ping","id":-1}', None),
        (b"[1,2]", None),
        (b"garbage", None),
        (b"{" * (DEFAULT_MAX_FRAME_BYTES + 1), None),
    ],
)
def test_request_id_of_a_broken_frame(data: bytes, expected: int | None) -> None:
    assert JSON.request_id(data) == expected
    obj = None if expected is None else json.loads(data)
    if obj is not None:
        assert MSGPACK.request_id(msgspec.msgpack.encode(obj)) == expected


# --- fuzzing -----------------------------------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec="utf-8"), max_size=20)
)
json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
_msgpack_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=10)
)
msgpack_values = st.recursive(
    _msgpack_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10) | st.integers(0, 5), children, max_size=5)
    ),
    max_leaves=30,
)
_examples = st.sampled_from(CLIENT_EXAMPLES + SERVER_EXAMPLES).map(json.loads)
_keys = st.sampled_from(
    ["type", "id", "chat", "seq", "members", "kind", "attachment", "cursors", "users", "limit"]
)


def _decodes_or_protocol_error(codec: FrameCodec, data: bytes | str) -> None:
    """Either side decodes to a frame that round-trips, or raises ProtocolError; nothing else."""
    for decode, encode in (
        (codec.decode_client, codec.encode_client),
        (codec.decode_server, codec.encode_server),
    ):
        try:
            frame = decode(data)
        except ProtocolError:
            continue
        assert decode(encode(frame)) == frame  # type: ignore[arg-type]


@settings(max_examples=300)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_as_another_exception(data: bytes) -> None:
    for codec in CODECS:
        _decodes_or_protocol_error(codec, data)


@settings(max_examples=300)
@given(text=st.text(st.characters(codec=None), max_size=100))
def test_arbitrary_text_never_escapes_as_another_exception(text: str) -> None:
    for codec in CODECS:
        _decodes_or_protocol_error(codec, text)


@settings(max_examples=300)
@given(value=json_values)
def test_arbitrary_json_values_never_escape(value: Any) -> None:
    _decodes_or_protocol_error(JSON, json.dumps(value))


@settings(max_examples=300)
@given(value=msgpack_values)
def test_arbitrary_msgpack_values_never_escape(value: Any) -> None:
    _decodes_or_protocol_error(MSGPACK, msgspec.msgpack.encode(value))


@settings(max_examples=500)
@given(example=_examples, key=_keys, value=json_values)
def test_mutated_examples_decode_or_fail_cleanly(
    example: dict[str, Any], key: str, value: Any
) -> None:
    example[key] = value
    _decodes_or_protocol_error(JSON, json.dumps(example))
    try:
        packed = msgspec.msgpack.encode(example)
    except OverflowError:  # an integer msgpack cannot hold
        return
    _decodes_or_protocol_error(MSGPACK, packed)
