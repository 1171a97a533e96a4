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
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from chatcore.errors import InvalidRequest, Overloaded

__all__ = ["Backpressure"]


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
        if max_backlog < 1:
            raise InvalidRequest(f"max_backlog must be at least 1, got {max_backlog}")
        if not sample_s >= 0:
            raise InvalidRequest(f"sample_s must be >= 0, got {sample_s}")
        if retry_after_ms < 1:
            raise InvalidRequest(f"retry_after_ms must be at least 1, got {retry_after_ms}")
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
