"""Redis ``KeyDirectory``: the device keys shared by every process of a deployment.

Per user, a hash ``keys:{u:<user>}`` maps each device to its msgpack ``DeviceKey``.
A publish WATCHes the hash, checks the rules (:mod:`chatcore.keys.rules`) on what it
read and writes in MULTI/EXEC, retried if the hash changed meanwhile: the rules hold
under concurrent publishes without a copy of them in Lua.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import msgspec

from chatcore._redis import DEFAULT_PREFIX, DEFAULT_TIMEOUT_S, RedisAdapter, RedisClient
from chatcore.keys._base import DeviceKey
from chatcore.keys.rules import KeyRules, check_publish

__all__ = ["RedisKeyDirectory"]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(DeviceKey).decode


class RedisKeyDirectory(RedisAdapter):
    """Device keys in Redis (a hash per user).

    ``redis`` is a URL (the directory makes and closes its client) or a
    ``redis.asyncio.Redis`` client (borrowed). ``rules`` (``KeyRules()``) checks every
    publish; ``prefix`` (``"chatcore:"``) starts every key; ``timeout_s`` (5.0): see
    :class:`chatcore._redis.RedisKeyspace`.
    """

    def __init__(
        self,
        redis: str | RedisClient,
        *,
        rules: KeyRules | None = None,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(redis, prefix=prefix, timeout_s=timeout_s)
        self._rules = rules or KeyRules()

    async def publish(self, key: DeviceKey) -> bool:
        """See :meth:`KeyDirectory.publish`; also ``Unavailable``, ``ChatcoreClosed``."""
        client, name = await self._redis.ready(), self._key(key.user)

        async def publish(pipe: Any) -> bool:
            devices = cast(dict[bytes, bytes], await pipe.hgetall(name))
            stored = devices.get(key.device.encode())
            current = None if stored is None else _decode(stored)
            if not check_publish(key, current, len(devices), self._rules):
                return False
            pipe.multi()
            pipe.hset(name, key.device, _encode(key))
            return True

        with self._redis.errors("publish a device key"):
            # WATCH/MULTI/EXEC on one key: one slot, so a cluster client runs it too
            # (redis-py types RedisCluster.transaction's callable oddly: hence Any).
            transact: Any = client.transaction
            changed: bool = await transact(publish, name, value_from_callable=True)
        return changed

    async def keys(self, users: Sequence[str]) -> list[DeviceKey]:
        """See :meth:`KeyDirectory.keys` (one pipelined round trip)."""
        client = await self._redis.ready()
        wanted = list(dict.fromkeys(users))
        if not wanted:
            return []
        with self._redis.errors("read device keys"):
            async with client.pipeline(transaction=False) as pipe:
                for user in wanted:
                    pipe.hvals(self._key(user))
                found = cast(list[list[bytes]], await pipe.execute())
        return [_decode(data) for values in found for data in values]

    async def revoke(self, user: str, device: str) -> bool:
        """See :meth:`KeyDirectory.revoke`; also ``Unavailable``, ``ChatcoreClosed``."""
        client = await self._redis.ready()
        with self._redis.errors("revoke a device key"):
            removed = await client.hdel(self._key(user), device)
        return bool(removed)

    def _key(self, user: str) -> str:
        return self._redis.key("keys", f"{{u:{user}}}")
