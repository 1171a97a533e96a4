"""What a KafkaLog and its consumers share: one cluster as this log sees it.

:class:`KafkaCluster` holds the clients and their options, the names a log's groups
and transactional ids get, the topics described so far, the offsets its own
transactions committed, and whether the log is closed. ``KafkaLog`` and
``KafkaLogConsumer`` both depend on it, never on each other's internals.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import anyio

from chatcore.errors import ChatcoreClosed, ChatcoreError, InvalidRequest, NotFound
from chatcore.log._base import OutRecord
from chatcore.log._kafka_client import (
    ConfigResource,
    ConfigResourceType,
    KafkaClients,
    Placed,
    TopicMeta,
    TopicPartition,
    kafka_errors,
    logger,
    mapped,
    partition_for,
)

__all__ = ["KafkaCluster"]

_SETTLED_GROUP_STATES = frozenset({"Stable", "Empty", "Dead"})


class KafkaCluster:
    """The state a log and its consumers share; closed once, by the log.

    ``timeout_s`` bounds every call; ``rebalance_timeout_s`` how long a member waits
    for a rebalance; ``handoff_timeout_s`` how long a leaving member waits for its
    group to settle. The client option dicts are :class:`KafkaClients`'.
    """

    def __init__(
        self,
        *,
        client_options: dict[str, Any],
        group_options: dict[str, Any],
        producer_options: dict[str, Any],
        transaction_options: dict[str, Any],
        group_prefix: str,
        transactional_id_prefix: str,
        timeout_s: float,
        rebalance_timeout_s: float,
        handoff_timeout_s: float,
    ) -> None:
        self.timeout_s = timeout_s
        self.rebalance_timeout_s = rebalance_timeout_s
        self.clients = KafkaClients(
            client_options=client_options,
            group_options=group_options,
            producer_options=producer_options,
            transaction_options=transaction_options,
            timeout_s=timeout_s,
            check_open=self.check_open,
        )
        self._group_prefix = group_prefix
        self._transactional_id_prefix = transactional_id_prefix
        self._handoff_timeout_s = handoff_timeout_s
        self._meta: dict[str, TopicMeta] = {}
        self._closers: set[Callable[[], Awaitable[None]]] = set()
        # Offsets our transactions committed that the group may not show yet: the
        # broker applies them when the commit markers land, just after EndTxn.
        self._unseen_offsets: dict[tuple[str, str, int], int] = {}
        self._closed = False

    # -- life -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def check_open(self) -> None:
        """Raise :class:`~chatcore.errors.ChatcoreClosed` once the log is closed."""
        if self._closed:
            raise ChatcoreClosed("the log is closed")

    def track(self, close: Callable[[], Awaitable[None]]) -> None:
        """Call ``close`` when the cluster closes (a consumer leaving without handoff)."""
        self._closers.add(close)

    def untrack(self, close: Callable[[], Awaitable[None]]) -> None:
        self._closers.discard(close)

    async def aclose(self) -> None:
        """Close every tracked consumer, then the clients. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for close in list(self._closers):
            await close()
        await self.clients.aclose()

    # -- names ------------------------------------------------------------------------

    def group_id(self, group: str) -> str:
        return f"{self._group_prefix}{group}"

    def transactional_id(self, group: str, topic: str, partition: int) -> str:
        return f"{self._transactional_id_prefix}{self.group_id(group)}-{topic}-{partition}"

    # -- topics -----------------------------------------------------------------------

    async def topic(self, topic: str, *, refresh: bool = False) -> TopicMeta:
        """``topic``'s partition count and policy (described once, unless ``refresh``).

        Raises NotFound, Unavailable, ChatcoreClosed.
        """
        self.check_open()
        meta = None if refresh else self._meta.get(topic)
        if meta is None:
            meta = self._meta[topic] = await self._describe(topic)
        return meta

    def created(self, topic: str, meta: TopicMeta) -> None:
        """Remember a topic this log just created."""
        self._meta[topic] = meta

    async def _describe(self, topic: str) -> TopicMeta:
        # DescribeConfigs first: unlike aiokafka's metadata requests it can never make
        # a broker with auto.create.topics.enable create the topic we ask about.
        admin = await self.clients.admin()
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"cleanup.policy": None})
        with mapped(f"describe topic {topic!r}"), anyio.fail_after(self.timeout_s):
            (configs,) = await admin.describe_configs([resource])
            (found,) = configs.to_object()["resources"]
            error = kafka_errors.for_code(found["error_code"])
            if error in (kafka_errors.UnknownTopicOrPartitionError, kafka_errors.InvalidTopicError):
                raise NotFound(f"no topic {topic!r}; create it with create_topic()")
            if error is not kafka_errors.NoError:
                raise error(found["error_message"])
            policy = next(
                (
                    str(e["config_value"])
                    for e in found["config_entries"]
                    if e["config_names"] == "cleanup.policy"
                ),
                "delete",
            )
            (info,) = await admin.describe_topics([topic])
        if info["error_code"] != 0 or not info["partitions"]:
            raise NotFound(f"no topic {topic!r}; create it with create_topic()")
        return TopicMeta(len(info["partitions"]), "compact" in policy.split(","))

    async def placed(self, records: Sequence[OutRecord]) -> list[Placed]:
        """Records with their partitions chosen (murmur2 of the key when not given)."""
        placed = []
        for r in records:
            meta = await self.topic(r.topic)
            key = r.key.encode()
            p = partition_for(key, meta.partitions) if r.partition is None else r.partition
            if not 0 <= p < meta.partitions:
                raise InvalidRequest(f"topic {r.topic!r} has no partition {p}")
            value = None if meta.compacted and not r.value else r.value
            placed.append(Placed(r.topic, p, key, value))
        return placed

    # -- group offsets ----------------------------------------------------------------

    async def group_offsets(
        self, group_id: str, topic: str, partitions: Iterable[int]
    ) -> dict[int, int]:
        """Committed offsets, including those of this log's own finished transactions."""
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return {}
        admin = await self.clients.admin()
        with mapped(f"offsets of group {group_id!r}"), anyio.fail_after(self.timeout_s):
            while True:
                found = await admin.list_consumer_group_offsets(group_id, partitions=tps)
                offsets = {tp.partition: int(found[tp].offset) if tp in found else -1 for tp in tps}
                behind = False
                for p, offset in offsets.items():
                    key = (group_id, topic, p)
                    if offset < self._unseen_offsets.get(key, -1):
                        behind = True
                    else:
                        self._unseen_offsets.pop(key, None)
                if not behind:
                    return {p: max(offset, 0) for p, offset in offsets.items()}
                await anyio.sleep(0.01)

    def committed_by_transaction(
        self, group_id: str, topic: str, offsets: Mapping[int, int]
    ) -> None:
        """Note offsets a transaction committed: reads wait until the group shows them."""
        for p, offset in offsets.items():
            self._unseen_offsets[(group_id, topic, p)] = offset

    def committed_directly(self, group_id: str, topic: str, partitions: Iterable[int]) -> None:
        """Note a plain offset commit: it supersedes any transaction's offsets."""
        for p in partitions:
            self._unseen_offsets.pop((group_id, topic, p), None)

    async def await_handoff(self, group_id: str) -> None:
        """Wait until ``group_id`` has settled after a member left (best effort, bounded
        by the session timeout so a shutdown never hangs on a group that is rejoining)."""
        with anyio.move_on_after(self._handoff_timeout_s):
            try:
                admin = await self.clients.admin()
                while True:
                    (response,) = await admin.describe_consumer_groups([group_id])
                    (group,) = response.to_object()["groups"]
                    if group["state"] in _SETTLED_GROUP_STATES:
                        return
                    await anyio.sleep(0.05)
            except (ChatcoreError, kafka_errors.KafkaError, OSError):
                logger.debug("could not watch group %r settle", group_id, exc_info=True)
