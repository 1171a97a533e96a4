"""``PushNotifierGroup``: several notifiers as one (a webhook and the devices' services)."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from chatcore._resource import AsyncResource, ClosingContext
from chatcore.errors import ChatcoreClosed
from chatcore.offline._base import PushNotification, PushNotifier

__all__ = ["PushNotifierGroup"]


class PushNotifierGroup(ClosingContext):
    """Hands every batch to each of ``notifiers`` at once; ``aclose()`` closes them all.

    The notifiers of :mod:`chatcore.push` never raise for a failed push, so one that
    fails does not keep the others from notifying.
    """

    def __init__(self, notifiers: Sequence[PushNotifier]) -> None:
        self.notifiers = tuple(notifiers)
        self._closed = False

    async def notify(self, notifications: Sequence[PushNotification]) -> None:
        """Notify through every notifier. Raises ``ChatcoreClosed`` after ``aclose()``."""
        if self._closed:
            raise ChatcoreClosed("PushNotifierGroup used after aclose()")
        async with anyio.create_task_group() as tg:
            for notifier in self.notifiers:
                tg.start_soon(notifier.notify, notifications)

    async def aclose(self) -> None:
        """Close every notifier (each even if another fails). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await close_all(self.notifiers)


async def close_all(resources: Sequence[AsyncResource]) -> None:
    """``aclose()`` each of ``resources`` in reverse order; the first error is raised at the end."""
    failure: BaseException | None = None
    for resource in reversed(resources):
        try:
            await resource.aclose()
        except Exception as exc:  # the others are closed first
            failure = failure or exc
    if failure is not None:
        raise failure
