"""Redis ``OfflineIndex``: what each user missed, per chat, shared by every process.

Per user, one hash ``offline:{u:<user>}`` maps each chat id to ``count|a-b,c-d``:
how many distinct seqs were missed and the runs of consecutive seqs they form
(usually one run: a user offline misses every message of a chat). A Lua script adds
a seq atomically and only if no run holds it yet, so a redelivered seq is never
counted twice and seqs may arrive in any order, exactly like the memory backend.
A chat whose runs pass ``max_runs`` merges its two oldest runs: a seq later added in
the hole between them is then taken as already counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from chatcore._redis import DEFAULT_PREFIX, DEFAULT_TIMEOUT_S, RedisAdapter, RedisClient
from chatcore.errors import InvalidRequest
from chatcore.offline._base import PendingChat

__all__ = ["RedisOfflineIndex"]

# KEYS: 1 the user's hash. ARGV: 1 chat id, 2 seq, 3 max runs, 4 TTL in ms ("0": none).
# Returns 1 if the seq was new.
_ADD = """
local seq = tonumber(ARGV[2])
local count, runs = 0, {}
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value then
  local head, body = string.match(value, '^(%d+)|(.*)$')
  count = tonumber(head)
  for a, b in string.gmatch(body, '(%d+)-(%d+)') do
    local first, last = tonumber(a), tonumber(b)
    if seq >= first and seq <= last then return 0 end
    runs[#runs + 1] = {first, last}
  end
end
runs[#runs + 1] = {seq, seq}
table.sort(runs, function(x, y) return x[1] < y[1] end)
local merged = {}
for _, run in ipairs(runs) do
  local prev = merged[#merged]
  if prev and prev[2] + 1 >= run[1] then
    if run[2] > prev[2] then prev[2] = run[2] end
  else
    merged[#merged + 1] = {run[1], run[2]}
  end
end
while #merged > tonumber(ARGV[3]) do
  merged[1][2] = merged[2][2]
  table.remove(merged, 2)
end
local parts = {}
for i, run in ipairs(merged) do
  parts[i] = string.format('%d-%d', run[1], run[2])
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d|', count + 1) .. table.concat(parts, ','))
if ARGV[4] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
"""


class RedisOfflineIndex(RedisAdapter):
    """The seqs each user missed, per chat, in Redis (one hash per user).

    ``redis`` is a URL (the index makes and closes its client) or a
    ``redis.asyncio.Redis`` client (borrowed). Options:

    - ``max_runs`` (64): runs of consecutive seqs kept per (user, chat), see above.
    - ``ttl_s`` (``None``: until cleared): a user's entries expire this long after
      the last ``add`` for them.
    - ``prefix`` (``"chatcore:"``) starts every key; ``timeout_s`` (5.0): see
      :class:`chatcore._redis.RedisKeyspace`.

    Raises ``InvalidRequest`` for an option out of range.
    """

    def __init__(
        self,
        redis: str | RedisClient,
        *,
        max_runs: int = 64,
        ttl_s: float | None = None,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if max_runs < 1:
            raise InvalidRequest(f"max_runs must be at least 1, got {max_runs}")
        if ttl_s is not None and not ttl_s > 0:
            raise InvalidRequest(f"ttl_s must be positive or None, got {ttl_s}")
        super().__init__(redis, prefix=prefix, timeout_s=timeout_s)
        self._max_runs = max_runs
        self._ttl = "0" if ttl_s is None else str(max(1, round(ttl_s * 1000)))
        self._add = self._redis.script(_ADD)

    async def add(self, users: Sequence[str], chat_id: str, seq: int) -> None:
        """Note that ``users`` missed message ``seq`` of a chat (idempotent per seq).

        One pipelined round trip for all users. Raises ``InvalidRequest`` if ``seq`` is
        below 1, ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        if seq < 1:
            raise InvalidRequest(f"seq starts at 1, got {seq}")
        client = await self._redis.ready()
        if not users:
            return
        with self._redis.errors("add to the offline index"):
            async with client.pipeline(transaction=False) as pipe:
                for user in dict.fromkeys(users):
                    args: list[str | int] = [chat_id, seq, self._max_runs, self._ttl]
                    await self._redis.queue(pipe, self._add, [self._key(user)], args)
                await pipe.execute()

    async def pending(self, user: str) -> list[PendingChat]:
        """What ``user`` missed, per chat, ordered by ``chat_id``.

        Raises ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        client = await self._redis.ready()
        with self._redis.errors("read the offline index"):
            entries = cast(dict[bytes, bytes], await client.hgetall(self._key(user)))
        return sorted(
            (_pending(chat_id.decode(), value.decode()) for chat_id, value in entries.items()),
            key=lambda chat: chat.chat_id,
        )

    async def clear(self, user: str, chat_ids: Sequence[str] | None = None) -> None:
        """Forget what ``user`` missed in ``chat_ids`` (``None``: all); unknown ones are fine.

        Raises ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        client = await self._redis.ready()
        if chat_ids is not None and not chat_ids:
            return
        with self._redis.errors("clear the offline index"):
            if chat_ids is None:
                await client.delete(self._key(user))
            else:
                await client.hdel(self._key(user), *chat_ids)

    def _key(self, user: str) -> str:
        return self._redis.key("offline", f"{{u:{user}}}")


def _pending(chat_id: str, value: str) -> PendingChat:
    count, _, runs = value.partition("|")
    first = runs.split(",", 1)[0].split("-")[0]
    last = runs.rsplit(",", 1)[-1].split("-")[1]
    return PendingChat(chat_id, int(first), int(last), int(count))
