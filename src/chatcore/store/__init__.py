"""The durable stores (messages, receipt watermarks, membership) and their embedded backends."""

from chatcore.store._base import MembershipStore, MessageStore, ReceiptStore
from chatcore.store.memory import MemoryMembershipStore, MemoryMessageStore, MemoryReceiptStore
from chatcore.store.sqlite import SqliteMembershipStore, SqliteMessageStore, SqliteReceiptStore

__all__ = [
    "MembershipStore",
    "MemoryMembershipStore",
    "MemoryMessageStore",
    "MemoryReceiptStore",
    "MessageStore",
    "ReceiptStore",
    "SqliteMembershipStore",
    "SqliteMessageStore",
    "SqliteReceiptStore",
]
