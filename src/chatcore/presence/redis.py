"""Redis ``PresenceStore``: the rules of :mod:`chatcore.presence.rules`, shared by every process.

How this works: users are spread over ``shards`` hash tags ``{p:<n>}`` (crc32 of the
user). Per user, a sorted set ``presence:{p:n}:devices:<user>`` maps each device to
the ms its entry expires (exclusive) and a string ``presence:{p:n}:seen:<user>``
holds ``last_seen`` (kept, or for ``last_seen_ttl_s``). Per shard, a sorted set
``presence:{p:n}:expiry`` maps each user with devices to their earliest expiry,
so :meth:`RedisPresenceStore.expire` finds the users due with one ZRANGEBYSCORE
per shard. All three sit in one slot, so each Lua script below applies a rule to
a user atomically (drop the devices expired at ``now_ms``, then touch, leave or
expire) and publishes the transitions it causes on ``presence:changes`` from
inside the script: every process sees each transition once, in the order they
happened. ``states`` and ``expire`` run one script per shard over all its users
asked or due, pipelined: one round trip however many users.

Time is the caller's ``now_ms``, as in the memory backend, so expiry does not
depend on Redis's clock; the node hub calls ``expire`` periodically and any node
may do it for all (the scripts make concurrent calls safe).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Self

import msgspec

from chatcore._redis import DEFAULT_PREFIX, DEFAULT_TIMEOUT_S, Pipeline, RedisAdapter, RedisClient
from chatcore.errors import InvalidRequest
from chatcore.model import PresenceState
from chatcore.presence.rules import ttl_ms

_PIPELINED = 1000
"""Scripts sent in one pipeline (one round trip) by the calls for many devices."""

__all__ = ["RedisPresenceStore"]

# Every script: ARGV 1 now_ms, 2 changes channel, 3 last_seen TTL in ms ("0": none).
# A user ``u`` is {name, devices key, last_seen key}; KEYS[1] is the shard's expiry index.
_RULES = """
local now, channel, seen_ttl, index = ARGV[1], ARGV[2], ARGV[3], KEYS[1]
local function payload(u, online, seen)
  return '{"user":' .. cjson.encode(u.name) .. ',"online":' .. online
    .. ',"last_seen":' .. (seen or 'null') .. '}'
end
local function later(seen)
  if seen and tonumber(seen) >= tonumber(now) then return seen end
  return now
end
local function set_seen(u, seen)
  if seen_ttl == '0' then
    redis.call('SET', u.seen, seen)
  else
    redis.call('SET', u.seen, seen, 'PX', seen_ttl)
  end
end
local function drop_expired(u)
  if redis.call('ZCARD', u.devices) == 0 then return false end
  redis.call('ZREMRANGEBYSCORE', u.devices, '-inf', now)
  if redis.call('ZCARD', u.devices) > 0 then return false end
  local change = payload(u, 'false', redis.call('GET', u.seen))
  redis.call('PUBLISH', channel, change)
  return change
