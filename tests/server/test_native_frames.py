"""The fast path's framing: WebSocket frames and batches, decoded as a client does."""

from __future__ import annotations

import pytest

from chatcore.errors import ProtocolError
from chatcore.protocol import SUBPROTOCOLS, Pong, codec_for
from chatcore.server.native import _batch_payload, ws_frame


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_ws_frame_lengths(size: int) -> None:
    frame = ws_frame(0x1, b"x" * size)
    assert frame[0] == 0x81  # final, text
    if size < 126:
        assert frame[1] == size and len(frame) == 2 + size
    elif size < 65536:
        assert frame[1] == 126 and int.from_bytes(frame[2:4]) == size
    else:
        assert frame[1] == 127 and int.from_bytes(frame[2:10]) == size
    assert frame.endswith(b"x" * size)


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize("count", [1, 2, 15, 16, 64])
def test_a_batch_splits_into_its_frames_in_order(subprotocol: str, count: int) -> None:
    codec = codec_for(subprotocol)
    payloads = [codec.encode_server(Pong(id=i)) for i in range(count)]
    batch = _batch_payload(codec, payloads)
    data = batch if codec.binary else batch.decode()
    frames = [codec.decode_server(part) for part in codec.split_server(data)]
    assert frames == [Pong(id=i) for i in range(count)]


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
def test_a_single_frame_is_not_a_batch(subprotocol: str) -> None:
    codec = codec_for(subprotocol)
    encoded = codec.encode_server(Pong(id=7))
    data = encoded if codec.binary else encoded.decode()
    assert codec.split_server(data) == [data]


def test_a_broken_batch_is_a_protocol_error() -> None:
    codec = codec_for(SUBPROTOCOLS[0])
    with pytest.raises(ProtocolError):
        codec.split_server('[{"type":"pong","id":1},')
    # an element that is not a frame fails alone, when it is decoded
    first, second = codec.split_server('[{"type":"pong","id":1}, 3]')
    assert codec.decode_server(first) == Pong(id=1)
    with pytest.raises(ProtocolError):
        codec.decode_server(second)
