"""The Telemetry port and its do-nothing default."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Literal, Protocol

__all__ = ["NO_TELEMETRY", "PipelineStage", "Telemetry", "Timer"]

PipelineStage = Literal["logged", "sequenced", "stored", "pushed"]
"""A point a message passes: durable in ``chat.submitted`` (``logged``), given its seq
(``sequenced``), written to history (``stored``), handed to its members' gateways
(``pushed``)."""


class Telemetry(Protocol):
    """Receives the pipeline's measurements. Calls must be cheap and never raise."""

    def stage_done(self, stage: PipelineStage, accepted_ms: Iterable[int], now_ms: int) -> None:
        """Messages accepted at ``accepted_ms`` (wall-clock ms) passed ``stage`` at ``now_ms``."""

    def store_write(self, store: str, seconds: float) -> None:
        """A write to ``store`` (``messages``, ``receipts``, …) took ``seconds``."""

    def presence_update(self, seconds: float) -> None:
        """A device's arrival or departure, or a gateway's heartbeat of all its devices
        (one pipelined call), took ``seconds`` to record."""

    def receipt_told(self, submitted_ms: Iterable[int], now_ms: int) -> None:
        """Receipts submitted at ``submitted_ms`` reached the chat's members at ``now_ms``."""

    def offline_pending(self, count: int) -> None:
        """``count`` offline notifications are waiting to be coalesced and pushed."""

    def gap(self, where: str, missing: int) -> None:
        """``missing`` seqs of a chat were skipped where they should be contiguous."""


class _NoTelemetry:
    """Measures nothing."""

    def stage_done(self, stage: PipelineStage, accepted_ms: Iterable[int], now_ms: int) -> None:
        pass

    def store_write(self, store: str, seconds: float) -> None:
        pass

    def presence_update(self, seconds: float) -> None:
        pass

    def receipt_told(self, submitted_ms: Iterable[int], now_ms: int) -> None:
        pass

    def offline_pending(self, count: int) -> None:
        pass

    def gap(self, where: str, missing: int) -> None:
        pass


NO_TELEMETRY: Telemetry = _NoTelemetry()
"""The default: measures nothing."""


class Timer:
    """Seconds since it was made, on the monotonic clock: ``t = Timer(); ...; t.seconds``."""

    __slots__ = ("_start",)

    def __init__(self) -> None:
        self._start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._start
