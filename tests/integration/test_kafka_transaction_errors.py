"""run_transactions' error reporting, on a stand-in producer (no broker needed)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from aiokafka import errors as kafka_errors

from chatcore.errors import Fenced
from chatcore.log._kafka_client import Placed
from chatcore.log._kafka_transactions import plan_transactions, run_transactions

pytestmark = pytest.mark.anyio


class FencedProducer:
    """A producer whose epoch is stale: the offsets request learns it is fenced, and the
    send, which fails first, only sees the transaction gone."""

    def __init__(self) -> None:
        self.aborted = False

    async def begin_transaction(self) -> None:
        pass

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        raise kafka_errors.IllegalOperation("Can't send messages while not in transaction")

    async def send_offsets_to_transaction(self, offsets: Any, group_id: str) -> None:
        await anyio.sleep(0.01)  # the broker's answer comes after the send failed
        raise kafka_errors.ProducerFenced()

    async def abort_transaction(self) -> None:
        self.aborted = True


async def test_a_fencing_is_reported_even_when_the_send_fails_first() -> None:
    plan = plan_transactions([Placed("out", 0, b"k", b"v")], {0: 5}, [0])

    outcome = await run_transactions(
        {0: FencedProducer()}, plan, topic="in", group_id="g", timeout_s=5.0
    )

    assert outcome.lost == {0}  # a fenced partition is lost, not aborted and retried
    with pytest.raises(Fenced):
        outcome.raise_failure("in")
