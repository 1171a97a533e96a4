"""In-memory ``KeyDirectory``: single process only (the keys are lost on restart)."""

from __future__ import annotations

from collections.abc import Sequence

from chatcore._memory import MemoryAdapter
from chatcore.keys._base import DeviceKey
from chatcore.keys.rules import KeyRules, check_publish

__all__ = ["MemoryKeyDirectory"]


class MemoryKeyDirectory(MemoryAdapter):
    """Device keys per (user, device) in a dict; ``rules`` (``KeyRules()``) checks them."""

    def __init__(self, *, rules: KeyRules | None = None) -> None:
        self._rules = rules or KeyRules()
        self._by_user: dict[str, dict[str, DeviceKey]] = {}

    async def publish(self, key: DeviceKey) -> bool:
        """See :meth:`KeyDirectory.publish`; ``ChatcoreClosed`` after ``aclose()``."""
        await self._checkpoint()
        devices = self._by_user.get(key.user, {})
        if not check_publish(key, devices.get(key.device), len(devices), self._rules):
            return False
        self._by_user.setdefault(key.user, {})[key.device] = key
        return True

    async def keys(self, users: Sequence[str]) -> list[DeviceKey]:
        """See :meth:`KeyDirectory.keys`; ``ChatcoreClosed`` after ``aclose()``."""
        await self._checkpoint()
        return [k for user in dict.fromkeys(users) for k in self._by_user.get(user, {}).values()]

    async def revoke(self, user: str, device: str) -> bool:
        """See :meth:`KeyDirectory.revoke`; ``ChatcoreClosed`` after ``aclose()``."""
        await self._checkpoint()
        devices = self._by_user.get(user, {})
        found = devices.pop(device, None) is not None
        if not devices:
            self._by_user.pop(user, None)
        return found

    def _release(self) -> None:
        self._by_user.clear()
