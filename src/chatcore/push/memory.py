"""In-memory ``PushTokenStore``: single process only (the targets are lost on restart)."""

from __future__ import annotations

from collections.abc import Sequence

from chatcore._memory import MemoryAdapter
from chatcore.push._base import PushTarget
from chatcore.push.targets import TargetRules, check_target

__all__ = ["MemoryPushTokenStore"]


class MemoryPushTokenStore(MemoryAdapter):
    """Push targets per (user, device) in a dict; ``rules`` (``TargetRules()``) checks them."""

    def __init__(self, *, rules: TargetRules | None = None) -> None:
        self._rules = rules or TargetRules()
        self._by_user: dict[str, dict[str, PushTarget]] = {}  # oldest registration first

    async def register(self, target: PushTarget) -> None:
        """Keep ``target`` for its device, forgetting the user's oldest beyond the limit.

        Raises ``InvalidRequest`` for a bad target and ``ChatcoreClosed`` after ``aclose()``.
        """
        check_target(target, self._rules)
        await self._checkpoint()
        devices = self._by_user.setdefault(target.user, {})
        devices.pop(target.device, None)
        devices[target.device] = target
        while len(devices) > self._rules.max_devices_per_user:
            del devices[next(iter(devices))]

    async def unregister(self, user: str, device: str) -> None:
        """Forget the device's target. Raises ``ChatcoreClosed`` after ``aclose()``."""
        await self._checkpoint()
        devices = self._by_user.get(user, {})
        devices.pop(device, None)
        if not devices:
            self._by_user.pop(user, None)

    async def targets(self, users: Sequence[str]) -> list[PushTarget]:
        """The targets of ``users``' devices. Raises ``ChatcoreClosed`` after ``aclose()``."""
        await self._checkpoint()
        return [t for user in dict.fromkeys(users) for t in self._by_user.get(user, {}).values()]

    async def drop(self, target: PushTarget) -> None:
        """Forget ``target`` if its device still has it. Raises ``ChatcoreClosed`` after close."""
        await self._checkpoint()
        devices = self._by_user.get(target.user, {})
        if devices.get(target.device) == target:
            del devices[target.device]
            if not devices:
                del self._by_user[target.user]

    def _release(self) -> None:
        self._by_user.clear()
