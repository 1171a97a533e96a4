"""``push.register`` / ``push.unregister``: what the codec accepts, and what it refuses
as ``bad_frame`` before the server sees it (an unknown kind, an oversized token)."""

from __future__ import annotations

import json

import pytest

from chatcore.errors import ProtocolError
from chatcore.protocol import (
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    PushKeysView,
    PushRegister,
    PushUnregister,
    codec_for,
)

JSON = codec_for(SUBPROTOCOL_JSON)
MSGPACK = codec_for(SUBPROTOCOL_MSGPACK)


@pytest.mark.parametrize(
    "frame",
    [
        PushRegister(id=1, kind="fcm", token="t:1"),
        PushRegister(
            id=2, kind="webpush", token="https://x/1", keys=PushKeysView(p256dh="B", auth="A")
        ),
        PushUnregister(id=3),
    ],
)
def test_push_frames_round_trip(frame: PushRegister | PushUnregister) -> None:
    for codec in (JSON, MSGPACK):
        assert codec.decode_client(codec.encode_client(frame)) == frame


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"kind": "sms", "token": "t"}, "kind"),
        ({"kind": "fcm", "token": ""}, "token"),
        ({"kind": "fcm", "token": "t" * 4097}, "token"),
        ({"kind": "webpush", "token": "https://x", "keys": {"p256dh": "B"}}, "auth"),
        (
            {"kind": "webpush", "token": "https://x", "keys": {"p256dh": "B" * 129, "auth": "A"}},
            "p256dh",
        ),
        ({"token": "t"}, "kind"),
    ],
)
def test_a_malformed_push_register_is_a_bad_frame(fields: dict[str, object], problem: str) -> None:
    data = json.dumps({"type": "push.register", "id": 9, **fields})
    with pytest.raises(ProtocolError, match=problem) as caught:
        JSON.decode_client(data)
    assert caught.value.code == "bad_frame"