end
local function reindex(u)
  local first = redis.call('ZRANGE', u.devices, 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', index, first[2], u.name)
  else
    redis.call('ZREM', index, u.name)
  end
end
"""

# KEYS 2: devices, 3: last_seen; ARGV 4: user, 5: device, 6: its expiry (ms).
# Returns 1 if the user came online.
_TOUCH = (
    _RULES
    + """
local u = {name = ARGV[4], devices = KEYS[2], seen = KEYS[3]}
drop_expired(u)
local came_online = redis.call('ZCARD', u.devices) == 0
redis.call('ZADD', u.devices, ARGV[6], ARGV[5])
local seen = later(redis.call('GET', u.seen))
set_seen(u, seen)
reindex(u)
if came_online then
  redis.call('PUBLISH', channel, payload(u, 'true', seen))
  return 1
end
return 0
"""
)

# KEYS 2: devices, 3: last_seen; ARGV 4: user, 5: device.
# Returns 1 if this took the user offline.
_LEAVE = (
    _RULES
    + """
local u = {name = ARGV[4], devices = KEYS[2], seen = KEYS[3]}
drop_expired(u)
local went_offline = 0
if redis.call('ZREM', u.devices, ARGV[5]) == 1 then
  local seen = later(redis.call('GET', u.seen))
  set_seen(u, seen)
  if redis.call('ZCARD', u.devices) == 0 then
    redis.call('PUBLISH', channel, payload(u, 'false', seen))
    went_offline = 1
  end
end
reindex(u)
return went_offline
"""
)

# Users of one shard: KEYS 2i, 2i+1: devices and last_seen of ARGV[3 + i].
# Returns the transitions published by the users whose devices all expired.
_EXPIRE = (
    _RULES
    + """
local changes = {}
for i = 1, (#KEYS - 1) / 2 do
  local u = {name = ARGV[3 + i], devices = KEYS[2 * i], seen = KEYS[2 * i + 1]}
  local change = drop_expired(u)
  if change then changes[#changes + 1] = change end
  reindex(u)
end
return changes
"""
)

# Users of one shard: KEYS 2i-1, 2i: devices and last_seen; ARGV 1: now_ms.
# Returns, per user, how many devices are live and last_seen.
_STATES = """
local answer = {}
for i = 1, #KEYS, 2 do
  answer[i] = redis.call('ZCOUNT', KEYS[i], '(' .. ARGV[1], '+inf')
  answer[i + 1] = redis.call('GET', KEYS[i + 1])
end
return answer
"""

_decode_change = msgspec.json.Decoder(PresenceState).decode


class RedisPresenceStore(RedisAdapter):
    """Presence of users' devices in Redis, seen alike by every process.

    ``redis`` is a URL (the store makes and closes its client) or a
    ``redis.asyncio.Redis`` client (borrowed). Options:

    - ``prefix`` (``"chatcore:"``): starts every key and the changes channel.
    - ``shards`` (64): how many hash tags users are spread over; the expiry index
      has one sorted set per shard, so this bounds how many Redis Cluster slots
      presence uses. Fixed for the life of the data: changing it moves users.
    - ``last_seen_ttl_s`` (``None``: kept forever): how long a user's ``last_seen``
      is kept after their last touch or leave.
    - ``expire_batch`` (1000): how many due users one script round handles per shard.
    - ``timeout_s`` (5.0): see :class:`chatcore._redis.RedisKeyspace`.

    Raises ``InvalidRequest`` for an option out of range.
    """

    def __init__(
        self,
        redis: str | RedisClient,
        *,
        prefix: str = DEFAULT_PREFIX,
        shards: int = 64,
        last_seen_ttl_s: float | None = None,
        expire_batch: int = 1000,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if shards < 1:
            raise InvalidRequest(f"shards must be at least 1, got {shards}")
        if expire_batch < 1:
            raise InvalidRequest(f"expire_batch must be at least 1, got {expire_batch}")
        super().__init__(redis, prefix=prefix, timeout_s=timeout_s)
        self._shards = shards
        self._seen_ttl = (
            "0" if last_seen_ttl_s is None else str(ttl_ms(last_seen_ttl_s, name="last_seen_ttl_s"))
        )
        self._batch = expire_batch
        self._channel = self._redis.key("presence", "changes")
        self._touch = self._redis.script(_TOUCH)
        self._leave = self._redis.script(_LEAVE)
        self._expire = self._redis.script(_EXPIRE)
        self._states = self._redis.script(_STATES)

    async def touch(self, user: str, device: str, *, ttl_s: float, now_ms: int) -> bool:
        """Mark a device online until ``now + ttl``; True if the user was offline before.

        Raises ``InvalidRequest`` if ``ttl_s`` is not positive and finite,
        ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        expires_ms = now_ms + ttl_ms(ttl_s)
        shard = self._shard(user)
        keys = [self._index(shard), *self._user_keys(shard, user)]
        args = [*self._args(now_ms), user, device, expires_ms]
        came_online = await self._redis.run("touch", self._touch, keys, args)
        return bool(came_online)

    async def touch_many(
        self, devices: Sequence[tuple[str, str]], *, ttl_s: float, now_ms: int
    ) -> list[bool]:
        """:meth:`touch` for each ``(user, device)``: the scripts pipelined, up to
        ``_PIPELINED`` (1,000) per round trip (a heartbeat of 10,000 devices is 10 round trips, not
        10,000). Raises like :meth:`touch`, touching nothing on a bad ``ttl_s``."""
        expires_ms = now_ms + ttl_ms(ttl_s)
        client = await self._redis.ready()
        came_online: list[bool] = []
        for start in range(0, len(devices), _PIPELINED):
            with self._redis.errors("touch devices"):
                async with client.pipeline(transaction=False) as pipe:
                    for user, device in devices[start : start + _PIPELINED]:
                        shard = self._shard(user)
                        keys = [self._index(shard), *self._user_keys(shard, user)]
                        args = [*self._args(now_ms), user, device, expires_ms]
                        await self._redis.queue(pipe, self._touch, keys, args)
                    replies = await pipe.execute()
            came_online.extend(bool(reply) for reply in replies)
        return came_online

    async def leave(self, user: str, device: str, *, now_ms: int) -> bool:
        """Mark a device offline now; True if this took the user offline.

        Raises ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        shard = self._shard(user)
        keys = [self._index(shard), *self._user_keys(shard, user)]
        args = [*self._args(now_ms), user, device]
        went_offline = await self._redis.run("leave", self._leave, keys, args)
        return bool(went_offline)

    async def states(self, users: Sequence[str], *, now_ms: int) -> dict[str, PresenceState]:
        """Presence of many users at ``now_ms``: one script per shard, in one round trip.

        Unknown users are offline and never seen. Raises ``ChatcoreClosed`` after
        ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        client = await self._redis.ready()
        by_shard = self._by_shard(users)
        if not by_shard:
            return {}
        with self._redis.errors("read presence"):
            async with client.pipeline(transaction=False) as pipe:
                for shard, members in by_shard.items():
                    keys = [k for user in members for k in self._user_keys(shard, user)]
                    await self._redis.queue(pipe, self._states, keys, [now_ms])
                replies: list[list[int | bytes | None]] = await pipe.execute()
        found: dict[str, PresenceState] = {}
        for members, answer in zip(by_shard.values(), replies, strict=True):
            for user, live, seen in zip(members, answer[::2], answer[1::2], strict=True):
                last_seen = None if seen is None else int(seen)
                found[user] = PresenceState(user, bool(live), last_seen)
        return {user: found[user] for user in users}

    async def expire(self, *, now_ms: int) -> list[PresenceState]:
        """Drop expired devices; the users who went offline (sorted), also sent to ``changes()``.

        Each transition is reported by exactly one call, whichever process makes it.
        Raises ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        client = await self._redis.ready()
        gone: list[PresenceState] = []
        shards = list(range(self._shards))
        with self._redis.errors("expire presence"):
            while shards:
                async with client.pipeline(transaction=False) as pipe:
                    for shard in shards:
                        pipe.zrangebyscore(self._index(shard), "-inf", now_ms, 0, self._batch)
                    due: list[list[bytes]] = await pipe.execute()
                if any(due):
                    async with client.pipeline(transaction=False) as pipe:
                        for shard, batch in zip(shards, due, strict=True):
                            if batch:
                                await self._expire_shard(pipe, shard, batch, now_ms)
                        changes: list[list[bytes]] = await pipe.execute()
                    gone.extend(_decode_change(c) for batch in changes for c in batch)
                full = zip(shards, due, strict=True)
                shards = [shard for shard, batch in full if len(batch) == self._batch]
        return sorted(gone, key=lambda state: state.user)

    @asynccontextmanager
    async def changes(self) -> AsyncIterator[AsyncIterator[PresenceState]]:
        """Subscribe to online/offline transitions made by any process, from now on.

        The iterator ends when the store is closed. Raises ``ChatcoreClosed`` after
        ``aclose()``; entering and iterating raise ``Unavailable`` if Redis fails.
        """
        async with self._redis.subscribe(self._channel) as payloads:
            yield _Changes(payloads)

    async def _expire_shard(
        self, pipe: Pipeline, shard: int, users: list[bytes], now_ms: int
    ) -> None:
        names = [user.decode() for user in users]
        keys = [k for name in names for k in self._user_keys(shard, name)]
        args = [*self._args(now_ms), *names]
        await self._redis.queue(pipe, self._expire, [self._index(shard), *keys], args)

    def _shard(self, user: str) -> int:
        return zlib.crc32(user.encode()) % self._shards

    def _by_shard(self, users: Sequence[str]) -> dict[int, list[str]]:
        by_shard: dict[int, list[str]] = {}
        for user in dict.fromkeys(users):
            by_shard.setdefault(self._shard(user), []).append(user)
        return by_shard

    def _index(self, shard: int) -> str:
        return self._redis.key("presence", f"{{p:{shard}}}", "expiry")

    def _user_keys(self, shard: int, user: str) -> list[str]:
        tag = f"{{p:{shard}}}"
        return [
            self._redis.key("presence", tag, "devices", user),
            self._redis.key("presence", tag, "seen", user),
        ]

    def _args(self, now_ms: int) -> list[str | int]:
        return [now_ms, self._channel, self._seen_ttl]


class _Changes:
    """Transitions decoded from the channel (anything else published there is skipped)."""

    def __init__(self, payloads: AsyncIterator[bytes]) -> None:
        self._payloads = payloads

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> PresenceState:
        async for payload in self._payloads:
            try:
                return _decode_change(payload)
            except msgspec.DecodeError:
                continue
        raise StopAsyncIteration
