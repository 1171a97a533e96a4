"""The gateway session: a sans-IO state machine for one client connection.

Bytes (or text) come in through :meth:`GatewaySession.receive`; what to do comes out
as a list of actions — reply with a frame, close with a code, open the connection
for a user, or hand a request to the pipeline. Time is passed in. No sockets, no
awaits: the server around it is a thin shell, and the rules are testable alone.

States and transitions::

    AWAITING_HELLO --hello, valid token--> OPEN --close()--> CLOSED
    AWAITING_HELLO --anything else / bad token--> CLOSED (4001)
    AWAITING_HELLO --tick() after hello_timeout_s--> CLOSED (4002)
    OPEN --too many bad frames--> CLOSED (1008)
    OPEN --tick() once the token has expired--> CLOSED (4001)

Time-driven rules run in :meth:`GatewaySession.tick`; :meth:`GatewaySession.deadline`
names the next moment one is due. A timer may fire a little early (uvloop counts
from the loop's cached time, in milliseconds): ``tick`` then finds nothing due and
``deadline`` still names the same moment, so the shell sleeps again.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from chatcore.errors import ChatcoreError, ErrorCode, Overloaded, ProtocolError, RateLimited
from chatcore.protocol import (
    ClientFrame,
    Delete,
    Edit,
    ErrorFrame,
    FrameCodec,
    Hello,
    Ping,
    Pong,
    React,
    Send,
    ServerFrame,
    Unreact,
    Welcome,
)
from chatcore.ratelimit import RateLimiter, TokenBucket

__all__ = [
    "Action",
    "Close",
    "CloseCode",
    "GatewaySession",
    "Handle",
    "Identity",
    "Opened",
    "Reply",
    "SessionLimits",
    "SessionState",
    "error_frame",
]


class CloseCode(enum.IntEnum):
    """WebSocket close codes of the protocol."""

    GOING_AWAY = 1001
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    UNAUTHORIZED = 4001
    HELLO_TIMEOUT = 4002
    SLOW_CONSUMER = 4008


class SessionState(enum.Enum):
    AWAITING_HELLO = "awaiting_hello"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Reply:
    """Send this frame to the client."""

    frame: ServerFrame


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with this code."""

    code: CloseCode
    reason: str


@dataclass(frozen=True, slots=True)
class Opened:
    """The client proved who it is: register the connection (before the welcome)."""

    user: str
    device: str
    request_id: int | None = None
    """The ``id`` of the hello (for an error if the server refuses the connection)."""


@dataclass(frozen=True, slots=True)
class Handle:
    """A request for the pipeline; answer it with the frames it produces."""

    frame: ClientFrame


Action = Reply | Close | Opened | Handle


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a token proves, and for how much longer (``None``: no expiry)."""

    user: str
    valid_for_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class SessionLimits:
    """Per-connection rules. Every field has the protocol's default."""

    hello_timeout_s: float = 10.0
    """How long a new connection may take to send ``hello``; then it closes with 4002."""
    heartbeat_s: int = 30
    """The ping interval the server asks of clients in ``welcome``."""
    max_bad_frames: int = 10
    """Malformed frames a connection may send before it is closed with 1008."""
    frames_per_s: float = 50.0
    """Frames of any type a connection may send per second, on average."""
    frame_burst: float = 100.0
    """Frames of any type a connection may send at once, above the rate."""
    max_unread_bytes: int = 256 * 1024
    """Bytes sent to a client that it has not read yet (what the server still buffers
    and the kernel still holds to send) above which the connection counts as slow
    (-1: no limit); see :class:`~chatcore.gateway.backlog.UnreadBacklog`."""
    unread_timeout_s: float = 10.0
    """How long the unread bytes may stay above ``max_unread_bytes`` before the
    connection is closed with 4008 (slow consumer)."""


def error_frame(exc: ChatcoreError, request_id: int | None) -> ErrorFrame:
    retry = exc.retry_after_ms if isinstance(exc, RateLimited | Overloaded) else None
    return ErrorFrame(id=request_id, code=exc.code, message=exc.message, retry_after_ms=retry)


def _error(code: ErrorCode, message: str, request_id: int | None) -> ErrorFrame:
    return ErrorFrame(id=request_id, code=code, message=message)


