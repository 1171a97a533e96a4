"""Redis ``HotCache``: the last ``per_chat`` messages of each chat, shared by every process.

Per chat, in one slot (hash tag ``{c:<chat>}``): a list ``cache:{c:<chat>}:messages``
of encoded :class:`~chatcore.model.StoredMessage`, ascending and contiguous by seq,
and a string ``cache:{c:<chat>}:top`` holding the seq of its last element. One Lua
script applies a push atomically by exactly the rule of :mod:`chatcore.cache.memory`
(append what follows the newest, restart past a gap, fill back while there is room,
ignore what is held or older), so concurrent writers cannot break contiguity.
A chat not pushed to for ``idle_ttl_s`` expires by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import msgspec

from chatcore._redis import DEFAULT_PREFIX, DEFAULT_TIMEOUT_S, RedisAdapter, RedisClient
from chatcore.cache._rules import DEFAULT_PER_CHAT, check_per_chat
from chatcore.errors import InvalidRequest
from chatcore.model import StoredMessage

__all__ = ["RedisHotCache"]

# KEYS: 1 the chat's message list, 2 the seq of its last element.
# ARGV: 1 per_chat, 2 idle TTL in ms ("0": none), then seq, message pairs (distinct seqs).
_PUSH = """
local per_chat = tonumber(ARGV[1])
local pushed, n, low, high = {}, 0, nil, nil
for i = 3, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  pushed[seq] = ARGV[i + 1]
  n = n + 1
  if low == nil or seq < low then low = seq end
  if high == nil or seq > high then high = seq end
end
if n == 0 then return 0 end
local len = redis.call('LLEN', KEYS[1])
local top = tonumber(redis.call('GET', KEYS[2]) or '0')
if len == 0 or top == 0 then len, top = 0, 0 end
if len > 0 and low == top + 1 and high - low + 1 == n then
  for seq = math.max(low, high - per_chat + 1), high do
    redis.call('RPUSH', KEYS[1], pushed[seq])
  end
  redis.call('LTRIM', KEYS[1], -per_chat, -1)
  redis.call('SET', KEYS[2], string.format('%d', high))
else
  local bottom = top - len + 1
  local cached = {}
  if len > 0 then cached = redis.call('LRANGE', KEYS[1], 0, -1) end
  local run, seq = {}, math.max(top, high)
  while #run < per_chat do
    local message = pushed[seq]
    if seq >= bottom and seq <= top then message = cached[seq - bottom + 1] end
    if message == nil then break end
    run[#run + 1] = message
    seq = seq - 1
  end
  if math.max(top, high) == top and #run == len then return 0 end
  redis.call('DEL', KEYS[1])
  for i = #run, 1, -1 do redis.call('RPUSH', KEYS[1], run[i]) end
  redis.call('SET', KEYS[2], string.format('%d', math.max(top, high)))
end
if ARGV[2] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
"""

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(StoredMessage).decode


class RedisHotCache(RedisAdapter):
    """The last ``per_chat`` messages of each chat in Redis, contiguous by seq.

    ``redis`` is a URL (the cache makes and closes its client) or a
    ``redis.asyncio.Redis`` client (borrowed). Options:

    - ``per_chat`` (100): messages kept per chat, unless ``push`` says otherwise.
    - ``idle_ttl_s`` (86 400, a day; ``None``: never): a chat not pushed to for this
      long is dropped, so memory follows the active chats (reads fall back to the store).
    - ``prefix`` (``"chatcore:"``) starts every key; ``timeout_s`` (5.0): see
      :class:`chatcore._redis.RedisKeyspace`.

    Raises ``InvalidRequest`` for an option out of range.
    """

    def __init__(
        self,
        redis: str | RedisClient,
        *,
        per_chat: int = DEFAULT_PER_CHAT,
        idle_ttl_s: float | None = 86_400.0,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        check_per_chat(per_chat)
        if idle_ttl_s is not None and not idle_ttl_s > 0:
            raise InvalidRequest(f"idle_ttl_s must be positive or None, got {idle_ttl_s}")
        super().__init__(redis, prefix=prefix, timeout_s=timeout_s)
        self._per_chat = per_chat
        self._idle_ttl = "0" if idle_ttl_s is None else str(max(1, round(idle_ttl_s * 1000)))
        self._push = self._redis.script(_PUSH)

    async def push(self, messages: Sequence[StoredMessage], *, per_chat: int | None = None) -> None:
        """Add messages by the rules of :mod:`chatcore.cache.memory`, one round trip per call,
        keeping ``per_chat`` (or the cache's own ``per_chat``) per chat.

        Raises ``ChatcoreClosed`` after ``aclose()``, ``Unavailable`` if Redis fails and
        ``InvalidRequest`` if ``per_chat`` < 1.
        """
        keep = self._per_chat if per_chat is None else check_per_chat(per_chat)
        by_chat: dict[str, dict[int, StoredMessage]] = {}
        for message in messages:
            by_chat.setdefault(message.chat_id, {}).setdefault(message.seq, message)
        client = await self._redis.ready()
        if not by_chat:
            return
        with self._redis.errors("push to the hot cache"):
            async with client.pipeline(transaction=False) as pipe:
                for chat_id, pushed in by_chat.items():
                    args: list[int | str | bytes] = [keep, self._idle_ttl]
                    for seq in sorted(pushed):
                        args += [seq, _encode(pushed[seq])]
                    await self._redis.queue(pipe, self._push, self._keys(chat_id), args)
                await pipe.execute()

    async def recent(self, chat_id: str) -> list[StoredMessage]:
        """The cached messages of a chat ascending by seq (contiguous, possibly empty).

        Raises ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if Redis fails.
        """
        client = await self._redis.ready()
        with self._redis.errors("read the hot cache"):
            encoded = cast(list[bytes], await client.lrange(self._keys(chat_id)[0], 0, -1))
        return [_decode(e) for e in encoded]

    def _keys(self, chat_id: str) -> list[str]:
        tag = f"{{c:{chat_id}}}"
        return [self._redis.key("cache", tag, "messages"), self._redis.key("cache", tag, "top")]
