"""The test harness's lossy transport loses frames inside batches too."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from tests.client.harness import _MeddledTransport

pytestmark = pytest.mark.anyio


class Canned:
    """A transport that hands out the given messages."""

    subprotocol = None

    def __init__(self, *messages: bytes | str) -> None:
        self.messages = list(messages)

    async def send(self, data: bytes, *, binary: bool) -> None:
        raise AssertionError("not sent to")

    async def receive(self) -> bytes | str:
        return self.messages.pop(0)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        return None

    def abort(self) -> None:
        return None


def frame(seq: int) -> dict[str, Any]:
    return {"type": "message", "seq": seq}


def lose_even(f: dict[str, Any]) -> bool:
    return int(f.get("seq", 1)) % 2 == 0


async def test_frames_of_a_json_batch_are_lost_one_by_one() -> None:
    batch = json.dumps([frame(1), frame(2), frame(3)])
    t = _MeddledTransport(Canned(json.dumps(frame(2)), batch), lose_even)
    assert json.loads(await t.receive()) == [frame(1), frame(3)]
    assert t.lost == [frame(2), frame(2)]


async def test_a_batch_lost_whole_is_skipped_and_msgpack_keeps_its_encoding() -> None:
    lost_whole = msgspec.msgpack.encode([frame(2), frame(4)])
    kept = msgspec.msgpack.encode([frame(5), frame(6)])
    t = _MeddledTransport(Canned(lost_whole, kept), lose_even)
    received = await t.receive()
    assert isinstance(received, bytes)
    assert msgspec.msgpack.decode(received) == [frame(5)]
    assert [f["seq"] for f in t.lost] == [2, 4, 6]
