"""The benchmark's native programs, built once into a cache: Centrifugo and the Go load generator.

``benchmarks/peers/centrifugo/build.sh`` and ``benchmarks/loadgen-go/build.sh`` each
print the path of their binary, building it first (under ``nice -n 19``) only when it
is not in the cache yet. The cache is ``$CHATCORE_BENCH_HOME``, by default
``~/.cache/chatcore-bench``: it outlives the checkout, as the services' jars do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = [
    "CENTRIFUGO_VERSION",
    "BuildFailed",
    "cache_dir",
    "centrifugo_binary",
    "go_loadgen_binary",
    "have_go",
]

CENTRIFUGO_VERSION = "v6.9.1"
"""The Centrifugo release the peer builds (``CHATCORE_CENTRIFUGO_VERSION`` of build.sh)."""
REPO = Path(__file__).resolve().parent.parent
_CENTRIFUGO_BUILD = REPO / "benchmarks" / "peers" / "centrifugo" / "build.sh"
_LOADGEN_BUILD = REPO / "benchmarks" / "loadgen-go" / "build.sh"
_GO_FALLBACK = Path("/usr/local/go/bin/go")


class BuildFailed(RuntimeError):
    """A native benchmark program could not be built; the message says why."""


def cache_dir() -> Path:
    """Where built programs are kept (``$CHATCORE_BENCH_HOME`` or ``~/.cache/chatcore-bench``)."""
    home = os.environ.get("CHATCORE_BENCH_HOME")
    return Path(home) if home else Path.home() / ".cache" / "chatcore-bench"


def have_go() -> bool:
    """Whether a Go toolchain is there to build with."""
    return shutil.which("go") is not None or _GO_FALLBACK.is_file()


def _build(script: Path, what: str, timeout_s: float) -> Path:
    try:
        done = subprocess.run(
            ["bash", str(script)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env={
                **os.environ,
                "CHATCORE_BENCH_HOME": str(cache_dir()),
                "CHATCORE_CENTRIFUGO_VERSION": CENTRIFUGO_VERSION,
            },
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildFailed(f"building {what} took over {timeout_s:.0f} s ({script})") from exc
    path = Path(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None
    if done.returncode != 0 or path is None or not path.is_file():
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise BuildFailed(f"building {what} failed ({script}):\n{tail}")
    return path


def centrifugo_binary(*, timeout_s: float = 1800.0) -> Path:
    """The cached Centrifugo binary (v6.9.1), built first if missing; raises BuildFailed."""
    return _build(_CENTRIFUGO_BUILD, "Centrifugo", timeout_s)


def go_loadgen_binary(*, timeout_s: float = 900.0) -> Path:
    """The cached Go load generator of the current sources, built first if missing;
    raises BuildFailed."""
    return _build(_LOADGEN_BUILD, "the Go load generator", timeout_s)
