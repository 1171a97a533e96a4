"""Redis ``PushTokenStore``: the push targets shared by every process of a deployment.

Per user, a hash ``push:{u:<user>}`` maps each device to its msgpack ``PushTarget``
and a sorted set ``push-order:{u:<user>}`` ranks the devices by registration (score:
one more than the highest). Lua scripts change both at once, so concurrent calls
never leave them apart: ``register`` writes, then forgets the lowest-ranked devices
past ``max_devices_per_user``; ``drop`` deletes a device only if it still holds the
very target given (same bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import msgspec

from chatcore._redis import DEFAULT_PREFIX, DEFAULT_TIMEOUT_S, RedisAdapter, RedisClient
from chatcore.push._base import PushTarget
from chatcore.push.targets import TargetRules, check_target

__all__ = ["RedisPushTokenStore"]

# KEYS: 1 the user's hash, 2 their order. ARGV: 1 device, 2 target, 3 max devices.
_REGISTER = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local score = 1
if top[2] then score = tonumber(top[2]) + 1 end
redis.call('ZADD', KEYS[2], score, ARGV[1])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if extra > 0 then
  for _, device in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do
    redis.call('HDEL', KEYS[1], device)
    redis.call('ZREM', KEYS[2], device)
  end
end
return 1
"""

# KEYS: as above. ARGV: 1 device, 2 the target to drop ("" for any: unregister).
_FORGET = """
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(PushTarget).decode


class RedisPushTokenStore(RedisAdapter):
    """Push targets in Redis (a hash and a sorted set per user).

    ``redis`` is a URL (the store makes and closes its client) or a
    ``redis.asyncio.Redis`` client (borrowed). ``rules`` (``TargetRules()``) checks
    every target; ``prefix`` (``"chatcore:"``) starts every key; ``timeout_s`` (5.0):
    see :class:`chatcore._redis.RedisKeyspace`. Raises ``InvalidRequest`` for a bad
    prefix or timeout.
    """

    def __init__(
        self,
        redis: str | RedisClient,
        *,
        rules: TargetRules | None = None,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(redis, prefix=prefix, timeout_s=timeout_s)
        self._rules = rules or TargetRules()
        self._register = self._redis.script(_REGISTER)
        self._forget = self._redis.script(_FORGET)

    async def register(self, target: PushTarget) -> None:
        """Keep ``target`` for its device, forgetting the user's oldest beyond the limit.

        Raises ``InvalidRequest`` for a bad target, ``Unavailable`` if Redis fails and
        ``ChatcoreClosed`` after ``aclose()``.
        """
        check_target(target, self._rules)
        args = [target.device, _encode(target), self._rules.max_devices_per_user]
        await self._redis.run(
            "register a push target", self._register, self._keys(target.user), args
        )

    async def unregister(self, user: str, device: str) -> None:
        """Forget the device's target. Raises ``Unavailable``, ``ChatcoreClosed``."""
        await self._redis.run(
            "unregister a push target", self._forget, self._keys(user), [device, ""]
        )

    async def targets(self, users: Sequence[str]) -> list[PushTarget]:
        """The targets of ``users``' devices (one pipelined round trip).

        Raises ``Unavailable`` if Redis fails and ``ChatcoreClosed`` after ``aclose()``.
        """
        client = await self._redis.ready()
        wanted = list(dict.fromkeys(users))
        if not wanted:
            return []
        with self._redis.errors("read push targets"):
            async with client.pipeline(transaction=False) as pipe:
                for user in wanted:
                    pipe.hvals(self._keys(user)[0])
                found = cast(list[list[bytes]], await pipe.execute())
        return [_decode(data) for values in found for data in values]

    async def drop(self, target: PushTarget) -> None:
        """Forget ``target`` if its device still has it. Raises Unavailable, ChatcoreClosed."""
        args = [target.device, _encode(target)]
        await self._redis.run("drop a push target", self._forget, self._keys(target.user), args)

    def _keys(self, user: str) -> list[str]:
        tag = f"{{u:{user}}}"
        return [self._redis.key("push", tag), self._redis.key("push-order", tag)]
