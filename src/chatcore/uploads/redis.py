"""``UploadLedger`` in Redis, shared by every process.

One hash per blob, ``uploads:{b:<blob>}``, maps each uploader to the msgpack
:class:`~chatcore.uploads.Upload`; :meth:`RedisUploadLedger.forget` deletes the hash.
A blob a message referenced has the key ``uploads-ref:{b:<blob>}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import msgspec

from chatcore._redis import DEFAULT_PREFIX, DEFAULT_TIMEOUT_S, RedisAdapter, RedisClient
from chatcore.uploads._base import Upload
from chatcore.uploads._rules import check_upload

__all__ = ["RedisUploadLedger"]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Upload).decode


class RedisUploadLedger(RedisAdapter):
    """Upload records in Redis (one hash per blob).

    ``redis`` is a URL (the ledger makes and closes its client) or a
    ``redis.asyncio.Redis`` client (borrowed); ``prefix`` starts every key.
    """

    def __init__(
        self,
        redis: str | RedisClient,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(redis, prefix=prefix, timeout_s=timeout_s)

    def _key(self, blob: str) -> str:
        return self._redis.key("uploads", f"{{b:{blob}}}")

    async def record(self, upload: Upload) -> None:
        """Raises ``InvalidRequest`` for a bad record, ``Unavailable`` if Redis fails."""
        check_upload(upload)
        client = await self._redis.ready()
        with self._redis.errors("record an upload"):
            await client.hset(self._key(upload.blob), upload.user, _encode(upload))

    async def get(self, user: str, blob: str) -> Upload | None:
        client = await self._redis.ready()
        with self._redis.errors("read an upload"):
            data = cast(bytes | None, await client.hget(self._key(blob), user))
        return None if data is None else _decode(data)

    async def forget(self, blob: str) -> int:
        client = await self._redis.ready()
        key = self._key(blob)
        with self._redis.errors("forget a blob's uploads"):
            async with client.pipeline(transaction=True) as pipe:
                pipe.hlen(key)
                pipe.delete(key)
                count, _ = await pipe.execute()
        return int(count)

    async def reference(self, blobs: Sequence[str]) -> None:
        client = await self._redis.ready()
        if not blobs:
            return
        with self._redis.errors("mark blobs referenced"):
            async with client.pipeline(transaction=False) as pipe:
                for blob in dict.fromkeys(blobs):
                    pipe.set(self._ref_key(blob), b"1")
                await pipe.execute()

    async def referenced(self, blobs: Sequence[str]) -> set[str]:
        client = await self._redis.ready()
        wanted = list(dict.fromkeys(blobs))
        if not wanted:
            return set()
        with self._redis.errors("read referenced blobs"):
            async with client.pipeline(transaction=False) as pipe:
                for blob in wanted:
                    pipe.exists(self._ref_key(blob))
                found = await pipe.execute()
        return {blob for blob, hit in zip(wanted, found, strict=True) if hit}

    def _ref_key(self, blob: str) -> str:
        return self._redis.key("uploads-ref", f"{{b:{blob}}}")
