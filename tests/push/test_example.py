"""examples/push_webhook.py: a node's offline pushes reach a verifying receiver."""

from __future__ import annotations

from typing import Any

import pytest

from examples.push_webhook import main

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def received() -> list[dict[str, Any]]:
    return await main()


async def test_the_webhook_example_delivers_both_pushes(received: list[dict[str, Any]]) -> None:
    assert [(n["user"], n["title"], n["body"]) for n in received] == [
        ("bob", "1 new message from alice", "lunch at 1?"),
        ("bob", "1 new message from alice", None),  # encrypted: no preview
    ]


async def test_the_encrypted_flag_reaches_the_push(received: list[dict[str, Any]]) -> None:
    assert [n["encrypted"] for n in received] == [False, True]


async def test_the_devices_example_registers_pushes_and_unregisters() -> None:
    from examples.push_devices import main as devices

    seen = await devices()
    assert seen == {
        "registered": [("phone", "fcm")],
        "pushed": [("bob", "1 new message from alice", "the train is late")],
        "after_unregister": [],
    }
