"""Known bug classes, planted back into the pipeline to show the simulation finds them.

Each is a context manager that monkeypatches one production function for the
duration of a ``with`` block; nothing in ``src/`` knows about them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from chatcore.log import LogConsumer
from chatcore.pipeline import sequencer
from chatcore.pipeline.sequencer import PartitionState, Sequencer

__all__ = ["PLANTED", "commit_before_transaction", "forget_dedupe_on_restore"]


@contextlib.contextmanager
def _patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    saved = owner.__dict__[name]
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, saved)


async def _commit_offsets_first(self: Sequencer, consumer: LogConsumer, batch: Any) -> None:
    """The Sequencer's commit of a sequenced batch, with the input offsets committed
    BEFORE the transaction that writes the messages: a failure between the two loses
    the batch."""
    await consumer.commit(batch.offsets)  # BUG: the offsets go first, on their own
    try:
        await consumer.commit_transaction(batch.outputs, {})
    except BaseException:
        for p in batch.offsets:
            self._states.pop(p, None)
        raise


@contextlib.contextmanager
def commit_before_transaction() -> Iterator[None]:
    """Bug class 1: the Sequencer commits its input offsets before its output transaction."""
    with _patched(Sequencer, "_commit", _commit_offsets_first):
        yield


_restore: Callable[..., PartitionState] = PartitionState.restore.__func__  # type: ignore[attr-defined]


def _restore_without_window(
    cls: type[PartitionState],
    snapshot: dict[str, bytes],
    *,
    now_ms: int,
    window_ms: int,
    max_entries: int,
) -> PartitionState:
    state = _restore(cls, snapshot, now_ms=now_ms, window_ms=window_ms, max_entries=max_entries)
    state.seen.clear()  # BUG: the dedupe window is not restored, only the last seqs
    return state


@contextlib.contextmanager
def forget_dedupe_on_restore() -> Iterator[None]:
    """Bug class 2: a restored Sequencer partition forgets its dedupe window."""
    with _patched(PartitionState, "restore", classmethod(_restore_without_window)):
        yield


PLANTED = {
    "commit_before_transaction": commit_before_transaction,
    "forget_dedupe_on_restore": forget_dedupe_on_restore,
}
assert sequencer  # the module whose rules these break
