from __future__ import annotations

import logging

import pytest

from chatcore.errors import ChatcoreClosed
from chatcore.offline import LoggingPushNotifier, MemoryPushNotifier, PushNotification

pytestmark = pytest.mark.anyio

TWELVE = PushNotification("bob", "c1", count=12, senders=("Alice",), last_seq=40, preview="hi")
ONE = PushNotification("carol", "g1", count=1, senders=("Alice", "Dan"), last_seq=3)


async def test_memory_notifier_collects_in_order() -> None:
    async with MemoryPushNotifier() as notifier:
        await notifier.notify([TWELVE])
        await notifier.notify([])
        await notifier.notify([ONE, TWELVE])
        assert notifier.sent == [TWELVE, ONE, TWELVE]


async def test_memory_notifier_refuses_after_aclose() -> None:
    notifier = MemoryPushNotifier()
    await notifier.aclose()
    await notifier.aclose()
    with pytest.raises(ChatcoreClosed):
        await notifier.notify([ONE])
    assert notifier.sent == []


async def test_logging_notifier_writes_one_line_each(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="chatcore.offline.log")
    async with LoggingPushNotifier() as notifier:
        await notifier.notify([TWELVE, ONE])

    records = [r for r in caplog.records if r.name == "chatcore.offline.log"]
    assert [r.levelno for r in records] == [logging.INFO, logging.INFO]
    assert [r.getMessage() for r in records] == [
        "push to bob in chat c1: 12 new messages from Alice (up to seq 40)",
        "push to carol in chat g1: 1 new message from Alice, Dan (up to seq 3)",
    ]


async def test_logging_notifier_logs_previews_only_when_asked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("chatcore.push.test")
    caplog.set_level(logging.DEBUG, logger=logger.name)
    async with LoggingPushNotifier(
        logger=logger, level=logging.DEBUG, include_preview=True
    ) as notifier:
        await notifier.notify([TWELVE, ONE])

    messages = [r.getMessage() for r in caplog.records if r.name == logger.name]
    assert messages[0].endswith("(up to seq 40): 'hi'")
    assert messages[1].endswith("(up to seq 3)")
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == logger.name)


async def test_logging_notifier_refuses_after_aclose(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="chatcore.offline.log")
    notifier = LoggingPushNotifier()
    await notifier.aclose()
    await notifier.aclose()
    with pytest.raises(ChatcoreClosed):
        await notifier.notify([ONE])
    assert not [r for r in caplog.records if r.name == "chatcore.offline.log"]
