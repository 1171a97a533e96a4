"""Test doubles shared by the ids tests."""

from __future__ import annotations


class FakeClock:
    """A millisecond clock that moves only when told to, or when ``sleep`` is called."""

    def __init__(self, start_ms: int) -> None:
        self.now_ms: float = start_ms
        self.reads = 0
        self.slept_s = 0.0

    def __call__(self) -> int:
        self.reads += 1
        assert self.reads < 1_000_000, "clock read a million times: a wait loop is spinning"
        return int(self.now_ms)

    def set(self, ms: int) -> None:
        self.now_ms = ms

    def advance(self, ms: float) -> None:
        self.now_ms += ms

    def sleep(self, seconds: float) -> None:
        self.slept_s += seconds
        self.now_ms += seconds * 1000
