"""Redis ``NodeIdLease``: node ids kept apart among every process sharing a Redis.

A lease is the key ``node:{<id>}`` set with ``SET NX PXAT`` to ``<token>:<owner>``;
Redis deletes it when it expires, which frees the id. Renewing and releasing are
Lua compare-and-set on that value, so a holder whose lease expired or was taken can
neither extend nor delete the new holder's. Expiry times are Redis's clock (``TIME``
inside the scripts), so holders need not agree on the time.
"""

from __future__ import annotations

import random
import uuid

from chatcore._redis import DEFAULT_PREFIX, DEFAULT_TIMEOUT_S, RedisAdapter, RedisClient
from chatcore.errors import Fenced, Unavailable
from chatcore.ids._base import NodeLease, check_node_ids, lease_ttl_ms
from chatcore.ids._snowflake import MAX_NODE_ID

__all__ = ["RedisNodeIdLease"]

_NOW = """
local t = redis.call('TIME')
local until_ms = string.format('%d',
  tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2]))
"""

# KEYS: 1 the node id's key. ARGV: 1 the holder's value, 2 ttl in ms.
# Acquire and renew return the new expiry (ms), or nil if the id is held by another.
_ACQUIRE = (
    _NOW
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PXAT', until_ms) then return until_ms end
return false
"""
)

_RENEW = (
    _NOW
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
redis.call('PEXPIREAT', KEYS[1], until_ms)
return until_ms
"""
)

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""

_PROBE = 128
"""How many node ids one round trip checks for a free one."""


class RedisNodeIdLease(RedisAdapter):
    """Leases node ids from ``node_ids`` (default all 1024) in Redis.

    ``redis`` is a URL (the lease makes and closes its client) or a
    ``redis.asyncio.Redis`` client (borrowed). ``prefix`` (``"chatcore:"``) starts
    every key; ``timeout_s`` (5.0): see :class:`chatcore._redis.RedisKeyspace`.
    ``acquire`` probes the ids from a random one on, so that processes starting
    together rarely race for the same id. Raises ``ValueError`` for bad ``node_ids``.
    """

    def __init__(
        self,
        redis: str | RedisClient,
        *,
        node_ids: range = range(MAX_NODE_ID + 1),
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._node_ids = check_node_ids(node_ids)
        super().__init__(redis, prefix=prefix, timeout_s=timeout_s)
        self._acquire = self._redis.script(_ACQUIRE)
        self._renew = self._redis.script(_RENEW)
        self._release = self._redis.script(_RELEASE)

    async def acquire(self, owner: str, *, ttl_s: float) -> NodeLease:
        """Lease a node id no live holder has; see ``NodeIdLease.acquire``.

        Raises ``ValueError`` for an empty ``owner`` or ``ttl_s <= 0``, ``Unavailable``
        when every id is held (or Redis fails) and ``ChatcoreClosed`` after ``aclose()``.
        """
        ttl_ms = lease_ttl_ms(owner, ttl_s)
        token = uuid.uuid4().hex
        start = random.randrange(len(self._node_ids))
        order = [*self._node_ids[start:], *self._node_ids[:start]]
        client = await self._redis.ready()
        for i in range(0, len(order), _PROBE):
            candidates = order[i : i + _PROBE]
            with self._redis.errors("probe node ids"):
                async with client.pipeline(transaction=False) as pipe:
                    for node_id in candidates:
                        pipe.exists(self._key(node_id))
                    held = await pipe.execute()
            for node_id, taken in zip(candidates, held, strict=True):
                if taken:
                    continue
                args = [_value(token, owner), ttl_ms]
                until = await self._redis.run("acquire", self._acquire, [self._key(node_id)], args)
                if until is not None:
                    return NodeLease(
                        node_id=node_id,
                        owner=owner,
                        token=token,
                        ttl_ms=ttl_ms,
                        expires_at_ms=int(until),
                    )
        raise Unavailable(
            f"all {len(self._node_ids)} node ids of {self._node_ids} are leased by live "
            "holders; retry when one expires or is released"
        )

    async def renew(self, lease: NodeLease) -> NodeLease:
        """Extend a live lease by its ``ttl_ms`` from now (Redis's clock).

        Raises ``Fenced`` if the lease expired, was released or was taken,
        ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        args = [_value(lease.token, lease.owner), lease.ttl_ms]
        until = await self._redis.run("renew", self._renew, [self._key(lease.node_id)], args)
        if until is None:
            raise Fenced(
                f"node id {lease.node_id} lease of {lease.owner!r} expired, was released "
                "or was taken"
            )
        return NodeLease(
            node_id=lease.node_id,
            owner=lease.owner,
            token=lease.token,
            ttl_ms=lease.ttl_ms,
            expires_at_ms=int(until),
        )

    async def release(self, lease: NodeLease) -> None:
        """Free the node id if this lease still holds it.

        Raises ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        args = [_value(lease.token, lease.owner)]
        await self._redis.run("release", self._release, [self._key(lease.node_id)], args)

    def _key(self, node_id: int) -> str:
        return self._redis.key(f"node:{{{node_id}}}")


def _value(token: str, owner: str) -> str:
    return f"{token}:{owner}"
