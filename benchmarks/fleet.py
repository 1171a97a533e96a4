"""The parent's side of a measurement: a target server and its load generators.

:class:`Fleet` starts each process pinned by its :class:`~benchmarks.system.CpuPlan`,
with stderr in a log file, reads the load generators' JSON lines, and shows their
progress in a ``rich`` progress display. Leaving the ``async with`` block kills
whatever is still running.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack, ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream
from rich.progress import Progress, TaskID

from benchmarks.builds import BuildFailed, centrifugo_binary, go_loadgen_binary
from benchmarks.loadgen import (
    Job,
    Ready,
    Round,
    RoundResult,
    Stop,
    Storm,
    StormResult,
    WorkerFailed,
    decode_report,
    encode_command,
)
from benchmarks.loadgen import (
    Progress as WorkerProgress,
)
from benchmarks.peers import centrifugo
from benchmarks.peers.centrifugo import URL_PATH as CENTRIFUGO_PATH
from benchmarks.peers.centrifugo import free_port
from benchmarks.system import CpuPlan, ProcessUsage, process_usage
from benchmarks.targets import SECRET

__all__ = ["BenchmarkFailed", "Fleet", "Target", "Worker"]

REPO = Path(__file__).resolve().parent.parent
_MAX_LINE = 16 * 1024 * 1024
_LOG_NUMBERS = itertools.count(1)


class BenchmarkFailed(RuntimeError):
    """A target or load generator failed; the message says which and points at its log."""


@dataclass
class Target:
    """A server under test."""

    kind: str
    process: anyio.abc.Process
    port: int
    log: Path

    @property
    def metrics_url(self) -> str:
        """Its Prometheus ``/metrics`` (chatcore targets and workers)."""
        return f"http://127.0.0.1:{self.port}/metrics"

    @property
    def url(self) -> str:
        path = CENTRIFUGO_PATH if self.kind == "centrifugo" else "/ws"
        return f"ws://127.0.0.1:{self.port}{path}"

    def usage(self) -> ProcessUsage:
        """The server's RSS and CPU time now; raises BenchmarkFailed if it died."""
        try:
            return process_usage(self.process.pid)
        except OSError as exc:
            raise BenchmarkFailed(f"{self.kind} exited; see {self.log}") from exc


@dataclass
class Worker:
    """A load generator process and what it last reported."""

    index: int
    process: anyio.abc.Process
    log: Path
    progress: WorkerProgress = field(
        default_factory=lambda: WorkerProgress(connected=0, failed=0, sent=0, received=0)
    )
    ready: Ready | None = None
    answers: list[Ready | RoundResult | StormResult | WorkerFailed] = field(default_factory=list)
    answered: anyio.Event = field(default_factory=anyio.Event)

    async def read(self) -> None:
        assert self.process.stdout is not None
        lines = BufferedByteReceiveStream(self.process.stdout)
        while True:
            try:
                line = await lines.receive_until(b"\n", _MAX_LINE)
            except (anyio.IncompleteRead, anyio.EndOfStream, anyio.ClosedResourceError):
                self.answers.append(WorkerFailed(error=f"exited; see {self.log}"))
                self.answered.set()
                return
            report = decode_report(line)
            if isinstance(report, WorkerProgress):
                self.progress = report
            else:
                self.answers.append(report)
                self.answered.set()

    async def answer(self, timeout_s: float) -> Ready | RoundResult | StormResult:
        """The next answer; raises BenchmarkFailed on a failure or after ``timeout_s``."""
        with anyio.move_on_after(timeout_s):
            while not self.answers:
                await self.answered.wait()
                self.answered = anyio.Event()
        if not self.answers:
            raise BenchmarkFailed(f"load generator {self.index} gave no answer; see {self.log}")
        answer = self.answers.pop(0)
        if isinstance(answer, WorkerFailed):
            raise BenchmarkFailed(f"load generator {self.index} failed: {answer.error}")
        return answer

    async def send(self, command: Job | Round | Storm | Stop) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(encode_command(command))


