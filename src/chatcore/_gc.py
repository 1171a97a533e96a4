"""Garbage-collector settings for a long-running chatcore process.

An event loop that serves thousands of sockets allocates many short-lived objects,
and CPython's default thresholds (700, 10, 10) then run a collection every few
hundred microseconds of work; each one pauses every connection, and a full one
scans every object the process holds, connections included. The benchmarks showed
this in the tail: p99 at 75% of the maximum load fell from 94 to 36 ms (memory
backends) with :func:`tune_gc` (docs/benchmarks.md). ``chatcore serve``,
``gateway`` and ``worker`` call it; an application that embeds chatcore decides for
itself.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_objects", "tune_gc"]

THRESHOLDS = (50_000, 20, 100)
"""Young-generation allocations per collection, then young collections per middle
one, then middle collections per full one."""


def tune_gc() -> None:
    """Collect less often: reference counting frees almost everything a chat server
    allocates, the collector only has cycles left to find."""
    gc.set_threshold(*THRESHOLDS)


def freeze_startup_objects() -> None:
    """Move every object alive now (modules, the app, its caches) out of the
    collector's reach, so full collections scan only what came later."""
    gc.collect()
    gc.freeze()
