"""The built-in ``PushTokenStore`` backends run ``chatcore.testing.PushTokenStoreSuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from chatcore.push import MemoryPushTokenStore, PushTokenStore
from chatcore.testing import PushTokenStoreSuite


class TestMemory(PushTokenStoreSuite):
    @pytest.fixture
    def make_store(self) -> Callable[[], Awaitable[PushTokenStore]]:
        async def make() -> PushTokenStore:
            return MemoryPushTokenStore()

        return make
