"""``select_in``: one ``IN`` list split over as many statements as its values need."""

from __future__ import annotations

import sqlite3

from chatcore._sqlite import IN_CHUNK, select_in


def _table(n: int) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (owner TEXT, k INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(o, k) for o in "ab" for k in range(n)])
    return conn


def test_every_value_is_read_across_chunks() -> None:
    n = IN_CHUNK * 2 + 7
    conn = _table(n)
    wanted = list(range(n))
    rows = list(
        select_in(conn, "SELECT k FROM t WHERE owner = ? AND k IN ({marks})", wanted, before=("a",))
    )
    assert sorted(r[0] for r in rows) == wanted


def test_only_the_values_asked_for() -> None:
    conn = _table(10)
    rows = select_in(conn, "SELECT owner, k FROM t WHERE k IN ({marks})", [3, 5, 99])
    assert sorted(rows) == [("a", 3), ("a", 5), ("b", 3), ("b", 5)]


def test_no_values_no_statement() -> None:
    conn = sqlite3.connect(":memory:")  # no table: a statement would fail
    assert list(select_in(conn, "SELECT k FROM missing WHERE k IN ({marks})", [])) == []
