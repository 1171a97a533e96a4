"""Receipts: the watermark rule and what follows from watermarks (pure logic, no I/O).

Layout: ``watermarks`` holds the one rule for raising a member's watermarks, which
every ReceiptStore backend and the pipeline share; ``aggregator`` derives message
status, "read by k of N" and unread counts from a chat's watermarks.
"""

from chatcore.receipts.aggregator import (
    MessageStatus,
    ReceiptCounts,
    receipt_counts,
    receipt_counts_many,
    status_of,
    statuses,
    unread_count,
)
from chatcore.receipts.watermarks import advance, merge

__all__ = [
    "MessageStatus",
    "ReceiptCounts",
    "advance",
    "merge",
    "receipt_counts",
    "receipt_counts_many",
    "status_of",
    "statuses",
    "unread_count",
]
