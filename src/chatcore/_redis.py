"""What every Redis adapter shares: the client, the key prefix, error mapping, pub/sub.

An adapter is given either a URL (it then makes, owns and closes its client) or an
existing ``redis.asyncio.Redis`` client (borrowed: the caller closes it). Every key
and channel starts with the prefix (default ``"chatcore:"``); the keys of one user
or one chat share a hash tag such as ``{u:alice}`` so that the multi-key commands
and Lua scripts over them stay in one Redis Cluster slot (docs/redis.md has the
layout). Errors of redis-py never leak: they become :class:`~chatcore.errors.Unavailable`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any, Self

import anyio

from chatcore._extras import missing_extra
from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed, InvalidRequest, Unavailable

try:
    from redis.asyncio import Redis
    from redis.asyncio.client import Pipeline, PubSub
    from redis.commands.core import AsyncScript
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("redis", exc, needed_by="chatcore's Redis backends") from exc

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_TIMEOUT_S",
    "Pipeline",
    "Redis",
    "RedisAdapter",
    "RedisKeyspace",
]

DEFAULT_PREFIX = "chatcore:"
DEFAULT_TIMEOUT_S = 5.0
_FIRST_PAUSE_S = 0.05
_MAX_PAUSE_S = 1.0


class RedisKeyspace:
    """A redis-py client (owned when made from a URL), its key prefix and its subscriptions.

    ``timeout_s`` bounds connecting and each command of a client made from a URL, the
    wait for a subscription to be confirmed, and how long a subscription whose
    connection is lost keeps trying to reconnect. Raises ``InvalidRequest`` for a
    prefix holding ``{`` or ``}`` (it would become every key's hash tag), a timeout
    that is not positive, or a client that decodes responses.
    """

    def __init__(self, redis: str | Redis, *, prefix: str, timeout_s: float, adapter: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise InvalidRequest(f"a Redis key prefix may not hold '{{' or '}}': {prefix!r}")
        if not timeout_s > 0:
            raise InvalidRequest(f"timeout_s must be positive, got {timeout_s}")
        if isinstance(redis, str):
            self._client = Redis.from_url(
                redis, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )
            self._owned = True
        else:
            if redis.connection_pool.connection_kwargs.get("decode_responses"):
                raise InvalidRequest(f"{adapter} needs a Redis client with decode_responses=False")
            self._client = redis
            self._owned = False
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._adapter = adapter
        self._subscriptions: set[_Subscription] = set()
        self._closed = False

    @property
    def client(self) -> Redis:
        """The client; raises ``ChatcoreClosed`` after :meth:`aclose`."""
        if self._closed:
            raise ChatcoreClosed(f"{self._adapter} used after aclose()")
        return self._client

    def key(self, *parts: str) -> str:
        """The prefix followed by ``parts`` joined with ``:``."""
        return self.prefix + ":".join(parts)

    def script(self, source: str) -> AsyncScript:
        """A Lua script registered on the client (loaded on first use, by EVALSHA)."""
        return self._client.register_script(source)

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Map redis-py errors raised inside to ``Unavailable`` (``doing`` names the call)."""
        try:
            yield
        except RedisError as exc:
            raise Unavailable(f"{self._adapter}: redis failed to {doing}: {exc}") from exc

    async def run(
        self, doing: str, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        """Run one Lua script; raises ``ChatcoreClosed`` after close, ``Unavailable`` on failure."""
        client = self.client
        with self.errors(doing):
            return await script(keys=keys, args=args, client=client)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Receive what is published on ``channel`` from the time this has entered.

        The iterator ends when :meth:`aclose` is called. Raises ``ChatcoreClosed``
        after close and ``Unavailable`` if the subscription fails or is not confirmed
        within ``timeout_s``. The iterator reopens a lost connection and subscribes
        again (what was published meanwhile is lost); it raises ``Unavailable`` if
        that keeps failing for ``timeout_s``.
        """
        pubsub = self.client.pubsub()
        subscription = _Subscription(pubsub, adapter=self._adapter, timeout_s=self.timeout_s)
        try:
            with self.errors(f"subscribe to {channel!r}"):
                await pubsub.subscribe(channel)
                with anyio.fail_after(self.timeout_s):
                    await pubsub.get_message(timeout=None)
        except TimeoutError as exc:
            await subscription.aclose()
            raise Unavailable(f"{self._adapter}: subscribing to {channel!r} timed out") from exc
        except BaseException:
            await subscription.aclose()
            raise
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            await subscription.aclose()

    async def aclose(self) -> None:
        """End every subscription; close the client if it is owned. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.end()
        if self._owned:
            with anyio.CancelScope(shield=True), suppress(RedisError, OSError):
                await self._client.aclose()


class _Subscription:
    """The messages of one pub/sub connection as an async iterator of payload bytes.

    A lost connection is reopened (redis-py resubscribes on connect), retrying with
    a growing pause for up to ``timeout_s``; what was published meanwhile is lost.
    """

    def __init__(self, pubsub: PubSub, *, adapter: str, timeout_s: float) -> None:
        self._pubsub = pubsub
        self._adapter = adapter
        self._timeout_s = timeout_s
        self._ended = False
        self._waiting: anyio.CancelScope | None = None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        lost_at: float | None = None
        pause = _FIRST_PAUSE_S
        while not self._ended:
            message: dict[str, Any] | None = None
            with anyio.CancelScope() as scope:
                self._waiting = scope
                try:
                    message = await self._pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=None
                    )
                except RedisError as exc:
                    if self.ended():
                        break
                    now = anyio.current_time()
                    lost_at = now if lost_at is None else lost_at
                    if now - lost_at >= self._timeout_s:
                        raise Unavailable(f"{self._adapter}: subscription lost: {exc}") from exc
                    await anyio.sleep(pause)
                    pause = min(2 * pause, _MAX_PAUSE_S)
                    continue
                finally:
                    self._waiting = None
            lost_at, pause = None, _FIRST_PAUSE_S
            if message is not None and message["type"] == "message":
                data: bytes = message["data"]
                return data
        raise StopAsyncIteration

    def ended(self) -> bool:
        """Whether :meth:`end` was called (a method, so that type checkers do not narrow it)."""
        return self._ended

    def end(self) -> None:
        """Make the iterator stop, now if it is waiting."""
        self._ended = True
        if self._waiting is not None:
            self._waiting.cancel()

    async def aclose(self) -> None:
        self.end()
        with anyio.CancelScope(shield=True), suppress(RedisError, OSError):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]


class RedisAdapter(ClosingContext):
    """Base of the Redis adapters: an async context manager over one :class:`RedisKeyspace`."""

    def __init__(self, redis: str | Redis, *, prefix: str, timeout_s: float) -> None:
        self._redis = RedisKeyspace(
            redis, prefix=prefix, timeout_s=timeout_s, adapter=type(self).__name__
        )

    async def aclose(self) -> None:
        """End open subscriptions and close the client if made from a URL. Idempotent."""
        await self._redis.aclose()
