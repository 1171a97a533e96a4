"""When to reconnect: exponential back-off with jitter, and what a close code means.

Pure: no clock, no sleep. The client asks for the next delay and sleeps itself.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_HELLO_TIMEOUT",
    "CLOSE_NORMAL",
    "CLOSE_SERVICE_RESTART",
    "CLOSE_SLOW_CONSUMER",
    "CLOSE_UNAUTHORIZED",
    "Backoff",
    "Reconnect",
    "reconnect_after",
]

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_SERVICE_RESTART = 1012
CLOSE_UNAUTHORIZED = 4001
CLOSE_HELLO_TIMEOUT = 4002
CLOSE_SLOW_CONSUMER = 4008


class Reconnect(enum.Enum):
    """What the client does after the server closed the connection."""

    STOP = "stop"
    """Do not reconnect: the credentials were refused."""
    NOW = "now"
    """Reconnect at once (server going away, slow consumer) and sync."""
    BACKOFF = "backoff"
    """Reconnect after the next back-off delay."""


_NOW_CODES = frozenset({CLOSE_GOING_AWAY, CLOSE_SERVICE_RESTART, CLOSE_SLOW_CONSUMER})


def reconnect_after(close_code: int | None) -> Reconnect:
    """The reconnect policy for a close code (None: the connection was lost without one)."""
    if close_code == CLOSE_UNAUTHORIZED:
        return Reconnect.STOP
    if close_code in _NOW_CODES:
        return Reconnect.NOW
    return Reconnect.BACKOFF


@dataclass(kw_only=True)
class Backoff:
    """Exponential back-off with jitter: ``initial_s * factor**n``, capped, then jittered.

    The ``n``-th delay is drawn uniformly from ``[(1 - jitter) * d, d]`` where
    ``d = min(max_s, initial_s * factor**n)``, so clients that lost the same server
    spread out instead of reconnecting in step. ``reset()`` after a good session.
    """

    initial_s: float = 0.5
    """The first delay before jitter."""
    max_s: float = 10.0
    """No delay is longer than this."""
    factor: float = 2.0
    """Growth per failed attempt."""
    jitter: float = 0.5
    """Fraction of the delay that is random (0: none, 1: anywhere from 0 to the delay)."""
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempts: int = 0
    """Delays handed out since the last reset."""

    def __post_init__(self) -> None:
        """Raise ValueError for a setting out of range."""
        if self.initial_s <= 0 or self.max_s < self.initial_s:
            raise ValueError("need 0 < initial_s <= max_s")
        if self.factor < 1:
            raise ValueError("factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within 0..1")

    def next_delay(self) -> float:
        """The delay before the next attempt, in seconds; counts an attempt."""
        exponent = min(self.attempts, 64)  # 2**64 * initial_s is past any cap
        self.attempts += 1
        ceiling = min(self.max_s, self.initial_s * self.factor**exponent)
        return ceiling * (1 - self.jitter * self.rng.random())

    def reset(self) -> None:
        """Start again from ``initial_s``."""
        self.attempts = 0
