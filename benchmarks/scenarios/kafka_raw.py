"""aiokafka's raw produce rate on the broker chatcore uses, with chatcore's producer settings.

``python -m benchmarks.scenarios.kafka_raw BOOTSTRAP TOPIC COUNT SIZE`` creates the
topic, produces COUNT records of SIZE bytes twice (pipelined: every send in flight
at once; sequential: each send awaited, as one chatcore ``send`` awaits its append),
deletes the topic and prints the rates as JSON. Producer: idempotent, ``acks=all``,
``linger_ms=0``, like :class:`chatcore.log.kafka.KafkaLog`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

__all__ = ["measure"]

_PARTITIONS = 4


async def measure(bootstrap: str, topic: str, count: int, size: int) -> dict[str, float]:
    """Records per second produced pipelined and one at a time."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin: Any = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, _PARTITIONS, 1)])
        producer: Any = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=0
        )
        await producer.start()
        try:
            value = b"x" * size
            await producer.send_and_wait(topic, value, key=b"warm-up")
            started = time.perf_counter()
            futures = [
                await producer.send(topic, value, key=str(i % 64).encode()) for i in range(count)
            ]
            await asyncio.gather(*futures)
            pipelined = count / (time.perf_counter() - started)
            one_by_one = max(1, count // 10)
            started = time.perf_counter()
            for i in range(one_by_one):
                await producer.send_and_wait(topic, value, key=str(i % 64).encode())
            sequential = one_by_one / (time.perf_counter() - started)
        finally:
            await producer.stop()
        await admin.delete_topics([topic])
    finally:
        await admin.close()
    return {"pipelined_per_s": pipelined, "sequential_per_s": sequential}


if __name__ == "__main__":
    bootstrap, topic, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(asyncio.run(measure(bootstrap, topic, count, size))))
