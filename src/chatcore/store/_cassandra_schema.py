"""The Cassandra schema of the stores: tables, numbered migrations, and settings fixed at creation.

Every migration is a list of ``CREATE ... IF NOT EXISTS`` (or other repeatable)
statements, recorded in ``schema_migrations`` once all of them ran, so running
:func:`ensure_schema` again, or after a crash half-way, is harmless. Migrations
are additive: code that needs version N works on any keyspace at version >= N.
The message bucket size is written once, when the keyspace is first set up, and
read back by every store: it cannot change without rewriting the messages.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from chatcore.errors import InvalidRequest, Unavailable
from chatcore.store._cassandra_session import DRIVER_ERRORS, unavailable
from chatcore.store.replication import DEFAULT_REPLICATION, check_replication

__all__ = [
    "DEFAULT_BUCKET_SIZE",
    "DEFAULT_REPLICATION",
    "SCHEMA_VERSION",
    "StoreSchema",
    "check_keyspace",
    "ensure_schema",
    "read_schema",
]

DEFAULT_BUCKET_SIZE = 1000

_BUCKET_SIZE_SETTING = "message_bucket_size"

_MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "messages by (chat, bucket), bucket index, client ids, watermarks, chats, user chats",
        [
            """CREATE TABLE IF NOT EXISTS {ks}.messages (
                chat_id text, bucket bigint, seq bigint, data blob,
                PRIMARY KEY ((chat_id, bucket), seq)
            ) WITH CLUSTERING ORDER BY (seq ASC)""",
            """CREATE TABLE IF NOT EXISTS {ks}.chat_buckets (
                chat_id text, bucket bigint,
                PRIMARY KEY (chat_id, bucket)
            ) WITH CLUSTERING ORDER BY (bucket DESC)""",
            """CREATE TABLE IF NOT EXISTS {ks}.client_msgs (
                chat_id text, sender text, client_msg_id text, seq bigint,
                PRIMARY KEY ((chat_id, sender), client_msg_id, seq)
            )""",
            """CREATE TABLE IF NOT EXISTS {ks}.watermarks (
                chat_id text, user_id text,
                delivered_seq bigint, read_seq bigint, updated_ms bigint,
                PRIMARY KEY (chat_id, user_id)
            )""",
            """CREATE TABLE IF NOT EXISTS {ks}.chats (
                chat_id text PRIMARY KEY, kind text, title text, created_ms bigint,
                members frozen<list<text>>, version bigint
            )""",
            """CREATE TABLE IF NOT EXISTS {ks}.user_chats (
                user_id text, chat_id text,
                PRIMARY KEY (user_id, chat_id)
            )""",
        ],
    ),
    (
        2,
        "push targets by user",
        [
            """CREATE TABLE IF NOT EXISTS {ks}.push_targets (
                user_id text, device text, data blob, registered bigint,
                PRIMARY KEY (user_id, device)
            )""",
        ],
    ),
    (
        3,
        "group roles and options by chat",
        [
            """CREATE TABLE IF NOT EXISTS {ks}.chat_roles (
                chat_id text PRIMARY KEY, data blob
            )""",
        ],
    ),
    (
        4,
        "end-to-end encryption device keys by user",
        [
            """CREATE TABLE IF NOT EXISTS {ks}.device_keys (
                user_id text, device text, version bigint, public_key text,
                generation bigint STATIC,
                PRIMARY KEY (user_id, device)
            )""",
        ],
    ),
]

SCHEMA_VERSION = _MIGRATIONS[-1][0]
"""The schema version this code creates and needs."""

_BOOKKEEPING = [
    """CREATE TABLE IF NOT EXISTS {ks}.schema_migrations (
        version int PRIMARY KEY, description text, applied_ms bigint
    )""",
    """CREATE TABLE IF NOT EXISTS {ks}.settings (name text PRIMARY KEY, value bigint)""",
]

_KEYSPACE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")


class StoreSchema:
    """What a keyspace holds: its schema version and its message bucket size."""

    __slots__ = ("bucket_size", "keyspace", "version")

    def __init__(self, keyspace: str, *, version: int, bucket_size: int) -> None:
        self.keyspace = keyspace
        self.version = version
        self.bucket_size = bucket_size

    def __repr__(self) -> str:
        return (
            f"StoreSchema({self.keyspace!r}, version={self.version}, "
            f"bucket_size={self.bucket_size})"
        )


def check_keyspace(keyspace: str) -> str:
    """``keyspace`` in lower case (as CQL folds it); InvalidRequest unless a plain CQL name."""
    if not _KEYSPACE.fullmatch(keyspace):
        raise InvalidRequest(
            f"keyspace must be a letter then up to 47 letters, digits or '_', got {keyspace!r}"
        )
    return keyspace.lower()


def _cql_map(values: Mapping[str, str | int]) -> str:
    def quote(v: str | int) -> str:
        return "'" + str(v).replace("'", "''") + "'"

    return "{" + ", ".join(f"{quote(k)}: {quote(v)}" for k, v in values.items()) + "}"


def ensure_schema(
    session: Any,
    keyspace: str,
    *,
    replication: Mapping[str, str | int] = DEFAULT_REPLICATION,
    bucket_size: int | None = None,
) -> StoreSchema:
    """Create the keyspace, the tables and the settings that are missing; idempotent.

    Blocking (it waits for schema agreement after each change): call it from a
    deploy step, or from a worker thread. ``session`` is a connected
    ``cassandra.cluster.Session``. ``replication`` (see
    :mod:`chatcore.store.replication`) is used only when the keyspace is created;
    change an existing one with ``ALTER KEYSPACE`` and a repair. ``bucket_size``
    (messages per partition) is fixed when the keyspace is first set up; None means
    the stored one, or :data:`DEFAULT_BUCKET_SIZE` for a new keyspace. Run it from one process at a
    time: concurrent schema changes of one table on several Cassandra nodes can
    conflict. Raises InvalidRequest for a bad keyspace name, bad replication or a
    bucket size other than the stored one, Unavailable if Cassandra fails.
    """
    keyspace = check_keyspace(keyspace)
    replication = check_replication(replication)
    if bucket_size is not None and bucket_size < 1:
        raise InvalidRequest(f"bucket_size must be >= 1, got {bucket_size}")
    try:
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {_cql_map(replication)}"
        )
        for ddl in _BOOKKEEPING:
            session.execute(ddl.format(ks=keyspace))
        applied = _applied_versions(session, keyspace)
        for version, description, statements in _MIGRATIONS:
            if version in applied:
                continue
            for ddl in statements:
                session.execute(ddl.format(ks=keyspace))
            session.execute(
                f"INSERT INTO {keyspace}.schema_migrations (version, description, applied_ms) "
                "VALUES (%s, %s, %s)",
                (version, description, time.time_ns() // 1_000_000),
            )
        session.execute(
            f"INSERT INTO {keyspace}.settings (name, value) VALUES (%s, %s) IF NOT EXISTS",
            (_BUCKET_SIZE_SETTING, DEFAULT_BUCKET_SIZE if bucket_size is None else bucket_size),
        )
        stored = _bucket_size(session, keyspace)
    except DRIVER_ERRORS as exc:
        raise unavailable(f"creating the schema of keyspace {keyspace}", exc) from exc
    if stored is None:  # the insert above is not visible at this consistency level yet
        raise Unavailable(f"cassandra: the bucket size of keyspace {keyspace} is not readable")
    if bucket_size is not None and stored != bucket_size:
        raise InvalidRequest(
            f"keyspace {keyspace} keeps messages in buckets of {stored}, not {bucket_size}: "
            "the bucket size is fixed when the keyspace is created"
        )
    return StoreSchema(keyspace, version=max(applied | {SCHEMA_VERSION}), bucket_size=stored)


def read_schema(session: Any, keyspace: str) -> StoreSchema:
    """The schema of an existing keyspace, checked to be usable by this code; blocking.

    Raises InvalidRequest for a bad keyspace name, Unavailable if Cassandra fails
    or the keyspace is missing, older than :data:`SCHEMA_VERSION` or lacks one of its
    migrations (run :func:`ensure_schema`).
    """
    keyspace = check_keyspace(keyspace)
    try:
        tables = {
            _first(row)
            for row in session.execute(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
                (keyspace,),
            )
        }
        has_books = {"schema_migrations", "settings"} <= tables
        applied = _applied_versions(session, keyspace) if has_books else set()
        version = max(applied, default=0)
        bucket_size = _bucket_size(session, keyspace) if has_books else None
    except DRIVER_ERRORS as exc:
        raise unavailable(f"reading the schema of keyspace {keyspace}", exc) from exc
    missing = [v for v, _, _ in _MIGRATIONS if v not in applied]
    if missing and version >= SCHEMA_VERSION:
        raise Unavailable(
            f"cassandra: keyspace {keyspace} lacks schema migrations {missing}: "
            "run ensure_schema on it first"
        )
    if version < SCHEMA_VERSION or bucket_size is None:
        raise Unavailable(
            f"cassandra: keyspace {keyspace} has schema version {version}, this chatcore "
            f"needs {SCHEMA_VERSION}: run ensure_schema on it first"
        )
    return StoreSchema(keyspace, version=version, bucket_size=bucket_size)


def _first(row: Any) -> Any:
    """The first column of a row, whatever the session's row factory (dict or tuple)."""
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def _applied_versions(session: Any, keyspace: str) -> set[int]:
    rows = session.execute(f"SELECT version FROM {keyspace}.schema_migrations")
    return {int(_first(row)) for row in rows}


def _bucket_size(session: Any, keyspace: str) -> int | None:
    rows = list(
        session.execute(
            f"SELECT value FROM {keyspace}.settings WHERE name = %s", (_BUCKET_SIZE_SETTING,)
        )
    )
    return int(_first(rows[0])) if rows else None
