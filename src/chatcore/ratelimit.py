"""Token-bucket rate limiting per key: pure logic, time is passed in.

How this works: a bucket holds up to ``burst`` tokens and gains ``rate_per_s`` tokens
per second. A call costing ``cost`` tokens is allowed when the bucket holds that
many; then they are taken. A refused call takes nothing and learns how long to wait
until the bucket will hold enough. So over any ``t`` seconds a key is allowed at most
``burst + rate_per_s * t`` tokens' worth of calls.

:class:`RateLimiter` keeps one bucket per key in bounded memory: a bucket that has
refilled to full is the same as a new one, so idle full buckets are dropped as the
limiter goes; past ``max_keys`` the least recently used bucket is dropped even if
not full (that key then starts again with a full burst).

The Router takes a :class:`RateLimitHook`; :meth:`RateLimiter.hook` makes one over a
clock the caller chooses.
"""

from __future__ import annotations

import inspect
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

from chatcore.errors import RateLimited

__all__ = [
    "RateLimitHook",
    "RateLimiter",
    "TokenBucket",
    "apply_rate_limit",
]

_SLACK_S = 1e-6
"""A shortfall that refills within this many seconds counts as none.

Float rounding of ``now + retry_after`` must not refuse a caller who waited as told.
The slack is borrowed, not given: the bucket goes that little below zero and repays it.
"""

_SWEEP = 2
"""How many of the least recently used buckets each call checks for being idle and full."""


def _check_rate(rate_per_s: float, burst: float) -> None:
    if not (math.isfinite(rate_per_s) and rate_per_s > 0):
        raise ValueError(f"rate_per_s must be a finite number > 0, got {rate_per_s}")
    if not (math.isfinite(burst) and burst > 0):
        raise ValueError(f"burst must be a finite number > 0, got {burst}")


class TokenBucket:
    """The state of one token bucket: full at creation, refilled by the times it is given.

    Times are seconds on any monotonic clock; a time earlier than one seen before
    counts as no time passing. Raises ``ValueError`` if ``rate_per_s`` or ``burst``
    is not a finite number above zero.
    """

    __slots__ = ("_tokens", "_updated_s", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: float) -> None:
        _check_rate(rate_per_s, burst)
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = burst
        self._updated_s: float | None = None

    def __repr__(self) -> str:
        return (
            f"TokenBucket(rate_per_s={self.rate_per_s}, burst={self.burst}, "
            f"tokens={self._tokens}, updated_s={self._updated_s})"
        )

    def tokens(self, now_s: float) -> float:
        """How many tokens the bucket holds at ``now_s`` (nothing is changed)."""
        if self._updated_s is None or now_s <= self._updated_s:
            return self._tokens
        return min(self.burst, self._tokens + (now_s - self._updated_s) * self.rate_per_s)

    def is_full(self, now_s: float) -> bool:
        """Whether the bucket has refilled to ``burst`` by ``now_s``."""
        return self.tokens(now_s) >= self.burst

    def acquire(self, now_s: float, cost: float = 1) -> float:
        """Take ``cost`` tokens: 0.0 when allowed, else the seconds to wait (nothing taken).

        Raises ``ValueError`` if ``cost`` is negative or above ``burst`` (it could
        never be allowed).
        """
        if not 0 <= cost <= self.burst:
            raise ValueError(f"cost must be between 0 and burst={self.burst}, got {cost}")
        self._tokens = self.tokens(now_s)
        if self._updated_s is None or now_s > self._updated_s:
            self._updated_s = now_s
        shortfall = cost - self._tokens
        if shortfall <= self.rate_per_s * _SLACK_S:
            self._tokens -= cost
            return 0.0
        return shortfall / self.rate_per_s


class RateLimiter:
    """Token buckets by key (a user, a user and chat, an IP), in bounded memory.

    Options (keyword-only):

    - ``rate_per_s``: tokens each key gains per second (the sustained rate).
    - ``burst``: most tokens a key holds (how many calls may come at once).
    - ``max_keys`` (default 100 000): most buckets kept. Past it the least recently
      used is dropped and its key starts again full; make it larger than the number
      of keys active within ``burst / rate_per_s`` seconds to keep limits exact.

    Raises ``ValueError`` if ``rate_per_s`` or ``burst`` is not a finite number above
    zero or ``max_keys`` is below 1. Not thread-safe: use it from one event loop.
    """

    def __init__(self, *, rate_per_s: float, burst: float, max_keys: int = 100_000) -> None:
        _check_rate(rate_per_s, burst)
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        """How many buckets are kept."""
        return len(self._buckets)

    def acquire(self, key: str, now_s: float, cost: float = 1) -> float:
        """Take ``cost`` tokens of ``key``: 0.0 when allowed, else the seconds to wait.

        A refused call takes nothing. Raises ``ValueError`` if ``cost`` is negative
        or above ``burst``.
        """
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_s, self.burst)
            wait = bucket.acquire(now_s, cost)  # raises before the key is kept
            self._buckets[key] = bucket
        else:
            wait = bucket.acquire(now_s, cost)
            self._buckets.move_to_end(key)
        self._evict(now_s)
        return wait

    def check(self, user: str, now_s: float, cost: float = 1) -> None:
        """Take ``cost`` tokens of ``user`` or refuse.

        Raises :class:`~chatcore.errors.RateLimited` with ``retry_after_ms`` (the wait
        in whole milliseconds, rounded up) when refused, and ``ValueError`` if
        ``cost`` is negative or above ``burst``.
        """
        wait = self.acquire(user, now_s, cost)
        if wait > 0:
            retry_after_ms = max(1, math.ceil(wait * 1000))
            raise RateLimited(
                f"rate limit exceeded; retry in {retry_after_ms} ms",
                retry_after_ms=retry_after_ms,
            )

    def prune(self, now_s: float) -> int:
        """Drop every bucket that is full at ``now_s`` (no limit changes); how many were dropped."""
        full = [key for key, bucket in self._buckets.items() if bucket.is_full(now_s)]
        for key in full:
            del self._buckets[key]
        return len(full)

    def hook(
        self,
        *,
        clock: Callable[[], float],
        key: Callable[[str, str], str] | None = None,
    ) -> RateLimitHook:
        """A :class:`RateLimitHook` for the Router over this limiter.

        ``clock`` gives the time in seconds (e.g. ``time.monotonic``); ``key`` maps
        ``(user, chat_id)`` to the bucket's key (default: the user, one budget across
        chats). The hook raises :class:`~chatcore.errors.RateLimited` when refused.
        """

        def check_send(user: str, chat_id: str, /) -> None:
            self.check(user if key is None else key(user, chat_id), clock())

        return check_send

    def _evict(self, now_s: float) -> None:
        for _ in range(_SWEEP):
            oldest = next(iter(self._buckets.values()), None)
            if oldest is None or not oldest.is_full(now_s):
                break
            self._buckets.popitem(last=False)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


class RateLimitHook(Protocol):
    """What the Router calls before it accepts a message: sync or async."""

    def __call__(self, user: str, chat_id: str, /) -> Awaitable[None] | None:
        """Return (or finish awaiting) when ``user`` may send to ``chat_id``.

        Raises :class:`~chatcore.errors.RateLimited` (with ``retry_after_ms``) when not.
        """
        ...


async def apply_rate_limit(hook: RateLimitHook, user: str, chat_id: str) -> None:
    """Call ``hook`` and await it if it is async.

    Raises whatever the hook raises: :class:`~chatcore.errors.RateLimited` when refused.
    """
    result = hook(user, chat_id)
    if inspect.isawaitable(result):
        await result
