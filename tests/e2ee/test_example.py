"""examples/e2ee_chat.py: sealed messages open on the other device, never on the server."""

from __future__ import annotations

import pytest

from examples.e2ee_chat import main

pytestmark = pytest.mark.anyio


async def test_the_example_exchanges_sealed_messages() -> None:
    seen = await main()
    assert seen["bob read"] == "the password is swordfish"
    assert seen["sealed for"] == [("alice", "laptop", 1), ("bob", "phone", 1)]
    assert seen["bob rotated to"] == 2
    assert seen["bob read after rotating"] == "new key, same chat"
    assert len(seen["bob's fingerprint"].split()) == 8
