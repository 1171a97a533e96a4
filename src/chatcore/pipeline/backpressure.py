"""Admission that follows delivery: refuse new sends while too much is undelivered.

How this works. Accepting a message is cheap (one log append); delivering it to a
256-member group is not. If the Router accepted whatever clients offer, the records
between the two would pile up and every message would wait behind them: latency would
grow without bound while every sender stayed within their rate limit. So the Router
asks :meth:`Backpressure.admit` before it appends: while the pipeline's backlog (records
accepted but not yet sequenced, plus sequenced but not yet delivered, read from the
log's offsets wherever the stages run) is at ``max_backlog`` or more, the send is
refused with :class:`~chatcore.errors.Overloaded` (retriable, ``retry_after_ms``) and
nothing is appended. Latency then stays bounded by the time to drain ``max_backlog``.

The backlog is sampled, not read per send: at most one read runs at a time and a value
is trusted for ``sample_s``; in between, every admitted send counts as one more, so a
burst between samples cannot overshoot by more than what other nodes admit.

That bound is in records, read from the log: it does not see what waits past the log,
in a gateway's bus subscription, once the delivery stage has handed it on. A gateway
whose one core cannot push its connections' share of a large group's fanout keeps
accepting while its queues grow. :class:`DeliveryLag` bounds that in time: each time
a connection's writer takes what its hub queue holds (once per flush), the hub reports
how long after acceptance the oldest of it is taken, and the Router refuses sends
(``overloaded``) while too many of the last window's reports were late. One report per
take, not per event: a client that stopped reading takes nothing and reports nothing
(it is a slow consumer, closed with 4008), and one that reads slowly reports once per
burst, a small share of a busy gateway's reports, so no single client makes a gateway
refuse sends (see docs/decisions.md).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from chatcore.errors import InvalidRequest, Overloaded

__all__ = ["Backpressure", "DeliveryLag"]


def _at_least(minimum: float, **values: float) -> None:
    """Raise InvalidRequest naming the first of ``values`` below ``minimum``."""
    for name, value in values.items():
        if not value >= minimum:  # also refuses NaN
            raise InvalidRequest(f"{name} must be at least {minimum}, got {value}")


class Backpressure:
    """A bound on the undelivered backlog, checked before each send is appended."""

    def __init__(
        self,
        backlog: Callable[[], Awaitable[int]],
        *,
        max_backlog: int,
        sample_s: float = 0.05,
        retry_after_ms: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``backlog()`` reads the records not yet delivered; ``max_backlog`` (>= 1) is
        where sends start being refused; ``sample_s`` (>= 0) how long a read is trusted;
        ``retry_after_ms`` what a refusal tells the client. Raises InvalidRequest."""
        _at_least(1, max_backlog=max_backlog, retry_after_ms=retry_after_ms)
        _at_least(0, sample_s=sample_s)
        self._read = backlog
        self.max_backlog = max_backlog
        self.sample_s = sample_s
        self.retry_after_ms = retry_after_ms
        self._clock = clock
        self._estimate = 0
        self._sampled_at: float | None = None
        self._sampling = False
        self.refused = 0
        """Sends refused so far."""

    @property
    def estimate(self) -> int:
        """The backlog as last read, plus the sends admitted since."""
        return self._estimate

    async def admit(self) -> None:
        """Return if a send may be appended now (and count it); raise Overloaded if not.

        Raises the backlog reader's errors (:class:`~chatcore.errors.Unavailable`).
        """
        if self._stale() and not self._sampling:
            self._sampling = True
            try:
                backlog = await self._read()
            finally:
                self._sampling = False
            self._estimate, self._sampled_at = backlog, self._clock()
        if self._estimate >= self.max_backlog:
            self.refused += 1
            raise Overloaded(
                f"{self._estimate} messages are waiting for delivery (limit "
                f"{self.max_backlog}); send again in {self.retry_after_ms} ms",
                retry_after_ms=self.retry_after_ms,
            )
        self._estimate += 1

    def _stale(self) -> bool:
        at = self._sampled_at
        return at is None or self._clock() - at >= self.sample_s


