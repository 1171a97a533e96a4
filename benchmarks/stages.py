"""Where the time goes: per-stage latency from two scrapes of ``/metrics``.

Every chatcore process exports ``chatcore_stage_latency_seconds{stage=...}``: for each
message, the time from its acceptance until a pipeline stage is done with it
(``logged``: the Router's append, ``sequenced``: the Sequencer, ``stored``: the
history worker's write, ``pushed``: the delivery worker's publish to the gateways).
A measured round scrapes every process before and after; the bucket deltas, summed
over the processes, are that round's histogram per stage (:func:`stage_deltas`).

The step between two stages (log → sequenced, …) is not a histogram of its own: its
**mean** is exact (the mean of a difference is the difference of the means, every
message passing every stage once), its quantiles only approximate (the difference of
the two stages' quantiles). Quantiles interpolate inside a bucket as Prometheus'
``histogram_quantile`` does, so they are as fine as the buckets (1, 2.5, 5, 10, 25 ms…).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "METRIC",
    "STAGES",
    "STEPS",
    "StageHistogram",
    "parse_stages",
    "scrape",
    "stage_deltas",
    "stage_metrics",
]

METRIC = "chatcore_stage_latency_seconds"
STAGES = ("logged", "sequenced", "stored", "pushed")
"""The stages in pipeline order, as the ``stage`` label names them."""
STEPS = (
    ("accept → log", None, "logged"),
    ("log → sequenced", "logged", "sequenced"),
    ("sequenced → stored", "sequenced", "stored"),
    ("sequenced → pushed", "sequenced", "pushed"),
)
"""The steps of issue 13: (name, stage it starts at (None: acceptance), stage it ends at)."""


@dataclass(frozen=True)
class StageHistogram:
    """One stage's histogram: cumulative counts per upper bound (``inf`` last)."""

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]
    sum_s: float
    count: float

    def _check(self, other: StageHistogram) -> None:
        if self.bounds != other.bounds:
            raise ValueError(f"bucket bounds differ: {self.bounds} vs {other.bounds}")

    def minus(self, earlier: StageHistogram) -> StageHistogram:
        """What was observed since ``earlier``; ValueError if a count went down (the
        process restarted between the scrapes) or the buckets differ."""
        self._check(earlier)
        counts = tuple(a - b for a, b in zip(self.cumulative, earlier.cumulative, strict=True))
        if any(c < 0 for c in counts) or self.count < earlier.count:
            raise ValueError("a histogram count went down between the scrapes (restarted?)")
        return StageHistogram(
            self.bounds, counts, self.sum_s - earlier.sum_s, self.count - earlier.count
        )

    def plus(self, other: StageHistogram) -> StageHistogram:
        """Two processes' observations together; ValueError if the buckets differ."""
        self._check(other)
        counts = tuple(a + b for a, b in zip(self.cumulative, other.cumulative, strict=True))
        return StageHistogram(
            self.bounds, counts, self.sum_s + other.sum_s, self.count + other.count
        )

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile in seconds (None without observations): linear inside the
        bucket; in the ``+Inf`` bucket, the highest finite bound (as Prometheus does)."""
        if not 0 <= q <= 1:
            raise ValueError(f"a quantile is between 0 and 1, not {q}")
        total = self.cumulative[-1] if self.cumulative else 0.0
        if total <= 0:
            return None
        rank = q * total
        lower, below = 0.0, 0.0
        for bound, cum in zip(self.bounds, self.cumulative, strict=True):
            if cum >= rank and cum > below:
                if math.isinf(bound):
                    return lower
                return lower + (bound - lower) * (rank - below) / (cum - below)
            lower, below = bound, cum
        return lower

    def mean(self) -> float | None:
        """The mean in seconds (None without observations)."""
        return self.sum_s / self.count if self.count > 0 else None


def parse_stages(text: str, metric: str = METRIC) -> dict[str, StageHistogram]:
    """Each stage's histogram in one Prometheus text scrape (stages absent: left out).

    Raises ValueError for text that is not the Prometheus exposition format."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != metric:
            continue
        for sample in family.samples:
            stage = sample.labels.get("stage")
            if stage is None:
                continue
            if sample.name == f"{metric}_bucket":
                buckets.setdefault(stage, []).append((float(sample.labels["le"]), sample.value))
            elif sample.name == f"{metric}_sum":
                sums[stage] = sample.value
            elif sample.name == f"{metric}_count":
                counts[stage] = sample.value
    out = {}
    for stage, pairs in buckets.items():
        pairs.sort()
        out[stage] = StageHistogram(
            bounds=tuple(b for b, _ in pairs),
            cumulative=tuple(c for _, c in pairs),
            sum_s=sums.get(stage, 0.0),
            count=counts.get(stage, pairs[-1][1]),
        )
    return out


def stage_deltas(before: Sequence[str], after: Sequence[str]) -> dict[str, StageHistogram]:
    """Per stage, what every process observed between its two scrapes, summed.

    ``before[i]`` and ``after[i]`` are scrapes of the same process. Raises ValueError
    when the lists differ in length, a scrape is malformed or a process restarted."""
    if len(before) != len(after):
        raise ValueError(f"{len(before)} scrapes before but {len(after)} after")
    total: dict[str, StageHistogram] = {}
    for first, second in zip(before, after, strict=True):
        earlier = parse_stages(first)
        for stage, later in parse_stages(second).items():
            delta = later.minus(earlier[stage]) if stage in earlier else later
            total[stage] = total[stage].plus(delta) if stage in total else delta
    return total


def stage_metrics(deltas: Mapping[str, StageHistogram]) -> dict[str, float]:
    """Flat metrics for results.json: ``stage_<stage>_{count,mean_ms,p50_ms,p99_ms}``
    (since acceptance) for every stage with observations."""
    out: dict[str, float] = {}
    for stage, h in deltas.items():
        mean, p50, p99 = h.mean(), h.quantile(0.5), h.quantile(0.99)
        if mean is None or p50 is None or p99 is None:
            continue
        out[f"stage_{stage}_count"] = h.count
        out[f"stage_{stage}_mean_ms"] = mean * 1000
        out[f"stage_{stage}_p50_ms"] = p50 * 1000
        out[f"stage_{stage}_p99_ms"] = p99 * 1000
    return out


async def scrape(urls: Iterable[str], *, timeout_s: float = 10.0) -> list[str]:
    """The ``/metrics`` text of every URL, in order; raises httpx.HTTPError on a failure."""
    import httpx

    async with httpx.AsyncClient(timeout=timeout_s) as client:
        texts = []
        for url in urls:
            response = await client.get(url)
            response.raise_for_status()
            texts.append(response.text)
        return texts
