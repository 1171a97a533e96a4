"""Redis ``ConnectionRegistry``: live connections of every gateway, seen by every process.

How this works: per user, in one slot (hash tag ``{u:<user>}``), a hash
``registry:{u:<user>}:conns`` maps ``conn_id`` to the encoded
:class:`~chatcore.model.Connection` and a sorted set ``registry:{u:<user>}:deadlines``
maps ``conn_id`` to the ms (Redis's clock, so gateways need not agree on time) after
which it is gone. Lua scripts register, unregister and look up atomically per user,
dropping expired entries as they go; both keys expire by themselves with the user's
last connection. Per gateway, a set ``registry:{g:<gateway>}:conns`` of encoded
connections serves :meth:`RedisConnectionRegistry.drop_gateway`; it expires
``ttl_s`` after the gateway's last ``register``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import msgspec

from chatcore._redis import DEFAULT_PREFIX, DEFAULT_TIMEOUT_S, Pipeline, RedisAdapter, RedisClient
from chatcore.errors import InvalidRequest
from chatcore.model import Connection

_PIPELINED = 1000
"""Connections registered in one pipeline (one round trip)."""

__all__ = ["RedisConnectionRegistry"]

# KEYS: 1 the user's conns hash, 2 their deadlines sorted set.
_PRUNE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('HDEL', KEYS[1], unpack(gone))
end
"""

# ARGV: 1 conn_id, 2 encoded connection, 3 ttl in ms.
_REGISTER = (
    _PRUNE
    + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], string.format('%d', now + tonumber(ARGV[3])), ARGV[1])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2]
redis.call('PEXPIREAT', KEYS[1], last)
redis.call('PEXPIREAT', KEYS[2], last)
"""
)

# ARGV: 1 conn_id, 2 encoded connection (only that exact connection is forgotten).
_UNREGISTER = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
"""

# Returns the encoded live connections, earliest deadline first.
_LOOKUP = (
    _PRUNE
    + """
local live = redis.call('ZRANGE', KEYS[2], 0, -1)
if #live == 0 then return {} end
return redis.call('HMGET', KEYS[1], unpack(live))
"""
)

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Connection).decode


class RedisConnectionRegistry(RedisAdapter):
    """Live connections by user in Redis, each expiring ``ttl_s`` after its last ``register``.

    ``redis`` is a URL (the registry makes and closes its client) or a
    ``redis.asyncio.Redis`` client (borrowed). ``prefix`` (``"chatcore:"``) starts
    every key; ``timeout_s`` (5.0): see :class:`chatcore._redis.RedisKeyspace`.
    ``conn_id`` names a connection: registering another ``Connection`` with the same
    ``conn_id`` replaces it. ``lookup`` lists a user's connections earliest deadline
    first. Raises ``InvalidRequest`` for a bad option.
    """

    def __init__(
        self,
        redis: str | RedisClient,
        *,
        prefix: str = DEFAULT_PREFIX,
        drop_batch: int = 500,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if drop_batch < 1:
            raise InvalidRequest(f"drop_batch must be at least 1, got {drop_batch}")
        super().__init__(redis, prefix=prefix, timeout_s=timeout_s)
        self._drop_batch = drop_batch
        self._register = self._redis.script(_REGISTER)
        self._unregister = self._redis.script(_UNREGISTER)
        self._lookup = self._redis.script(_LOOKUP)

    async def register(self, conn: Connection, *, ttl_s: float) -> None:
        """Record a live connection for ``ttl_s`` seconds (again: refresh its deadline).

        Raises ``InvalidRequest`` if ``ttl_s`` is not positive and finite,
        ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        await self.register_many([conn], ttl_s=ttl_s)

    async def register_many(self, conns: Sequence[Connection], *, ttl_s: float) -> None:
        """:meth:`register` for each of ``conns``, pipelined: up to 1,000 connections
        per round trip. Raises like :meth:`register`, registering nothing on a bad
        ``ttl_s``."""
        if not math.isfinite(ttl_s) or ttl_s <= 0:
            raise InvalidRequest(f"ttl_s must be a positive finite number, got {ttl_s}")
        ttl_ms = max(1, round(ttl_s * 1000))
        client = await self._redis.ready()
        for start in range(0, len(conns), _PIPELINED):
            with self._redis.errors("register connections"):
                async with client.pipeline(transaction=False) as pipe:
                    gateways: set[str] = set()
                    for conn in conns[start : start + _PIPELINED]:
                        encoded = _encode(conn)
                        args: list[str | bytes | int] = [conn.conn_id, encoded, ttl_ms]
                        keys = self._user_keys(conn.user)
                        await self._redis.queue(pipe, self._register, keys, args)
                        gateway = self._gateway_key(conn.gateway)
                        pipe.sadd(gateway, encoded)
                        gateways.add(gateway)
                    for gateway in sorted(gateways):
                        pipe.pexpire(gateway, ttl_ms, nx=True)
                        pipe.pexpire(gateway, ttl_ms, gt=True)
                    await pipe.execute()

    async def unregister(self, conn: Connection) -> None:
        """Forget a connection (no error if unknown).

        Raises ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        encoded = _encode(conn)
        client = await self._redis.ready()
        with self._redis.errors("unregister a connection"):
            async with client.pipeline(transaction=False) as pipe:
                await self._forget(pipe, conn, encoded)
                pipe.srem(self._gateway_key(conn.gateway), encoded)
                await pipe.execute()

    async def lookup(self, users: Sequence[str]) -> dict[str, list[Connection]]:
        """Live connections of many users in one pipelined round trip (users with none absent).

        Raises ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        asked = list(dict.fromkeys(users))
        client = await self._redis.ready()
        if not asked:
            return {}
        with self._redis.errors("look up connections"):
            async with client.pipeline(transaction=False) as pipe:
                for user in asked:
                    await self._redis.queue(pipe, self._lookup, self._user_keys(user), [])
                replies: list[list[bytes | None]] = await pipe.execute()
        found: dict[str, list[Connection]] = {}
        for user, encoded in zip(asked, replies, strict=True):
            conns = [_decode(e) for e in encoded if e is not None]
            if conns:
                found[user] = conns
        return found

    async def drop_gateway(self, gateway: str) -> None:
        """Forget every connection of a gateway, ``drop_batch`` (500) per round trip.

        Raises ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        key = self._gateway_key(gateway)
        client = await self._redis.ready()
        with self._redis.errors("drop a gateway"):
            while True:
                held = cast(list[bytes], await client.srandmember(key, self._drop_batch))
                if not held:
                    return
                async with client.pipeline(transaction=False) as pipe:
                    for encoded in held:
                        await self._forget(pipe, _decode(encoded), encoded)
                    pipe.srem(key, *held)
                    await pipe.execute()

    async def _forget(self, pipe: Pipeline, conn: Connection, encoded: bytes) -> None:
        args: list[str | bytes] = [conn.conn_id, encoded]
        await self._redis.queue(pipe, self._unregister, self._user_keys(conn.user), args)

    def _user_keys(self, user: str) -> list[str]:
        tag = f"{{u:{user}}}"
        return [
            self._redis.key("registry", tag, "conns"),
            self._redis.key("registry", tag, "deadlines"),
        ]

    def _gateway_key(self, gateway: str) -> str:
        return self._redis.key("registry", f"{{g:{gateway}}}", "conns")
