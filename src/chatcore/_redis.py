"""What every Redis adapter shares: the client, the key prefix, error mapping, pub/sub.

An adapter is given either a URL (it then makes, owns and closes its client) or an
existing ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster`` client
(borrowed: the caller closes it). A ``redis+cluster://host:port[,host:port...]`` URL
(``rediss+cluster://`` with TLS) makes a cluster client seeded by those nodes (see
:func:`make_client`). Every key and channel starts with the prefix (default
``"chatcore:"``); the keys of one user or one chat share a hash tag such as
``{u:alice}`` so that the multi-key commands and Lua scripts over them stay in one
Redis Cluster slot (docs/redis.md has the layout). On a cluster, pub/sub is sharded
(``SPUBLISH``/``SSUBSCRIBE``): a channel lives on the primary of its slot instead of
being broadcast to every node. Errors of redis-py never leak: they become
:class:`~chatcore.errors.Unavailable`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any, Self, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import anyio

from chatcore._extras import missing_extra
from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed, InvalidRequest, Unavailable

try:
    from redis.asyncio import Redis
    from redis.asyncio.client import Pipeline as _Pipeline
    from redis.asyncio.client import PubSub
    from redis.asyncio.cluster import ClusterNode, ClusterPipeline, ClusterPubSub, RedisCluster
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
    "RedisClient",
    "RedisCluster",
    "RedisKeyspace",
    "make_client",
]

RedisClient: TypeAlias = Redis | RedisCluster
"""What an adapter accepts besides a URL: one server, or a Redis Cluster."""
Pipeline: TypeAlias = _Pipeline | ClusterPipeline
"""A pipeline of either client."""

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def make_client(url: str, *, timeout_s: float) -> RedisClient:
    """A client for ``url``: ``redis://``/``rediss://``/``unix://`` give one server's
    client, ``redis+cluster://host:port[,host:port...]`` (or ``rediss+cluster://``) a
    ``RedisCluster`` that discovers the cluster from those seed nodes.

    ``timeout_s`` bounds connecting and each command. Raises ``InvalidRequest`` for a
    cluster URL without a host, with a bad port, or naming a database other than 0
    (a cluster has only database 0).
    """
    parts = urlsplit(url)
    scheme = _CLUSTER_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        return Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    if parts.path.strip("/") not in ("", "0"):
        raise InvalidRequest(f"a Redis Cluster has only database 0, not {parts.path!r}: {url!r}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    seeds: list[tuple[str, int]] = []
    for address in hosts.split(","):
        host, _, port = address.strip().rpartition(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            host, port = address.strip(), "6379"
        host = host.strip("[]")
        if not host:
            raise InvalidRequest(f"a Redis Cluster URL needs host:port seed nodes: {url!r}")
        seeds.append((host, int(port)))
    first = (
        f"{userinfo}@{seeds[0][0]}:{seeds[0][1]}" if userinfo else f"{seeds[0][0]}:{seeds[0][1]}"
    )
    single = urlunsplit((scheme, first, "", parts.query, ""))
    return RedisCluster.from_url(
        single,
        startup_nodes=[ClusterNode(host, port) for host, port in seeds],
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )


def _decodes(client: RedisClient) -> bool:
    if isinstance(client, RedisCluster):
        return bool(client.get_connection_kwargs().get("decode_responses"))
    return bool(client.connection_pool.connection_kwargs.get("decode_responses"))


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
    that is not positive, a bad cluster URL, or a client that decodes responses.
    """

    def __init__(
        self, redis: str | RedisClient, *, prefix: str, timeout_s: float, adapter: str
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise InvalidRequest(f"a Redis key prefix may not hold '{{' or '}}': {prefix!r}")
        if not timeout_s > 0:
            raise InvalidRequest(f"timeout_s must be positive, got {timeout_s}")
        self._client: RedisClient
        if isinstance(redis, str):
            self._client = make_client(redis, timeout_s=timeout_s)
            self._owned = True
        else:
            if _decodes(redis):
                raise InvalidRequest(f"{adapter} needs a Redis client with decode_responses=False")
            self._client = redis
            self._owned = False
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._adapter = adapter
        self._subscriptions: set[_Subscription] = set()
        self._closed = False

    @property
    def clustered(self) -> bool:
        """Whether the client is a Redis Cluster client (pub/sub is then sharded)."""
        return isinstance(self._client, RedisCluster)

    @property
    def client(self) -> RedisClient:
        """The client; raises ``ChatcoreClosed`` after :meth:`aclose`."""
        if self._closed:
            raise ChatcoreClosed(f"{self._adapter} used after aclose()")
        return self._client

    async def ready(self) -> RedisClient:
        """The client, a cluster one with its slot map loaded; raises ``ChatcoreClosed``
        after :meth:`aclose` and ``Unavailable`` if the cluster cannot be reached.

        A cluster client loads its slot map on first use; loading it here, before any
        command, also keeps concurrent first commands from racing each other in
        redis-py's lazy initialisation (seen with redis-py 8.1: they fail with an
        ``AttributeError`` from a half-made connection).
        """
        client = self.client
        if isinstance(client, RedisCluster):
            with self.errors("load the cluster's slot map"):
                await client.initialize()
        return client

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

    async def publish(self, channel: str, payload: bytes) -> None:
        """``PUBLISH``, or ``SPUBLISH`` on a cluster (for channels read with
        ``subscribe(channel, sharded=True)``); raises like :meth:`run`."""
        client = await self.ready()
        with self.errors(f"publish to {channel!r}"):
            if isinstance(client, RedisCluster):
                await client.spublish(channel, payload)
            else:
                await client.publish(channel, payload)

    def pipe_publish(self, pipe: Any, channel: str, payload: bytes) -> None:
        """Queue a publish on ``pipe`` (a pipeline of :attr:`client`), sharded on a cluster."""
        if self.clustered:
            pipe.spublish(channel, payload)
        else:
            pipe.publish(channel, payload)

    async def run(
        self, doing: str, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        """Run one Lua script; raises ``ChatcoreClosed`` after close, ``Unavailable`` on failure."""
        client = await self.ready()
        with self.errors(doing):
            return await script(keys=keys, args=args, client=client)

    async def queue(
        self, pipe: Any, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]
    ) -> None:
        """Queue one run of ``script`` on ``pipe`` (a pipeline of :attr:`client`).

        A cluster pipeline refuses ``EVALSHA`` (it cannot load a missing script on
        the right node mid-pipeline), so there the script goes as ``EVAL`` with its
        source; the server caches it by hash all the same.
        """
        if self.clustered:
            pipe.eval(script.script, len(keys), *keys, *args)
        else:
            await script(keys=keys, args=args, client=pipe)

    @asynccontextmanager
    async def subscribe(
        self, channel: str, *, sharded: bool = False
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Receive what is published on ``channel`` from the time this has entered.

        ``sharded`` (on a cluster only): ``SSUBSCRIBE`` on the primary of the
        channel's slot, for what :meth:`publish` sends with ``SPUBLISH``; otherwise
        a classic ``SUBSCRIBE`` (on a cluster, it receives the ``PUBLISH`` of any node).

        The iterator ends when :meth:`aclose` is called. Raises ``ChatcoreClosed``
        after close and ``Unavailable`` if the subscription fails or is not confirmed
        within ``timeout_s``. The iterator reopens a lost connection and subscribes
        again (what was published meanwhile is lost); it raises ``Unavailable`` if
        that keeps failing for ``timeout_s``.
        """
        client = await self.ready()
        pubsub = client.pubsub()
        subscription = _Subscription(pubsub, adapter=self._adapter, timeout_s=self.timeout_s)
        try:
            with self.errors(f"subscribe to {channel!r}"):
                if sharded and isinstance(pubsub, ClusterPubSub):
                    subscription.sharded = True
                    await pubsub.ssubscribe(channel)
                    with anyio.fail_after(self.timeout_s):
                        await _sharded_message(pubsub, ignore_subscribe_messages=False)
                else:
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


async def _sharded_message(
    pubsub: ClusterPubSub, *, ignore_subscribe_messages: bool
) -> dict[str, Any] | None:
    """The next message of a sharded subscription, waiting as long as it takes (a
    ``None`` timeout blocks, as for ``PubSub.get_message``; redis-py types it float)."""
    forever: Any = None
    message: dict[str, Any] | None = await pubsub.get_sharded_message(
        ignore_subscribe_messages=ignore_subscribe_messages, timeout=forever
    )
    return message


class _Subscription:
    """The messages of one pub/sub connection as an async iterator of payload bytes.

    A lost connection is reopened (redis-py resubscribes on connect), retrying with
    a growing pause for up to ``timeout_s``; what was published meanwhile is lost.
    A cluster's ``ClusterPubSub`` is read with ``get_sharded_message`` (the channel
    was subscribed with ``SSUBSCRIBE``).
    """

    def __init__(self, pubsub: PubSub | ClusterPubSub, *, adapter: str, timeout_s: float) -> None:
        self._pubsub = pubsub
        self._adapter = adapter
        self._timeout_s = timeout_s
        self.sharded = False
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
                    if self.sharded and isinstance(self._pubsub, ClusterPubSub):
                        message = await _sharded_message(
                            self._pubsub, ignore_subscribe_messages=True
                        )
                    else:
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
            if message is not None and message["type"] in (
                b"message",
                "message",
                b"smessage",
                "smessage",
            ):
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
            await self._pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]


class RedisAdapter(ClosingContext):
    """Base of the Redis adapters: an async context manager over one :class:`RedisKeyspace`."""

    def __init__(self, redis: str | RedisClient, *, prefix: str, timeout_s: float) -> None:
        self._redis = RedisKeyspace(
            redis, prefix=prefix, timeout_s=timeout_s, adapter=type(self).__name__
        )

    async def aclose(self) -> None:
        """End open subscriptions and close the client if made from a URL. Idempotent."""
        await self._redis.aclose()