class DeliveryLag:
    """A bound on how late this gateway hands messages to its connections.

    Pure: the hub reports, each time a connection's writer takes its queued events, how
    long ago the oldest of them was accepted (:meth:`observe`); the Router asks
    :meth:`check` before each send. Time is counted in windows of ``window_ms``:
    while, in the last complete window, at least ``late_share`` of the observed
    messages, and at least ``min_late`` of them, were more than ``max_lag_ms`` late,
    sends are refused with :class:`~chatcore.errors.Overloaded`. A window without
    observations (nothing left to deliver) admits again. O(1) per call, no clock of
    its own: every call passes ``now_ms``.
    """

    __slots__ = (
        "_count",
        "_late",
        "_refusing",
        "_start",
        "late_share",
        "max_lag_ms",
        "min_late",
        "refused",
        "retry_after_ms",
        "window_ms",
    )

    def __init__(
        self,
        *,
        max_lag_ms: int = 250,
        window_ms: int = 100,
        late_share: float = 0.1,
        min_late: int = 8,
        retry_after_ms: int = 250,
    ) -> None:
        """Raises InvalidRequest for a bound, window or ``retry_after_ms`` below 1, a
        ``late_share`` outside (0, 1] or a negative ``min_late``."""
        _at_least(1, max_lag_ms=max_lag_ms, window_ms=window_ms, retry_after_ms=retry_after_ms)
        _at_least(0, min_late=min_late)
        if not 0 < late_share <= 1:
            raise InvalidRequest(f"late_share must be in (0, 1], got {late_share}")
        self.max_lag_ms = max_lag_ms
        self.window_ms = window_ms
        self.late_share = late_share
        self.min_late = min_late
        self.retry_after_ms = retry_after_ms
        self._start: int | None = None
        self._count = 0
        self._late = 0
        self._refusing = False
        self.refused = 0
        """Sends refused so far."""

    def observe(self, lag_ms: int, now_ms: int) -> None:
        """Record one take of a connection's events, the oldest ``lag_ms`` after its
        acceptance."""
        self._roll(now_ms)
        self._count += 1
        if lag_ms > self.max_lag_ms:
            self._late += 1

    def refusing(self, now_ms: int) -> bool:
        """Whether sends are refused at ``now_ms`` (the last complete window was late)."""
        self._roll(now_ms)
        return self._refusing

    def check(self, now_ms: int) -> None:
        """Return if a send may go on at ``now_ms``; raise Overloaded if not."""
        if self.refusing(now_ms):
            self.refused += 1
            raise Overloaded(
                f"messages reach their recipients more than {self.max_lag_ms} ms after "
                f"acceptance; send again in {self.retry_after_ms} ms",
                retry_after_ms=self.retry_after_ms,
            )

    def check_waited(self, waited_ms: int) -> None:
        """Raise Overloaded if a send waited more than ``max_lag_ms`` at the gateway
        before it could be handled (behind its connection's earlier requests): it is
        late before it is even accepted, a backlog the takes do not see."""
        if waited_ms > self.max_lag_ms:
            self.refused += 1
            raise Overloaded(
                f"this send waited {waited_ms} ms at the gateway (limit {self.max_lag_ms} "
                f"ms); send again in {self.retry_after_ms} ms",
                retry_after_ms=self.retry_after_ms,
            )

    def _roll(self, now_ms: int) -> None:
        start = self._start
        if start is None or now_ms < start:  # the first call, or the clock stepped back
            self._start = now_ms
            return
        elapsed = now_ms - start
        if elapsed < self.window_ms:
            return
        if elapsed >= 2 * self.window_ms:  # the window before this one saw nothing
            self._refusing = False
        else:
            late = self._late
            self._refusing = late >= max(1, self.min_late) and late >= self.late_share * self._count
        self._start = now_ms - elapsed % self.window_ms
        self._count = self._late = 0
