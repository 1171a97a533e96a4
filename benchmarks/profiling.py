"""Sampling a target with py-spy while it is under load, folded into hot-spot tables."""

from __future__ import annotations

import collections
import shutil
import sys
from pathlib import Path

import anyio
import anyio.abc

from benchmarks.results import Profile

__all__ = ["ProfileRecorder", "summarize"]


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class ProfileRecorder:
    """Runs ``py-spy record`` on a process for a while (``start`` … ``finish``)."""

    def __init__(self, pid: int, output: Path, *, duration_s: float, rate_hz: int = 200) -> None:
        self.pid = pid
        self.output = output
        self.duration_s = duration_s
        self.rate_hz = rate_hz
        self._process: anyio.abc.Process | None = None

    @property
    def available(self) -> bool:
        return _py_spy() is not None

    async def start(self) -> None:
        """Start sampling (nothing happens when py-spy is not installed)."""
        spy = _py_spy()
        if spy is None:
            return
        command = [
            spy, "record", "--pid", str(self.pid), "--duration", str(max(1, int(self.duration_s))),
            "--rate", str(self.rate_hz), "--format", "raw", "--output", str(self.output),
            "--nonblocking",
        ]  # fmt: skip
        self._process = await anyio.open_process(command, stdout=None, stderr=None)

    async def finish(self, scenario: str, target: str) -> Profile | None:
        """Wait for py-spy to finish; the summary, or None if nothing was recorded."""
        if self._process is None:
            return None
        with anyio.move_on_after(self.duration_s + 30):
            await self._process.wait()
        if self._process.returncode is None:
            self._process.kill()
        if not self.output.exists():
            return None
        return summarize(self.output.read_text(), scenario=scenario, target=target)


def summarize(folded: str, *, scenario: str, target: str, top: int = 20) -> Profile:
    """Self and inclusive shares of the top functions in py-spy's folded stacks."""
    own: collections.Counter[str] = collections.Counter()
    anywhere: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            anywhere[frame] += n

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    if total == 0:
        return Profile(scenario=scenario, target=target, samples=0, self_top=[], inclusive_top=[])
    boring = ("<module>", "_run_code", "_run_module_as_main", "run (", "Runner.run", "main (")
    inclusive = [
        (name, pct) for name, pct in share(anywhere) if pct < 99.5 and not name.startswith(boring)
    ]
    return Profile(
        scenario=scenario,
        target=target,
        samples=total,
        self_top=share(own),
        inclusive_top=inclusive,
    )