class Fleet:
    """Starts targets and load generators, and stops them all on exit."""

    def __init__(
        self,
        plan: CpuPlan,
        logs: Path,
        progress: Progress,
        *,
        env: dict[str, str] | None = None,
    ) -> None:
        self.plan = plan
        self.logs = logs
        self.progress = progress
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "CHATCORE_SECRET": SECRET,
            **(env or {}),
        }
        self._processes: list[anyio.abc.Process] = []
        self._files = ExitStack()
        self._stack = AsyncExitStack()
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for process in self._processes:
            await _kill(process)
        self._processes.clear()
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._stack.aclose()
        self._files.close()

    def _log(self, name: str) -> tuple[Path, IO[Any]]:
        path = self.logs / f"{next(_LOG_NUMBERS):03d}-{name}.log"
        return path, self._files.enter_context(path.open("wb"))

    async def start_target(
        self, kind: str, *, data: Path | None = None, timeout_s: float = 120.0, port: int = 0
    ) -> Target:
        """Start a target server and wait until it listens (on ``port``, 0: any free
        one); raises BenchmarkFailed."""
        if kind == "centrifugo":
            return await self._start_centrifugo(timeout_s)
        command = [*self.plan.server_prefix(), sys.executable, "-m", "benchmarks.targets", kind]
        if port:
            command += ["--port", str(port)]
        if data is not None:
            command += ["--data", str(data)]
        log, stderr = self._log(kind)
        process = await anyio.open_process(command, stderr=stderr, env=self.env, cwd=REPO)
        self._processes.append(process)
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        try:
            with anyio.fail_after(timeout_s):
                line = await lines.receive_until(b"\n", 4096)
        except (TimeoutError, anyio.IncompleteRead, anyio.EndOfStream) as exc:
            raise BenchmarkFailed(f"{kind} did not start; see {log}") from exc
        word, _, said = line.decode().partition(" ")
        if word != "READY":
            raise BenchmarkFailed(f"{kind} said {line!r}; see {log}")
        return Target(kind, process, int(said), log)

    async def _start_centrifugo(self, timeout_s: float) -> Target:
        """Centrifugo (built once into the cache) on a free port, pinned as any target."""
        try:
            binary = centrifugo_binary()
        except BuildFailed as exc:
            raise BenchmarkFailed(str(exc)) from exc
        port = free_port()
        config = centrifugo.write_config(self.logs, port, self.env["CHATCORE_SECRET"])
        command = [*self.plan.server_prefix(), *centrifugo.command(binary, config)]
        log, stderr = self._log("centrifugo")
        process = await anyio.open_process(command, stderr=stderr, stdout=stderr, env=self.env)
        self._processes.append(process)
        with anyio.move_on_after(timeout_s):
            while process.returncode is None:
                try:
                    stream = await anyio.connect_tcp("127.0.0.1", port)
                except OSError:
                    await anyio.sleep(0.05)  # not listening yet: poll the port
                    continue
                await stream.aclose()
                return Target("centrifugo", process, port, log)
        raise BenchmarkFailed(f"centrifugo did not start; see {log}")

    async def start_pipeline_worker(
        self, metrics_port: int, *, pinned: bool = False, timeout_s: float = 120.0
    ) -> Target:
        """A ``chatcore worker`` (every role) serving /metrics on ``metrics_port``, once it
        runs; raises BenchmarkFailed. ``pinned``: on the server's core (else unpinned)."""
        prefix = self.plan.server_prefix() if pinned else self.plan._niced([])
        command = [
            *prefix, sys.executable, "-m", "chatcore.cli", "worker",
            "--metrics-port", str(metrics_port), "--log-level", "warning",
        ]  # fmt: skip
        log, stderr = self._log("worker")
        process = await anyio.open_process(command, stderr=stderr, env=self.env, cwd=REPO)
        self._processes.append(process)
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        try:
            with anyio.fail_after(timeout_s):
                line = await lines.receive_until(b"\n", 4096)
        except (TimeoutError, anyio.IncompleteRead, anyio.EndOfStream) as exc:
            raise BenchmarkFailed(f"chatcore worker did not start; see {log}") from exc
        if not line.startswith(b"chatcore worker running"):
            raise BenchmarkFailed(f"chatcore worker said {line!r}; see {log}")
        return Target("chatcore-worker", process, metrics_port, log)

    async def stop_target(self, target: Target, *, grace_s: float = 5.0) -> None:
        """Stop a target (SIGINT, then SIGKILL after ``grace_s``; 0: SIGKILL at once)."""
        await _kill(target.process, grace_s=grace_s)
        if target.process in self._processes:
            self._processes.remove(target.process)

    async def start_workers(
        self,
        jobs: Sequence[Job],
        *,
        what: str,
        timeout_s: float = 600.0,
        loadgen: str = "python",
    ) -> list[Worker]:
        """Start one load generator per job, wait until all are connected and set up.

        ``loadgen``: ``python`` (``benchmarks.loadgen``) or ``go`` (``benchmarks/loadgen-go``,
        built once into the cache)."""
        if loadgen == "go":
            try:
                program = [str(go_loadgen_binary())]
            except BuildFailed as exc:
                raise BenchmarkFailed(str(exc)) from exc
        elif loadgen == "python":
            program = [sys.executable, "-m", "benchmarks.loadgen"]
        else:
            raise ValueError(f"unknown load generator {loadgen!r}: python or go")
        workers = []
        for i, job in enumerate(jobs):
            command = [*self.plan.load_prefix(i), *program]
            log, stderr = self._log(f"loadgen{i}")
            process = await anyio.open_process(command, stderr=stderr, env=self.env, cwd=REPO)
            self._processes.append(process)
            worker = Worker(i, process, log)
            workers.append(worker)
            assert self._tg is not None
            self._tg.start_soon(worker.read)
            await worker.send(job)
        total = sum(job.connections + sum(job.groups) for job in jobs)
        task = self.progress.add_task(f"{what}: connecting", total=total)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._show_connects, workers, task)
                readies = [await w.answer(timeout_s) for w in workers]
                tg.cancel_scope.cancel()
        finally:
            self.progress.remove_task(task)
        for worker, ready in zip(workers, readies, strict=True):
            assert isinstance(ready, Ready)
            worker.ready = ready
            if ready.error and ready.connected == 0:
                raise BenchmarkFailed(
                    f"load generator {worker.index} connected none: {ready.error}"
                )
        return workers

    async def start_groups(
        self,
        target: Target,
        groups: list[int],
        *,
        run_id: str,
        what: str,
        client: str = "sdk",
        loadgen: str = "python",
        senders_per_group: int = 1,
    ) -> list[Worker]:
        """One load generator that joins ``target`` with ``groups`` (sizes; 2 is a direct
        chat); ``senders_per_group`` members of each group send."""
        job = Job(
            target=target.kind,
            url=target.url,
            run_id=run_id,
            secret=self.env["CHATCORE_SECRET"],
            groups=groups,
            client=client,
            senders_per_group=senders_per_group,
        )
        return await self.start_workers([job], what=what, loadgen=loadgen)

    async def _show_connects(self, workers: list[Worker], task: TaskID) -> None:
        while True:
            done = sum(w.progress.connected + w.progress.failed for w in workers)
            self.progress.update(task, completed=done)
            await anyio.sleep(0.2)

    async def run_round(
        self, workers: Sequence[Worker], spec: Round, *, what: str
    ) -> list[RoundResult]:
        """Run one round on every load generator at once; their results."""
        for worker in workers:
            await worker.send(spec)
        total = spec.duration_s + spec.drain_s
        task = self.progress.add_task(what, total=total)
        started = time.monotonic()
        try:
            async with anyio.create_task_group() as tg:

                async def tick() -> None:
                    while True:
                        received = sum(w.progress.received for w in workers)
                        self.progress.update(
                            task,
                            completed=min(total, time.monotonic() - started),
                            description=f"{what} ({received} received)",
                        )
                        await anyio.sleep(0.2)

                tg.start_soon(tick)
                results = [await w.answer(total + 120) for w in workers]
                tg.cancel_scope.cancel()
        finally:
            self.progress.remove_task(task)
        return [r for r in results if isinstance(r, RoundResult)]

    async def wait_drained(
        self, workers: Sequence[Worker], *, quiet_s: float = 1.5, timeout_s: float = 120.0
    ) -> float:
        """Wait until no message has arrived for ``quiet_s`` (the backlog is delivered);
        how long it took (``timeout_s`` at most)."""
        started = time.monotonic()
        last, quiet_since = -1, started
        while (now := time.monotonic()) - started < timeout_s:
            seen = sum(w.progress.received_all for w in workers)
            if seen != last:
                last, quiet_since = seen, now
            elif now - quiet_since >= quiet_s:
                break
            await anyio.sleep(0.1)
        return time.monotonic() - started

    async def stop_workers(self, workers: Sequence[Worker]) -> None:
        """Tell the load generators to exit (their connections drop with them)."""
        for worker in workers:
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await worker.send(Stop())
        for worker in workers:
            with anyio.move_on_after(5):
                await worker.process.wait()
            await _kill(worker.process)
            if worker.process in self._processes:
                self._processes.remove(worker.process)


async def _kill(process: anyio.abc.Process, *, grace_s: float = 0.0) -> None:
    if process.returncode is None and grace_s > 0:
        with suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        with anyio.move_on_after(grace_s):
            await process.wait()
    if process.returncode is None:
        with suppress(ProcessLookupError):
            process.kill()
        with anyio.move_on_after(5):
            await process.wait()
