"""Server ``error`` frames as chatcore exceptions, and answers of the wrong type."""

from __future__ import annotations

from typing import TypeVar

from chatcore.errors import (
    ChatcoreError,
    FrameTooLarge,
    InvalidRequest,
    NotFound,
    NotMember,
    Overloaded,
    ProtocolError,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from chatcore.protocol import ErrorFrame, ServerFrame

__all__ = ["error_from_frame", "expect_frame"]

_F = TypeVar("_F", bound=ServerFrame)


def error_from_frame(frame: ErrorFrame) -> ChatcoreError:
    """The exception matching an ``error`` frame's ``code``, carrying its message."""
    text = frame.message or frame.code
    match frame.code:
        case "bad_frame":
            return ProtocolError(text)
        case "too_large":
            return FrameTooLarge(text)
        case "unauthorized":
            return Unauthorized(text)
        case "not_member":
            return NotMember(text)
        case "not_found":
            return NotFound(text)
        case "invalid":
            return InvalidRequest(text)
        case "rate_limited":
            return RateLimited(text, retry_after_ms=frame.retry_after_ms or 0)
        case "overloaded":
            return Overloaded(text, retry_after_ms=frame.retry_after_ms or 0)
        case "unavailable":
            return Unavailable(text)
        case _:
            return ChatcoreError(text)


def expect_frame(frame: ServerFrame, kind: type[_F]) -> _F:
    """``frame`` if it is a ``kind``; raise ProtocolError if the server answered otherwise."""
    if not isinstance(frame, kind):
        raise ProtocolError(f"expected {kind.__name__}, got {type(frame).__name__}")
    return frame
