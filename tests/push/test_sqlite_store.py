"""``SqlitePushTokenStore`` beyond the conformance suite: targets survive a reopen, and
a shared database is left open when the store closes."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatcore._sqlite import SqliteDatabase
from chatcore.errors import Unavailable
from chatcore.push import PushTarget
from chatcore.push.sqlite import SqlitePushTokenStore

pytestmark = pytest.mark.anyio


async def test_targets_survive_a_reopen(tmp_path: Path) -> None:
    phone = PushTarget("bob", "phone", "fcm", "tok:1")
    async with SqlitePushTokenStore(tmp_path / "push.db") as store:
        await store.register(phone)
    async with SqlitePushTokenStore(tmp_path / "push.db") as store:
        assert await store.targets(["bob"]) == [phone]


async def test_a_shared_database_stays_open(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "store.db")
    async with SqlitePushTokenStore(db) as store:
        await store.register(PushTarget("bob", "phone", "fcm", "tok:1"))
    assert await db.run(lambda c: c.execute("SELECT count(*) FROM push_targets").fetchone()) == (1,)
    await db.aclose()


def test_an_unopenable_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(Unavailable, match="sqlite"):
        SqlitePushTokenStore(tmp_path / "dir.db")
