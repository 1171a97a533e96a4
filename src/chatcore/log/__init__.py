"""The PartitionedLog port and its embedded backends (memory, SQLite)."""

from chatcore.log._base import (
    ConsumerBatch,
    LogConsumer,
    LogRecord,
    OutRecord,
    PartitionedLog,
    RecordPosition,
    RetainingLog,
)
from chatcore.log.memory import MemoryLog
from chatcore.log.sqlite import SqliteLog

__all__ = [
    "ConsumerBatch",
    "LogConsumer",
    "LogRecord",
    "MemoryLog",
    "OutRecord",
    "PartitionedLog",
    "RecordPosition",
    "RetainingLog",
    "SqliteLog",
]
