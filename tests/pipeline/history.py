"""Reading a chat's whole history, page by page (shared by the crash tests)."""

from __future__ import annotations

from chatcore.model import ChatInfo, StoredMessage
from chatcore.node import ChatNode


async def history(node: ChatNode, chat: ChatInfo) -> list[StoredMessage]:
    """Every stored message of ``chat``, oldest first, as its first member reads it."""
    out: list[StoredMessage] = []
    after = 0
    while True:
        page = await node.history(chat.members[0], chat.chat_id, after=after, limit=200)
        out.extend(page.messages)
        if not page.has_more:
            return out
        after = page.messages[-1].seq
