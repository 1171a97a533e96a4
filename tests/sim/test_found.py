"""Bugs the simulation found, each pinned by a direct test."""

from __future__ import annotations

import pytest

from chatcore.errors import Fenced
from chatcore.log import OutRecord
from chatcore.log.memory import MemoryLog

pytestmark = pytest.mark.anyio


async def test_a_member_that_lost_and_regained_a_partition_between_polls_is_fenced() -> None:
    """Seed 918: a Sequencer lost partition 2 and got it back while it was busy (two
    rebalances, no poll in between). Its poll saw no change, so it kept its stale state
    of the partition, gave the next message a seq another member had already given,
    and the History stage dropped that acknowledged message as a duplicate."""
    async with MemoryLog() as log:
        await log.create_topic("t", partitions=2)
        await log.append([OutRecord("t", "k", b"0", partition=1)])
        async with log.consumer("t", group="g") as a:
            first = await a.poll(timeout_s=0)
            assert first.assigned == {0, 1}
            async with log.consumer("t", group="g") as b:
                taken = await b.poll(timeout_s=0)
                assert taken.assigned == {1}
                await b.commit_transaction([OutRecord("t", "k", b"1", partition=1)], {1: 1})
            assert a.assignment == {0, 1}  # as of its last poll: it never saw the change
            with pytest.raises(Fenced):
                await a.commit_transaction([OutRecord("t", "k", b"x", partition=1)], {1: 1})
            again = await a.poll(timeout_s=0)
            assert 1 in again.revoked and 1 in again.assigned
            assert [r.value for r in again.records] == [b"1"]  # from the committed offset
            await a.commit({1: 2})  # now it may