class GatewaySession:
    """One connection's protocol state: hello, limits, and what to do with each frame."""

    __slots__ = (
        "_frames",
        "_send_limiter",
        "_verify",
        "bad_frames",
        "batch",
        "codec",
        "device",
        "expires",
        "limits",
        "started",
        "state",
        "user",
    )

    def __init__(
        self,
        codec: FrameCodec,
        verify_token: Callable[[str], str | Identity],
        *,
        now: float,
        limits: SessionLimits | None = None,
        send_limiter: RateLimiter | None = None,
    ) -> None:
        """``verify_token`` returns the user id (or :class:`Identity`) of a token, or
        raises Unauthorized; a session closes with 4001 once its token's
        ``valid_for_s`` has passed;
        ``send_limiter`` is shared by the sessions of a gateway (one budget per user)."""
        self.codec = codec
        self.limits = limits or SessionLimits()
        self._verify = verify_token
        self._send_limiter = send_limiter
        self._frames = TokenBucket(self.limits.frames_per_s, self.limits.frame_burst)
        self.state = SessionState.AWAITING_HELLO
        self.started = now
        self.user: str | None = None
        self.device: str | None = None
        self.expires: float | None = None
        """When the token of an open session expires (on the clock of ``now``)."""
        self.bad_frames = 0
        self.batch = False
        """The client said in ``hello`` that it reads batches of frames."""

    def receive(self, data: bytes | str, *, now: float) -> list[Action]:
        """What to do with one frame from the client."""
        if self.state is SessionState.CLOSED:
            return []
        try:
            frame = self.codec.decode_client(data)
        except ProtocolError as exc:
            return self._bad_frame(exc, self.codec.request_id(data))
        if self.state is SessionState.AWAITING_HELLO:
            return self._hello(frame, now)
        wait = self._frames.acquire(now)
        if wait > 0:
            limited = RateLimited("too many frames", retry_after_ms=max(1, int(wait * 1000)))
            return [Reply(error_frame(limited, getattr(frame, "id", None)))]
        match frame:
            case Ping(id=rid):
                return [Reply(Pong(id=rid))]
            case Hello(id=rid):
                return [Reply(_error("invalid", "already said hello", rid))]
            case Send(id=rid) | Edit(id=rid) | Delete(id=rid) | React(id=rid) | Unreact(id=rid) if (
                self._send_limiter is not None
            ):  # a change costs what a message does
                assert self.user is not None
                try:
                    self._send_limiter.check(self.user, now)
                except RateLimited as exc:
                    return [Reply(error_frame(exc, rid))]
        return [Handle(frame)]

    def deadline(self) -> float | None:
        """When :meth:`tick` must run next (None: no time-driven rule is pending)."""
        if self.state is SessionState.AWAITING_HELLO:
            return self.started + self.limits.hello_timeout_s
        if self.state is SessionState.OPEN:
            return self.expires
        return None

    def tick(self, *, now: float) -> list[Action]:
        """Time-driven rules: the hello deadline, the token's expiry. Nothing is done
        before :meth:`deadline` (a timer firing early gets an empty list)."""
        due = self.deadline()
        if due is None or now < due:
            return []
        self.state = SessionState.CLOSED
        if self.user is None:
            return [Close(CloseCode.HELLO_TIMEOUT, "no hello in time")]
        return [Close(CloseCode.UNAUTHORIZED, "token expired")]

    def close(self) -> None:
        self.state = SessionState.CLOSED

    def encode(self, frame: ServerFrame) -> bytes:
        return self.codec.encode_server(frame)

    def _hello(self, frame: ClientFrame, now: float) -> list[Action]:
        if not isinstance(frame, Hello):
            self.state = SessionState.CLOSED
            rid = getattr(frame, "id", None)
            return [
                Reply(_error("unauthorized", "the first frame must be hello", rid)),
                Close(CloseCode.UNAUTHORIZED, "hello required"),
            ]
        try:
            verified = self._verify(frame.token)
        except ChatcoreError as exc:
            self.state = SessionState.CLOSED
            return [Reply(error_frame(exc, frame.id)), Close(CloseCode.UNAUTHORIZED, exc.message)]
        identity = verified if isinstance(verified, Identity) else Identity(verified)
        user = identity.user
        if identity.valid_for_s is not None:
            self.expires = now + identity.valid_for_s
        self.state = SessionState.OPEN
        self.user, self.device = user, frame.device
        self.batch = frame.batch
        welcome = Welcome(
            id=frame.id, user=user, device=frame.device, heartbeat_s=self.limits.heartbeat_s
        )
        return [Opened(user, frame.device, frame.id), Reply(welcome)]

    def _bad_frame(self, exc: ProtocolError, request_id: int | None) -> list[Action]:
        self.bad_frames += 1
        actions: list[Action] = [Reply(error_frame(exc, request_id))]
        if self.state is SessionState.AWAITING_HELLO:
            self.state = SessionState.CLOSED
            actions.append(Close(CloseCode.UNAUTHORIZED, "hello required"))
        elif self.bad_frames > self.limits.max_bad_frames:
            self.state = SessionState.CLOSED
            actions.append(Close(CloseCode.POLICY_VIOLATION, "too many bad frames"))
        return actions
