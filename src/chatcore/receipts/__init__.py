"""Receipts: the watermark rule and what follows from watermarks (pure logic, no I/O).

Layout: ``watermarks`` holds the one rule for raising a member's watermarks, which
every ReceiptStore backend and the pipeline share; ``aggregator`` derives a member's
unread count from its watermarks.
"""

from chatcore.receipts.aggregator import unread_count
from chatcore.receipts.watermarks import advance, merge

__all__ = ["advance", "merge", "unread_count"]
