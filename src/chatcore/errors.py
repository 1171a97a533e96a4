"""The one exception tree of chatcore.

Every error chatcore raises on purpose derives from :class:`ChatcoreError`. Each
carries a stable ``code`` (the wire protocol's error codes, so a server can answer
with it unchanged) and ``retriable`` (whether trying the same call again later can
succeed). Errors of a backend library (sqlite3, aiokafka, cassandra-driver, redis)
never leak through a port: adapters map them with ``raise ... from exc``.

::

    ChatcoreError                     code            retriable
    ├── ProtocolError                 bad_frame/...   no    a frame that breaks PROTOCOL.md
    │   └── FrameTooLarge             too_large       no
    ├── Unauthorized                  unauthorized    no
    ├── NotMember                     not_member      no
    ├── NotFound                      not_found       no
    │   ├── MessageNotFound           not_found       no    no such message in a chat the user is in
    │   └── BlobNotFound              not_found       no    a blob this user did not upload
    ├── InvalidRequest                invalid         no    well-formed but not allowed
    │   └── BlobTooLarge              too_large       no    an upload over its kind's size limit
    ├── RateLimited                   rate_limited    yes   has ``retry_after_ms``
    ├── Unavailable                   unavailable     yes   a backend is down or timed out
    │   ├── Overloaded                overloaded      yes   behind; has ``retry_after_ms``
    │   ├── Fenced                    unavailable     no    a newer owner took the partition
    │   └── ConnectionClosed          unavailable     yes   the client's WebSocket closed
    ├── ClockMovedBackwards           internal        yes   past the configured bound
    └── ChatcoreClosed                unavailable     no    used after aclose()
"""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = [
    "BlobNotFound",
    "BlobTooLarge",
    "ChatcoreClosed",
    "ChatcoreError",
    "ClockMovedBackwards",
    "ConnectionClosed",
    "ErrorCode",
    "Fenced",
    "FrameTooLarge",
    "InvalidRequest",
    "MessageNotFound",
    "NotFound",
    "NotMember",
    "Overloaded",
    "ProtocolError",
    "RateLimited",
    "Unauthorized",
    "Unavailable",
]

ErrorCode = Literal[
    "bad_frame",
    "unauthorized",
    "not_member",
    "not_found",
    "too_large",
    "rate_limited",
    "invalid",
    "unavailable",
    "overloaded",
    "internal",
]


class ChatcoreError(Exception):
    """Root of every error chatcore raises on purpose."""

    code: ClassVar[ErrorCode] = "internal"
    retriable: ClassVar[bool] = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProtocolError(ChatcoreError):
    """A frame that is not valid under PROTOCOL.md (bad JSON, unknown type, wrong field)."""

    code: ClassVar[ErrorCode] = "bad_frame"

    def __init__(self, message: str, *, code: ErrorCode = "bad_frame") -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]


class FrameTooLarge(ProtocolError):
    """A frame or a message body over the configured size limit."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="too_large")


class Unauthorized(ChatcoreError):
    """Missing, expired or forged credentials, or an action the user may not take."""

    code: ClassVar[ErrorCode] = "unauthorized"


class NotMember(ChatcoreError):
    """The user is not a member of the chat they act on."""

    code: ClassVar[ErrorCode] = "not_member"


class NotFound(ChatcoreError):
    """The chat (or other named object) does not exist."""

    code: ClassVar[ErrorCode] = "not_found"


class MessageNotFound(NotFound):
    """No message at that seq in a chat the user belongs to (told as ``not_found``: the
    chat's existence is no secret to a member)."""


class BlobNotFound(NotFound):
    """A message names a blob its sender did not upload (unknown, or another user's)."""


class InvalidRequest(ChatcoreError):
    """A well-formed request that breaks a rule (too many members, empty body, ...)."""

    code: ClassVar[ErrorCode] = "invalid"


class BlobTooLarge(InvalidRequest):
    """An uploaded blob over the size limit (of its kind, or the store's ``max_bytes``)."""

    code: ClassVar[ErrorCode] = "too_large"

    def __init__(self, message: str, *, limit_bytes: int) -> None:
        super().__init__(message)
        self.limit_bytes = limit_bytes


class RateLimited(ChatcoreError):
    """The user sent faster than their budget allows."""

    code: ClassVar[ErrorCode] = "rate_limited"
    retriable: ClassVar[bool] = True

    def __init__(self, message: str, *, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class Unavailable(ChatcoreError):
    """A backend is down, timed out or refused; nothing was acknowledged."""

    code: ClassVar[ErrorCode] = "unavailable"
    retriable: ClassVar[bool] = True


class Overloaded(Unavailable):
    """The pipeline is too far behind to take or answer this now; nothing was done.

    Retry after ``retry_after_ms``: the node refuses rather than let latency grow
    without bound (see NodeOptions ``max_delivery_backlog`` and ``history_wait_s``).
    """

    code: ClassVar[ErrorCode] = "overloaded"
    retriable: ClassVar[bool] = True

    def __init__(self, message: str, *, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class Fenced(Unavailable):
    """A newer owner of a log partition exists; this writer must stop."""

    retriable: ClassVar[bool] = False


class ConnectionClosed(Unavailable):
    """The client's WebSocket closed (``close_code`` None: lost without a close frame)."""

    def __init__(self, message: str, *, close_code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.close_code = close_code
        self.reason = reason


class ClockMovedBackwards(ChatcoreError):
    """The wall clock stepped back further than the generator is allowed to wait."""

    retriable: ClassVar[bool] = True


class ChatcoreClosed(ChatcoreError):
    """An adapter or node was used after ``aclose()``."""

    code: ClassVar[ErrorCode] = "unavailable"
