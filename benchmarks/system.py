"""What the benchmarks read from and set on the machine: pinning, file limits, /proc."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata

__all__ = [
    "CpuPlan",
    "machine_busy_s",
    "ProcessUsage",
    "machine_info",
    "process_usage",
    "raise_fd_limit",
    "source_ips",
]

_CONNS_PER_SOURCE_IP = 20_000
"""Connections per loopback source address: below the 28k ephemeral ports of Linux."""


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit to ``wanted`` if allowed; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError):  # not root: go as far as the hard limit
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def source_ips(connections: int) -> list[str]:
    """Loopback source addresses enough for ``connections`` to one server port."""
    count = max(1, -(-connections // _CONNS_PER_SOURCE_IP))
    return [f"127.0.0.{i + 1}" for i in range(count)]


@dataclass(frozen=True)
class CpuPlan:
    """Which cores the server and the load generators are pinned to (``taskset -c``)."""

    server_core: int | None
    load_cores: tuple[int, ...]
    """Empty when nothing is pinned (one core, or no ``taskset``)."""
    nice: int = 0
    """Scheduling priority of the measured processes (``nice -n``; below 0 needs root)."""

    @classmethod
    def detect(cls, *, pin: bool = True, nice: int = 0) -> CpuPlan:
        """The server on the first allowed core, load generators on the others."""
        cores = sorted(os.sched_getaffinity(0))
        if not pin or len(cores) < 2 or shutil.which("taskset") is None:
            return cls(None, (), nice)
        return cls(cores[0], tuple(cores[1:]), nice)

    def _niced(self, command: list[str]) -> list[str]:
        return ["nice", "-n", str(self.nice), *command] if self.nice else command

    def server_prefix(self) -> list[str]:
        """The command prefix that pins the server (empty when not pinned)."""
        if self.server_core is None:
            return self._niced([])
        return self._niced(["taskset", "-c", str(self.server_core)])

    def load_prefix(self, index: int) -> list[str]:
        """The command prefix that pins load generator ``index`` (round robin over cores)."""
        if not self.load_cores:
            return self._niced([])
        return self._niced(["taskset", "-c", str(self.load_cores[index % len(self.load_cores)])])

    def describe(self) -> str:
        """One line for the report."""
        niced = f"; every measured process under `nice -n {self.nice}`" if self.nice else ""
        if self.server_core is None:
            return f"not pinned{niced}"
        cores = ",".join(str(c) for c in self.load_cores)
        return (
            f"server: `taskset -c {self.server_core}`; load generators: `taskset -c {cores}`{niced}"
        )


@dataclass(frozen=True)
class ProcessUsage:
    """A process's resident memory and CPU time at one moment."""

    rss_bytes: int
    cpu_s: float


def process_usage(pid: int) -> ProcessUsage:
    """RSS (VmRSS) and user+system CPU seconds of ``pid``; raises OSError if it is gone."""
    with open(f"/proc/{pid}/status") as f:
        rss_kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_s = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return ProcessUsage(rss_kib * 1024, cpu_s)


def machine_busy_s() -> float:
    """CPU seconds every process on the machine has used since boot (all cores)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    except (OSError, StopIteration):
        return 0.0
    return round(kib / 1024 / 1024, 1)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, str]:
    """The hardware and software a run happened on, for the report."""
    packages = (
        "chatcore",
        "uvicorn",
        "picows",
        "websockets",
        "python-socketio",
        "snowflake-id",
        "aiokafka",
        "msgspec",
        "anyio",
    )
    info = {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count() or 0),
        "memory_gib": str(_memory_gib()),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "fd_hard_limit": str(resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
    }
    info.update({f"pkg:{p}": _version(p) for p in packages})
    return info
