"""64-bit Snowflake ids: pure packing logic plus a generator over an injected clock.

How this works::

    bit 63   62 ............ 22   21 ...... 12   11 ...... 0
      0      milliseconds since   node id         sequence within
             the epoch (41 bits)  (10 bits)       the millisecond (12 bits)

The generator runs on a *logical* clock: its millisecond is ``max(now, last_ms)``.
A clock that steps back keeps issuing ids on ``last_ms``, borrowing from the
sequence; when the 4096 sequence values of that millisecond are used up, it waits
(through the injected ``sleep``/``clock``) until the clock passes ``last_ms``. So
ids never repeat and never decrease, and no id carries a time later than the
highest clock reading seen. A clock behind ``last_ms`` by more than
``max_backward_ms`` raises :class:`~chatcore.errors.ClockMovedBackwards`.

A generator is not thread-safe: use one per thread or event loop, each with its
own leased node id (see :class:`~chatcore.ids.NodeIdLease`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from chatcore.errors import ClockMovedBackwards

__all__ = [
    "DEFAULT_EPOCH_MS",
    "MAX_NODE_ID",
    "MAX_SEQUENCE",
    "SnowflakeGenerator",
    "SnowflakeParts",
    "pack_snowflake",
    "parse_snowflake",
    "wall_clock_ms",
]

DEFAULT_EPOCH_MS = 1_704_067_200_000
"""2024-01-01T00:00:00Z in unix milliseconds."""

TIMESTAMP_BITS = 41
NODE_ID_BITS = 10
SEQUENCE_BITS = 12

MAX_TIMESTAMP = (1 << TIMESTAMP_BITS) - 1
"""Largest millisecond offset from the epoch (about 69.7 years)."""
MAX_NODE_ID = (1 << NODE_ID_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1

_NODE_SHIFT = SEQUENCE_BITS
_TIMESTAMP_SHIFT = SEQUENCE_BITS + NODE_ID_BITS
_MAX_ID = (1 << (TIMESTAMP_BITS + NODE_ID_BITS + SEQUENCE_BITS)) - 1

_WAIT_STEP_S = 0.000_1
"""How long one step of the wait for the next millisecond sleeps."""


def wall_clock_ms() -> int:
    """The wall clock in unix milliseconds."""
    return time.time_ns() // 1_000_000


class SnowflakeParts(NamedTuple):
    """The fields of a Snowflake id; ``timestamp_ms`` is absolute unix milliseconds."""

    timestamp_ms: int
    node_id: int
    sequence: int


def pack_snowflake(
    timestamp_ms: int, node_id: int, sequence: int, *, epoch_ms: int = DEFAULT_EPOCH_MS
) -> int:
    """Build the id for the given parts; raises ``ValueError`` if a part is out of range."""
    offset = timestamp_ms - epoch_ms
    if not 0 <= offset <= MAX_TIMESTAMP:
        raise ValueError(
            f"timestamp_ms={timestamp_ms} is outside the 41-bit range of epoch_ms={epoch_ms}"
        )
    _check_node_id(node_id)
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence must be in 0..{MAX_SEQUENCE}, got {sequence}")
    return (offset << _TIMESTAMP_SHIFT) | (node_id << _NODE_SHIFT) | sequence


def parse_snowflake(snowflake: int, *, epoch_ms: int = DEFAULT_EPOCH_MS) -> SnowflakeParts:
    """Split an id into its parts; raises ``ValueError`` if it is not a 63-bit non-negative int."""
    if not 0 <= snowflake <= _MAX_ID:
        raise ValueError(f"not a Snowflake id (must be in 0..2**63-1): {snowflake}")
    return SnowflakeParts(
        timestamp_ms=(snowflake >> _TIMESTAMP_SHIFT) + epoch_ms,
        node_id=(snowflake >> _NODE_SHIFT) & MAX_NODE_ID,
        sequence=snowflake & MAX_SEQUENCE,
    )


class SnowflakeGenerator:
    """Issues strictly increasing, unique Snowflake ids for one node id.

    ``clock`` returns unix milliseconds; ``sleep`` is called (with seconds) only while
    waiting for the clock to pass a millisecond whose 4096 ids are used up.
    ``max_backward_ms`` is how far behind the highest reading the clock may fall
    before :meth:`next_id` raises; ``0`` allows no step back at all.

    Raises ``ValueError`` for a node id outside 0..1023, a negative
    ``max_backward_ms``, or an epoch the clock is not within 41 bits after.
    """

    __slots__ = (
        "_clock",
        "_epoch_ms",
        "_last_ms",
        "_max_backward_ms",
        "_node_bits",
        "_sequence",
        "_sleep",
        "node_id",
    )

    def __init__(
        self,
        node_id: int,
        *,
        epoch_ms: int = DEFAULT_EPOCH_MS,
        clock: Callable[[], int] = wall_clock_ms,
        max_backward_ms: int = 10_000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _check_node_id(node_id)
        if isinstance(epoch_ms, bool) or not isinstance(epoch_ms, int) or epoch_ms < 0:
            raise ValueError(f"epoch_ms must be a non-negative int of unix ms, got {epoch_ms!r}")
        if max_backward_ms < 0:
            raise ValueError(f"max_backward_ms must be >= 0, got {max_backward_ms}")
        self.node_id = node_id
        self._node_bits = node_id << _NODE_SHIFT
        self._epoch_ms = epoch_ms
        self._clock = clock
        self._sleep = sleep
        self._max_backward_ms = max_backward_ms
        self._last_ms = -1
        self._sequence = 0
        _check_in_epoch(clock(), epoch_ms)

    def next_id(self) -> int:
        """The next id.

        Raises ``ClockMovedBackwards`` if the clock is behind by more than
        ``max_backward_ms`` (the generator stays usable once it catches up), and
        ``ValueError`` once the clock is past the 41-bit range of the epoch.
        """
        now = self._clock()
        if now > self._last_ms:
            offset = now - self._epoch_ms
            if not 0 <= offset <= MAX_TIMESTAMP:
                _check_in_epoch(now, self._epoch_ms)
            self._last_ms = now
            self._sequence = 0
            return (offset << _TIMESTAMP_SHIFT) | self._node_bits
        sequence = self._sequence + 1
        if sequence > MAX_SEQUENCE or self._last_ms - now > self._max_backward_ms:
            return self._next_id_slow(now)
        self._sequence = sequence
        return ((self._last_ms - self._epoch_ms) << _TIMESTAMP_SHIFT) | self._node_bits | sequence

    def _next_id_slow(self, now: int) -> int:
        """Raise if the clock is too far back, else wait for it to pass ``last_ms``."""
        last_ms = self._last_ms
        self._check_backward(now)
        while now <= last_ms:
            self._sleep(_WAIT_STEP_S)
            now = self._clock()
            self._check_backward(now)
        _check_in_epoch(now, self._epoch_ms)
        self._last_ms = now
        self._sequence = 0
        return ((now - self._epoch_ms) << _TIMESTAMP_SHIFT) | self._node_bits

    def _check_backward(self, now: int) -> None:
        behind = self._last_ms - now
        if behind > self._max_backward_ms:
            raise ClockMovedBackwards(
                f"clock moved backwards by {behind} ms, more than max_backward_ms="
                f"{self._max_backward_ms}; node {self.node_id} issues no ids until the clock "
                f"reaches {self._last_ms} again"
            )


def _check_node_id(node_id: int) -> None:
    if isinstance(node_id, bool) or not isinstance(node_id, int):
        raise TypeError(f"node_id must be an int, got {type(node_id).__name__}")
    if not 0 <= node_id <= MAX_NODE_ID:
        raise ValueError(f"node_id must be in 0..{MAX_NODE_ID}, got {node_id}")


def _check_in_epoch(now_ms: int, epoch_ms: int) -> None:
    if now_ms < epoch_ms:
        raise ValueError(f"epoch_ms={epoch_ms} is in the future: the clock reads {now_ms}")
    if now_ms - epoch_ms > MAX_TIMESTAMP:
        raise ValueError(
            f"the clock ({now_ms}) is past the 41-bit range of epoch_ms={epoch_ms}; "
            "choose a later epoch"
        )
