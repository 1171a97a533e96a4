"""A ``PushNotifier`` that writes one log line per notification (logger ``chatcore.push``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from chatcore._memory import MemoryAdapter
from chatcore.offline._base import PushNotification

__all__ = ["LoggingPushNotifier"]


class LoggingPushNotifier(MemoryAdapter):
    """Logs each notification at ``level`` (default INFO) on ``logger`` (``chatcore.push``).

    Previews are message text, so they are logged only with ``include_preview=True``.
    """

    def __init__(
        self,
        *,
        logger: logging.Logger | None = None,
        level: int = logging.INFO,
        include_preview: bool = False,
    ) -> None:
        self._logger = logger or logging.getLogger(__name__)
        self._level = level
        self._include_preview = include_preview

    async def notify(self, notifications: Sequence[PushNotification]) -> None:
        """Log one line per notification. Raises ``ChatcoreClosed`` after ``aclose()``."""
        await self._checkpoint()
        for n in notifications:
            noun = "message" if n.count == 1 else "messages"
            preview = f": {n.preview!r}" if self._include_preview and n.preview else ""
            self._logger.log(
                self._level,
                "push to %s in chat %s: %d new %s from %s (up to seq %d)%s",
                n.user,
                n.chat_id,
                n.count,
                noun,
                ", ".join(n.senders) or "nobody",
                n.last_seq,
                preview,
            )
