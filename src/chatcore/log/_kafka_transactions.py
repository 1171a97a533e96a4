"""The Kafka transactions behind ``KafkaLogConsumer.commit_transaction``.

How this works: see :mod:`chatcore.log.kafka`. :func:`plan_transactions` splits a
call into one transaction per input partition; :func:`run_transactions` prepares
them all, then commits them all or aborts them all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import anyio

from chatcore.errors import ChatcoreError, Fenced, Unavailable
from chatcore.log._base import RecordPosition
from chatcore.log._kafka_client import (
    FENCED,
    Placed,
    TopicPartition,
    forget_transaction_error,
    send_all,
)

__all__ = ["TransactionOutcome", "TransactionPlan", "plan_transactions", "run_transactions"]


class TransactionPlan(NamedTuple):
    """Per input partition, its transaction's outputs and offset; and where each output went."""

    parts: dict[int, tuple[list[Placed], int | None]]
    shares: dict[int, list[int]]  # per input partition, the indexes of its outputs

    def positions(self, results: Mapping[int, list[RecordPosition]]) -> list[RecordPosition]:
        """The positions of the outputs in the order they were given."""
        positions: list[RecordPosition | None] = [None] * sum(map(len, self.shares.values()))
        for p, indexes in self.shares.items():
            for i, position in zip(indexes, results[p], strict=True):
                positions[i] = position
        return [p for p in positions if p is not None]


class TransactionOutcome(NamedTuple):
    """What :func:`run_transactions` did."""

    results: dict[int, list[RecordPosition]]  # the outputs' positions, per input partition
    committed: dict[int, int]  # the offsets whose transaction committed
    lost: set[int]  # input partitions whose producer is fenced or in an unknown state
    failures: dict[int, Exception]  # per input partition, why its transaction failed

    def raise_failure(self, topic: str) -> None:
        """Raise the first failure, a fencing first, as a chatcore error; nothing if none."""
        if not self.failures:
            return
        p, cause = min(self.failures.items(), key=lambda f: (not isinstance(f[1], FENCED), f[0]))
        what = f"kafka: transaction for partition {p} of {topic!r}"
        if isinstance(cause, ChatcoreError):
            raise cause
        if isinstance(cause, FENCED):
            raise Fenced(f"{what}: {cause}") from cause
        raise Unavailable(f"{what}: {cause!r}") from cause


def plan_transactions(
    placed: Sequence[Placed], offsets: Mapping[int, int], inputs: Sequence[int]
) -> TransactionPlan:
    """One transaction per input partition in ``inputs`` (sorted, not empty)."""
    shares: dict[int, list[int]] = {p: [] for p in inputs}
    for i, r in enumerate(placed):
        shares[r.partition if r.partition in shares else inputs[0]].append(i)
    parts = {p: ([placed[i] for i in shares[p]], offsets.get(p)) for p in inputs}
    return TransactionPlan(parts, shares)


async def run_transactions(
    producers: Mapping[int, Any],
    plan: TransactionPlan,
    *,
    topic: str,
    group_id: str,
    timeout_s: float,
) -> TransactionOutcome:
    """Prepare every partition's transaction, then commit them all or abort them all.

    Each step of each partition runs within ``timeout_s``. Raises nothing: failures
    are in the outcome. Run it shielded: a torn transaction would wedge its producer.
    """
    parts = plan.parts
    results: dict[int, list[RecordPosition]] = {}

    async def prepare(p: int) -> None:
        producer = producers.get(p)
        if producer is None:
            raise Fenced(f"member of {group_id!r} cannot write for partition {p}")
        records, offset = parts[p]
        await producer.begin_transaction()
        if offset is None:
            results[p] = await send_all(producer, records)
            return

        async def add_offsets() -> None:
            tp = TopicPartition(topic, p)
            await producer.send_offsets_to_transaction({tp: offset}, group_id)

        async def send() -> list[RecordPosition]:
            return await send_all(producer, records)

        # Together: the producer adds the output partitions to the transaction, then
        # produces while it adds the offsets (one round trip less than one after the
        # other). A fenced producer fails at its first transactional request, before
        # any record is produced. Both calls run to their end (each is bounded by the
        # step's timeout) so that a fencing is reported as such even when the other
        # call fails first with its consequence ("not in transaction").
        errors: list[Exception] = []

        async def run(call: Callable[[], Awaitable[object]]) -> None:
            try:
                await call()
            except Exception as exc:
                errors.append(exc)

        async def send_into_results() -> None:
            results[p] = await send()

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, add_offsets)
            tg.start_soon(run, send_into_results)
        if errors:
            raise min(errors, key=lambda e: not isinstance(e, FENCED))

    async def commit(p: int) -> None:
        await producers[p].commit_transaction()

    async def abort(p: int) -> None:
        forget_transaction_error(producers[p])
        await producers[p].abort_transaction()

    failures = await _each(parts, prepare, timeout_s)
    committed: dict[int, int] = {}
    if not failures:
        failures = await _each(parts, commit, timeout_s)
        lost = set(failures)  # a commit with an unknown outcome
        committed = {p: o for p, (_, o) in parts.items() if o is not None and p not in lost}
    else:
        fenced = {p for p, e in failures.items() if isinstance(e, FENCED)}
        lost = fenced | set(await _each(set(parts) - fenced, abort, timeout_s))
    return TransactionOutcome(results, committed, lost, failures)


async def _each(
    partitions: Iterable[int], step: Callable[[int], Awaitable[None]], timeout_s: float
) -> dict[int, Exception]:
    """Run ``step`` for every partition concurrently, each within ``timeout_s``."""
    failures: dict[int, Exception] = {}

    async def run(p: int) -> None:
        try:
            with anyio.fail_after(timeout_s):
                await step(p)
        except Exception as exc:
            failures[p] = exc

    async with anyio.create_task_group() as tg:
        for p in partitions:
            tg.start_soon(run, p)
    return failures
