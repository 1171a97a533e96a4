"""How the embedded logs commit: sync levels on SQLite, and group commit of every write.

Appends and ``commit_transaction`` must be fully durable (``synchronous=FULL``) when
they return; a pure offset commit (``commit()``) may be relaxed to ``NORMAL``, and
must still be read back after a restart. Appends, transactions and offset commits
queued at the same time share one storage transaction; a fenced transaction in such
a batch fails alone.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from chatcore._sqlite import SqliteDatabase
from chatcore.errors import Fenced
from chatcore.log import LogConsumer, LogRecord, MemoryLog, OutRecord, SqliteLog

pytestmark = pytest.mark.anyio

T = TypeVar("T")


class Recorder:
    """Wraps ``SqliteDatabase.transaction`` of one database: records each level used."""

    def __init__(self, db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
        self.db = db
        self.levels: list[tuple[str, int]] = []  # (level at COMMIT, rows changed)
        original = db.transaction

        def transaction(fn: Callable[[sqlite3.Connection], T], *, relaxed: bool = False) -> T:
            before = db._conn.total_changes
            result = original(fn, relaxed=relaxed)
            changed = db._conn.total_changes - before
            if changed:
                (level,) = db._conn.execute("PRAGMA synchronous").fetchone()
                self.levels.append(({1: "NORMAL", 2: "FULL"}[level], changed))
            return result

        monkeypatch.setattr(db, "transaction", transaction)

    def clear(self) -> None:
        self.levels.clear()


async def poll_until(consumer: LogConsumer, want: int) -> list[LogRecord]:
    got: list[LogRecord] = []
    with anyio.fail_after(5):
        while len(got) < want:
            got.extend((await consumer.poll(timeout_s=0.2)).records)
    return got


@pytest.fixture
def topic() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


async def test_appends_and_transactions_are_full_and_offset_commits_relaxed(
    tmp_path: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = topic + ".out"
    async with SqliteLog(tmp_path / "log.db") as log:
        rec = Recorder(log._db, monkeypatch)
        await log.create_topic(topic, partitions=2)
        await log.create_topic(out, partitions=2)
        rec.clear()
        await log.append([OutRecord(topic, "k", b"a", partition=0)])
        assert rec.levels and all(level == "FULL" for level, _ in rec.levels)
        async with (
            log.consumer(topic, group="stage") as stage,
            log.consumer(topic, group="seq") as seq,
        ):
            (record,) = await poll_until(stage, 1)
            await poll_until(seq, 1)

            rec.clear()
            await stage.commit({0: record.offset + 1})
            assert [level for level, _ in rec.levels] == ["NORMAL"]

            rec.clear()  # a transaction with no outputs is still a transaction: FULL
            await seq.commit_transaction([], {0: record.offset + 1})
            assert [level for level, _ in rec.levels] == ["FULL"]

            rec.clear()  # and so is one with outputs, right after a relaxed commit
            await stage.commit({0: record.offset + 1})
            await seq.commit_transaction([OutRecord(out, "k", b"A", partition=0)], {0: 1})
            assert [level for level, _ in rec.levels] == ["NORMAL", "FULL"]

            rec.clear()
            await stage.commit({0: record.offset + 1})
            await log.append([OutRecord(topic, "k", b"b", partition=0)])
            assert [level for level, _ in rec.levels] == ["NORMAL", "FULL"]
        assert log._db.synchronous == "FULL"


async def test_relaxed_offset_commits_are_read_back_after_a_restart(
    tmp_path: Path, topic: str
) -> None:
    async with SqliteLog(tmp_path / "log.db") as log:
        await log.create_topic(topic, partitions=2)
        await log.append(
            [OutRecord(topic, "k", str(i).encode(), partition=i % 2) for i in range(6)]
        )
        async with log.consumer(topic, group="g") as consumer:
            records = await poll_until(consumer, 6)
            for r in records:  # one relaxed commit per record
                await consumer.commit({r.partition: r.offset + 1})
    # Another connection (what a restarted process sees) reads them.
    with sqlite3.connect(tmp_path / "log.db") as conn:
        rows = conn.execute(
            "SELECT part, next_off FROM group_offsets WHERE grp='g' AND topic=?", (topic,)
        ).fetchall()
    assert dict(rows) == {0: 3, 1: 3}
    async with SqliteLog(tmp_path / "log.db") as log:
        assert await log.committed(topic, group="g") == {0: 3, 1: 3}
        await log.append([OutRecord(topic, "k", b"new", partition=0)])
        async with log.consumer(topic, group="g") as consumer:
            assert [r.value for r in await poll_until(consumer, 1)] == [b"new"]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_concurrent_writes_share_one_storage_transaction(
    kind: str, tmp_path: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = topic + ".out"
    log = MemoryLog() if kind == "memory" else SqliteLog(tmp_path / "log.db")
    async with log:
        await log.create_topic(topic, partitions=2)
        await log.create_topic(out, partitions=2)
        await log.append([OutRecord(topic, "k", b"in", partition=p) for p in (0, 1)])
        writes: list[dict[str, Any]] = []
        storage = log._storage
        original = storage.write

        def write(records: Any, now_ms: int, commits: Any = (), *, durable: bool = True) -> Any:
            writes.append({"records": len(records), "commits": len(commits), "durable": durable})
            return original(records, now_ms, commits, durable=durable)

        monkeypatch.setattr(storage, "write", write)
        async with (
            log.consumer(topic, group="a") as a,
            log.consumer(topic, group="b") as b,
            log.consumer(topic, group="f") as stale,
        ):
            await poll_until(a, 2)
            await poll_until(b, 2)
            await poll_until(stale, 2)
            async with log.consumer(topic, group="f") as newer:
                with anyio.fail_after(5):
                    while len(newer.assignment) < 1:
                        await newer.poll(timeout_s=0.05)
                (taken,) = newer.assignment  # `stale` lost it
                results: dict[str, Any] = {}

                async def run(name: str, call: Callable[[], Any]) -> None:
                    try:
                        results[name] = await call()
                    except Fenced as exc:
                        results[name] = exc

                writes.clear()
                async with anyio.create_task_group() as tg:
                    await log._lock.acquire()  # hold the writer so that all five queue up
                    try:
                        tg.start_soon(
                            run, "append", lambda: log.append([OutRecord(out, "x", b"1")])
                        )
                        tg.start_soon(run, "commit", lambda: a.commit({0: 1, 1: 1}))
                        tg.start_soon(
                            run,
                            "txn",
                            lambda: b.commit_transaction(
                                [OutRecord(out, "y", b"2", partition=1)], {0: 1, 1: 1}
                            ),
                        )
                        tg.start_soon(run, "fenced", lambda: stale.commit({taken: 1}))
                        tg.start_soon(
                            run, "append2", lambda: log.append([OutRecord(out, "z", b"3")])
                        )
                        await anyio.wait_all_tasks_blocked()
                        assert len(log._pending) == 5
                    finally:
                        log._lock.release()
        # one durable transaction (it holds records) for everything but the fenced commit
        assert writes == [{"records": 3, "commits": 2, "durable": True}]
        assert isinstance(results["fenced"], Fenced)
        assert [p.partition for p in results["txn"]] == [1]
        assert len(results["append"]) == 1 and len(results["append2"]) == 1
        assert await log.committed(topic, group="a") == {0: 1, 1: 1}
        assert await log.committed(topic, group="b") == {0: 1, 1: 1}
        assert await log.committed(topic, group="f") == {0: 0, 1: 0}
        assert sum((await log.end_offsets(out)).values()) == 3


async def test_only_offset_commits_in_a_batch_make_it_relaxed(
    tmp_path: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with SqliteLog(tmp_path / "log.db") as log:
        await log.create_topic(topic, partitions=2)
        await log.append([OutRecord(topic, "k", b"in", partition=p) for p in (0, 1)])
        rec = Recorder(log._db, monkeypatch)
        async with log.consumer(topic, group="a") as a, log.consumer(topic, group="b") as b:
            await poll_until(a, 2)
            await poll_until(b, 2)
            rec.clear()
            async with anyio.create_task_group() as tg:
                await log._lock.acquire()
                try:
                    tg.start_soon(a.commit, {0: 1, 1: 1})
                    tg.start_soon(b.commit, {0: 1, 1: 1})
                    await anyio.wait_all_tasks_blocked()
                finally:
                    log._lock.release()
            assert [level for level, _ in rec.levels] == ["NORMAL"]  # both in one
        assert await log.committed(topic, group="a") == {0: 1, 1: 1}
        assert await log.committed(topic, group="b") == {0: 1, 1: 1}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_write_cancelled_while_queued_writes_nothing(
    kind: str, tmp_path: Path, topic: str
) -> None:
    log = MemoryLog() if kind == "memory" else SqliteLog(tmp_path / "log.db")
    async with log:
        await log.create_topic(topic, partitions=1)
        await log.append([OutRecord(topic, "k", b"in")])
        async with log.consumer(topic, group="g") as consumer:
            await poll_until(consumer, 1)
            async with anyio.create_task_group() as tg:
                await log._lock.acquire()
                try:
                    tg.start_soon(
                        consumer.commit_transaction, [OutRecord(topic, "k", b"cancelled")], {0: 1}
                    )
                    tg.start_soon(log.append, [OutRecord(topic, "k", b"cancelled too")])
                    await anyio.wait_all_tasks_blocked()
                    assert len(log._pending) == 2
                    tg.cancel_scope.cancel()
                    await anyio.wait_all_tasks_blocked()
                    assert log._pending == []
                finally:
                    log._lock.release()
            await log.append([OutRecord(topic, "k", b"kept")])
        assert await log.committed(topic, group="g") == {0: 0}
        async with log.consumer(topic, group="reader") as reader:
            assert [r.value for r in await poll_until(reader, 2)] == [b"in", b"kept"]


async def test_consumers_read_the_tail_on_the_loop_thread_only_where_there_is_news(
    tmp_path: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with SqliteLog(tmp_path / "log.db") as log:
        await log.create_topic(topic, partitions=4)
        await log.append([OutRecord(topic, "k", b"old", partition=1)])
        worker_reads: list[object] = []
        loop_reads: list[dict[int, int]] = []
        storage = log._storage
        worker_read, read_now = storage.read, storage.read_now

        def on_worker(topic: str, positions: dict[int, int], limit: int) -> list[LogRecord]:
            worker_reads.append(positions)
            return worker_read(topic, positions, limit)

        def on_loop(topic: str, positions: dict[int, int], limit: int) -> list[LogRecord] | None:
            loop_reads.append(dict(positions))
            return read_now(topic, positions, limit)

        monkeypatch.setattr(storage, "read", on_worker)
        monkeypatch.setattr(storage, "read_now", on_loop)
        async with log.consumer(topic, group="g") as consumer:
            assert [r.value for r in await poll_until(consumer, 1)] == [b"old"]
            assert loop_reads == [{1: 0}]  # the one partition that has records
            assert not (await consumer.poll(timeout_s=0.05)).records
            assert len(loop_reads) == 1  # nothing new: no read at all
            await log.append([OutRecord(topic, "k", b"new", partition=3)])
            assert [r.value for r in await poll_until(consumer, 1)] == [b"new"]
            assert loop_reads[1:] == [{3: 0}]
        assert worker_reads == []  # the worker thread was never asked to read


async def test_a_busy_file_is_read_by_the_worker_thread(
    tmp_path: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with SqliteLog(tmp_path / "log.db") as log:
        await log.create_topic(topic, partitions=2)

        def busy(fn: Callable[[sqlite3.Connection], T]) -> T:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(log._db, "read_now", busy)
        async with log.consumer(topic, group="g") as consumer:
            await log.append([OutRecord(topic, "k", str(i).encode()) for i in range(3)])
            assert sorted(r.value for r in await poll_until(consumer, 3)) == [b"0", b"1", b"2"]


def test_an_in_memory_database_has_no_reader_of_its_own() -> None:
    db = SqliteDatabase(":memory:")
    with pytest.raises(sqlite3.OperationalError, match="one connection"):
        db.read_now(lambda c: c.execute("SELECT 1").fetchall())
    db.close()
