"""Waiting, bounded, for a stage to have consumed what its input topic holds now.

The stages after the Sequencer run independently: Delivery may have pushed a message
to live devices while History has not stored it yet. A read that must cover every
message sequenced before it (a ``sync``) first asks :meth:`StageProgress.caught_up`,
which reads the input topic's end offsets once and waits until the stage's consumer
group has committed up to them. A stage commits a batch after handling it, so then
everything sequenced before the call is stored.

The log port has no offset events, so this polls: the committed offsets first (the
common case costs two offset reads, made together), then ``backlog`` (which on Kafka tells trailing
transaction markers from records) with a doubling pause up to ``max_poll_s``.
"""

from __future__ import annotations

import math

import anyio

from chatcore._gather import both
from chatcore.errors import InvalidRequest
from chatcore.log._base import PartitionedLog

__all__ = ["StageProgress", "check_wait_s"]


def check_wait_s(name: str, value: float) -> float:
    """``value`` if it is a finite number of seconds above 0; else raises InvalidRequest."""
    if not math.isfinite(value) or value <= 0:
        raise InvalidRequest(f"{name} must be a finite number of seconds > 0, got {value}")
    return value


class StageProgress:
    """How far one consumer group is on one topic, and a bounded wait for it."""

    def __init__(
        self,
        log: PartitionedLog,
        topic: str,
        group: str,
        *,
        first_poll_s: float = 0.002,
        max_poll_s: float = 0.05,
    ) -> None:
        self._log = log
        self.topic = topic
        self.group = group
        self._first_poll_s = first_poll_s
        self._max_poll_s = max_poll_s

    async def offsets_behind(self) -> int:
        """Offsets of the topic the group has not committed yet: two offset reads.

        An upper bound of the records left: on Kafka the transaction markers count
        too (one per transaction that wrote the partition, so at most twice the
        records when every transaction holds one). For exactness (at the
        cost of reading the log on Kafka) use :meth:`caught_up`.
        """
        ends, done = await self._offsets()
        return sum(max(end - done.get(p, 0), 0) for p, end in ends.items())

    async def _offsets(self) -> tuple[dict[int, int], dict[int, int]]:
        """The topic's end offsets and the group's committed offsets, read together."""
        log, topic, group = self._log, self.topic, self.group
        return await both(lambda: log.end_offsets(topic), lambda: log.committed(topic, group=group))

    async def caught_up(self, *, timeout_s: float) -> bool:
        """Wait until the group has consumed every record appended before the call.

        Returns False if it has not after ``timeout_s`` seconds. Raises the log's
        errors (:class:`~chatcore.errors.Unavailable`).
        """
        log, topic, group = self._log, self.topic, self.group
        ends, done = await self._offsets()
        if all(done.get(p, 0) >= end for p, end in ends.items()):
            return True  # the common case, without asking the log to look for markers
        pause = self._first_poll_s
        with anyio.move_on_after(timeout_s):
            while any((await log.backlog(topic, group=group, ends=ends)).values()):
                await anyio.sleep(pause)
                pause = min(pause * 2, self._max_poll_s)
            return True
        return False
