"""Latency histograms (HDR, microseconds) that travel between processes as text."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

__all__ = ["LatencyHistogram"]

_LOWEST_US = 1
_HIGHEST_US = 120_000_000
_DIGITS = 3


class LatencyHistogram:
    """Send → receive latencies in microseconds, 3 significant digits, up to 120 s."""

    def __init__(self) -> None:
        self._h: Any = HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)

    def record_ns(self, latency_ns: int) -> None:
        """Record one latency given in nanoseconds (clamped into the histogram's range)."""
        self._h.record_value(min(max(latency_ns // 1000, _LOWEST_US), _HIGHEST_US))

    @property
    def count(self) -> int:
        return int(self._h.get_total_count())

    def percentile_ms(self, percentile: float) -> float:
        """The latency at ``percentile`` (0..100) in milliseconds; 0 when empty."""
        if self.count == 0:
            return 0.0
        return float(self._h.get_value_at_percentile(percentile)) / 1000

    def max_ms(self) -> float:
        return float(self._h.get_max_value()) / 1000 if self.count else 0.0

    def mean_ms(self) -> float:
        return float(self._h.get_mean_value()) / 1000 if self.count else 0.0

    def encode(self) -> str:
        """The histogram as compressed base64 text (HdrHistogram's V2 format)."""
        data = self._h.encode()
        return data.decode() if isinstance(data, bytes) else str(data)

    def add_encoded(self, encoded: str) -> None:
        """Add a histogram made by :meth:`encode` (e.g. from another process)."""
        if encoded:
            self._h.decode_and_add(encoded)

    def add_counts(self, counts: Iterable[tuple[int, int]]) -> None:
        """Add (microseconds, count) pairs (from a load generator without an HDR encoder)."""
        for value_us, count in counts:
            if count > 0:
                self._h.record_value(min(max(int(value_us), _LOWEST_US), _HIGHEST_US), int(count))

    def summary(self) -> dict[str, float]:
        """p50, p90, p99, p99.9, max and mean in milliseconds, and the count."""
        return {
            "count": float(self.count),
            "p50_ms": self.percentile_ms(50),
            "p90_ms": self.percentile_ms(90),
            "p99_ms": self.percentile_ms(99),
            "p999_ms": self.percentile_ms(99.9),
            "max_ms": self.max_ms(),
            "mean_ms": self.mean_ms(),
        }
