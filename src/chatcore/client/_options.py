"""How a ``ChatClient`` behaves: timeouts, reconnecting, buffering. Every field has a default."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClientOptions"]


@dataclass(kw_only=True, frozen=True)
class ClientOptions:
    """Settings of a :class:`~chatcore.client.ChatClient`; the defaults suit an interactive app."""

    connect_timeout_s: float = 10.0
    """Longest wait for one connection attempt (WebSocket open plus ``hello``/``welcome``),
    and for the first session when entering ``async with``."""
    request_timeout_s: float = 10.0
    """Longest wait for the answer to a request, across reconnects for a request that is
    safe to repeat."""
    send_timeout_s: float = 60.0
    """Longest wait for ``accepted`` after ``send``, across reconnects."""
    backoff_initial_s: float = 0.5
    """First reconnect delay (before jitter); it doubles per failed attempt."""
    backoff_max_s: float = 10.0
    """Longest reconnect delay."""
    heartbeat_s: float | None = None
    """Seconds between pings; None: the ``heartbeat_s`` the server sends in ``welcome``.
    A ping unanswered for that long drops the connection and reconnects."""
    event_queue: int = 1000
    """Events waiting for the app in ``events()``. When it is full, new messages are
    fetched again from history later instead of piling up in memory."""
    max_buffered: int = 1000
    """Out-of-order messages kept per chat while a gap is being filled."""
    backfill_limit: int | None = 1000
    """Most missed messages of one chat delivered when catching up; beyond that the
    client skips ahead and yields ``HistorySkipped``. None: deliver every one."""
    history_page: int = 100
    """Page size (1..200) for gap recovery and catch-up reads."""
    max_frame_bytes: int = 8 * 1024 * 1024
    """Largest frame accepted from the server (history pages can be big)."""

    def __post_init__(self) -> None:
        """Raise ValueError for a setting out of range."""
        positive = {
            "connect_timeout_s": self.connect_timeout_s,
            "request_timeout_s": self.request_timeout_s,
            "send_timeout_s": self.send_timeout_s,
            "backoff_initial_s": self.backoff_initial_s,
            "event_queue": self.event_queue,
            "max_buffered": self.max_buffered,
            "max_frame_bytes": self.max_frame_bytes,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        if self.heartbeat_s is not None and self.heartbeat_s <= 0:
            raise ValueError("heartbeat_s must be None or positive")
        if self.backfill_limit is not None and self.backfill_limit < 0:
            raise ValueError("backfill_limit must be None or at least 0")
        if not 1 <= self.history_page <= 200:
            raise ValueError("history_page must be within 1..200")
