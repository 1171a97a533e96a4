"""Frames to bytes and back, in JSON (text frames) or MessagePack (binary frames).

No I/O: a transport hands :class:`FrameCodec` the payload of one WebSocket frame
and gets a typed frame, or hands it a frame and sends the bytes it returns.

Decoding untrusted input raises :class:`~chatcore.errors.ProtocolError` (code
``bad_frame``) or its subclass :class:`~chatcore.errors.FrameTooLarge` (code
``too_large``) and nothing else: the size limit is checked before any parsing,
then every failure of msgspec (bad syntax, bad UTF-8, wrong or missing fields,
broken constraints, nesting too deep) is mapped with ``raise ... from exc``.
One typed decoder per union and format is built at import and shared.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final, TypeVar

import msgspec
from typing_extensions import Buffer

from chatcore.errors import FrameTooLarge, ProtocolError
from chatcore.protocol.fields import RequestId
from chatcore.protocol.frames import ClientFrame, ServerFrame

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "FrameCodec",
    "SUBPROTOCOLS",
    "SUBPROTOCOL_JSON",
    "SUBPROTOCOL_MSGPACK",
    "codec_for",
]

SUBPROTOCOL_JSON: Final = "chatcore.v1.json"
"""JSON in WebSocket text frames; the default."""
SUBPROTOCOL_MSGPACK: Final = "chatcore.v1.msgpack"
"""MessagePack in WebSocket binary frames, same fields as JSON."""
SUBPROTOCOLS: Final = (SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK)
"""Every subprotocol, in order of preference."""
DEFAULT_MAX_FRAME_BYTES: Final = 64 * 1024
"""Inbound frames longer than this many bytes are refused with ``too_large``."""

_T = TypeVar("_T")


class _RequestIdOnly(msgspec.Struct):
    """Just the ``id`` of a frame, to answer a frame that failed to decode."""

    id: RequestId | None = None


_JSON_CLIENT: Final[msgspec.json.Decoder[ClientFrame]] = msgspec.json.Decoder(ClientFrame)
_JSON_SERVER: Final[msgspec.json.Decoder[ServerFrame]] = msgspec.json.Decoder(ServerFrame)
_JSON_ID: Final = msgspec.json.Decoder(_RequestIdOnly)
_JSON_ENCODER: Final = msgspec.json.Encoder()
_MSGPACK_CLIENT: Final[msgspec.msgpack.Decoder[ClientFrame]] = msgspec.msgpack.Decoder(ClientFrame)
_MSGPACK_SERVER: Final[msgspec.msgpack.Decoder[ServerFrame]] = msgspec.msgpack.Decoder(ServerFrame)
_MSGPACK_ID: Final = msgspec.msgpack.Decoder(_RequestIdOnly)
_MSGPACK_ENCODER: Final = msgspec.msgpack.Encoder()
_JSON_BATCH: Final = msgspec.json.Decoder(list[msgspec.Raw])
_MSGPACK_BATCH: Final = msgspec.msgpack.Decoder(list[msgspec.Raw])
_MSGPACK_ARRAY_HEADS: Final = frozenset((*range(0x90, 0xA0), 0xDC, 0xDD))


class FrameCodec:
    """Encodes and decodes the frames of one subprotocol, with an inbound size limit.

    Encoding does not validate: a frame built in code with out-of-range values is
    encoded as given. Encoding has no size limit either (a history page may be
    large); the limit guards what a peer sends.
    """

    __slots__ = (
        "_decode_client",
        "_decode_id",
        "_decode_server",
        "_encode",
        "binary",
        "max_frame_bytes",
        "subprotocol",
    )

    subprotocol: str
    """The WebSocket subprotocol name this codec speaks."""
    binary: bool
    """Whether frames travel as WebSocket binary frames (else as UTF-8 text frames)."""
    max_frame_bytes: int
    """The inbound size limit in bytes."""

    def __init__(
        self,
        subprotocol: str = SUBPROTOCOL_JSON,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        """Raise ProtocolError for an unknown subprotocol, ValueError for a limit below 1."""
        if max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes must be at least 1, got {max_frame_bytes}")
        self._decode_client: Callable[[Buffer], ClientFrame]
        self._decode_server: Callable[[Buffer], ServerFrame]
        self._decode_id: Callable[[Buffer], _RequestIdOnly]
        if subprotocol == SUBPROTOCOL_JSON:
            self.binary = False
            self._decode_client = _JSON_CLIENT.decode
            self._decode_server = _JSON_SERVER.decode
            self._decode_id = _JSON_ID.decode
            self._encode: Callable[[object], bytes] = _JSON_ENCODER.encode
        elif subprotocol == SUBPROTOCOL_MSGPACK:
            self.binary = True
            self._decode_client = _MSGPACK_CLIENT.decode
            self._decode_server = _MSGPACK_SERVER.decode
            self._decode_id = _MSGPACK_ID.decode
            self._encode = _MSGPACK_ENCODER.encode
        else:
            raise ProtocolError(
                f"unknown subprotocol {subprotocol!r}; expected one of {', '.join(SUBPROTOCOLS)}"
            )
        self.subprotocol = subprotocol
        self.max_frame_bytes = max_frame_bytes

    def __repr__(self) -> str:
        return f"FrameCodec({self.subprotocol!r}, max_frame_bytes={self.max_frame_bytes})"

    def decode_client(self, data: Buffer | str) -> ClientFrame:
        """Decode a frame a client sent; raise ProtocolError or FrameTooLarge."""
        return self._decode(self._decode_client, data)

    def decode_server(self, data: Buffer | str) -> ServerFrame:
        """Decode a frame the server sent; raise ProtocolError or FrameTooLarge."""
        return self._decode(self._decode_server, data)

    def split_server(self, data: Buffer | str) -> list[Buffer | str]:
        """The frames of one WebSocket message from the server: the message itself, or
        each frame of a batch (an array of frames, sent to a client that said
        ``batch: true`` in ``hello``), in order, each to decode with
        :meth:`decode_server`. Raise ProtocolError or FrameTooLarge for a batch that
        is not an array of values."""
        if not self._is_batch(data):
            return [data]
        batch = _MSGPACK_BATCH if self.binary else _JSON_BATCH
        return [bytes(raw) for raw in self._decode(batch.decode, data)]

    def _is_batch(self, data: Buffer | str) -> bool:
        if isinstance(data, str):
            return data[:1] == "[" or data.lstrip()[:1] == "["
        head = memoryview(data)[:1].tobytes()
        if self.binary:
            return bool(head) and head[0] in _MSGPACK_ARRAY_HEADS
        return head == b"[" or bytes(data).lstrip()[:1] == b"["

    def encode_client(self, frame: ClientFrame) -> bytes:
        """Encode a client frame (UTF-8 JSON or MessagePack)."""
        return self._encode(frame)

    def encode_server(self, frame: ServerFrame) -> bytes:
        """Encode a server frame (UTF-8 JSON or MessagePack)."""
        return self._encode(frame)

    def request_id(self, data: Buffer | str) -> int | None:
        """The valid ``id`` of a frame, even one that failed to decode, else None; never raises.

        Lets a server answer a broken request with an ``error`` frame that echoes its id.
        """
        try:
            return self._decode(self._decode_id, data).id
        except ProtocolError:
            return None

    def _decode(self, decode: Callable[[Buffer], _T], data: Buffer | str) -> _T:
        payload = self._payload(data)
        try:
            return decode(payload)
        except msgspec.ValidationError as exc:
            raise ProtocolError(f"invalid frame: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"malformed frame: {exc}") from exc
        except UnicodeError as exc:
            raise ProtocolError("malformed frame: text is not valid UTF-8") from exc
        except RecursionError as exc:
            raise ProtocolError("malformed frame: nested too deeply") from exc
        except (ValueError, TypeError, OverflowError) as exc:  # defensive: msgspec edge cases
            raise ProtocolError(f"malformed frame: {exc}") from exc

    def _payload(self, data: Buffer | str) -> Buffer:
        """Check type and size before any parsing; text becomes UTF-8 bytes."""
        if isinstance(data, str):
            if self.binary:
                raise ProtocolError(f"{self.subprotocol} frames must be binary, got text")
            if len(data) > self.max_frame_bytes:  # every character takes at least one byte
                raise self._too_large(f"{len(data)} characters")
            try:
                data = data.encode()
            except UnicodeError as exc:
                raise ProtocolError("malformed frame: text is not valid UTF-8") from exc
        try:
            size = memoryview(data).nbytes
        except TypeError as exc:
            raise ProtocolError(f"a frame is bytes or str, not {type(data).__name__}") from exc
        if size > self.max_frame_bytes:
            raise self._too_large(f"{size} bytes")
        return data

    def _too_large(self, size: str) -> FrameTooLarge:
        return FrameTooLarge(f"frame of {size} exceeds the limit of {self.max_frame_bytes} bytes")


@functools.lru_cache(maxsize=64)
def codec_for(
    subprotocol: str = SUBPROTOCOL_JSON, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> FrameCodec:
    """The codec of a negotiated subprotocol; raise ProtocolError if it is unknown.

    Codecs hold no state, so one instance per (subprotocol, limit) is shared by every
    caller (a server holds one per connection otherwise).
    """
    return FrameCodec(subprotocol, max_frame_bytes=max_frame_bytes)
