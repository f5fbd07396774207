"""aiokafka helpers for integration tests: topics, a producer, bounded reads.

Every wait here has a deadline, so a broker that stops answering fails a test
with a message instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

# aiokafka ships no type information; its classes are Any to mypy (see the
# override in pyproject.toml).
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    TopicPartition,
)
from aiokafka.admin import (
    AIOKafkaAdminClient,
    NewTopic,
)

__all__ = [
    "AIOKafkaConsumer",
    "AIOKafkaProducer",
    "TopicPartition",
    "consume_records",
    "create_topics",
    "delete_topics",
    "describe_partitions",
    "kafka_producer",
    "read_topic",
]

logger = logging.getLogger(__name__)

# Generous for one broker on loopback; a broker under CI load can take seconds
# to elect leaders for new partitions.
ADMIN_TIMEOUT_S = 30.0
CLIENT_START_TIMEOUT_S = 20.0
DEFAULT_READ_TIMEOUT_S = 30.0
# One fetch waits at most this long, so deadlines are checked often.
POLL_MS = 250

Record = Any  # aiokafka.structs.ConsumerRecord[bytes, bytes]


@asynccontextmanager
async def admin_client(bootstrap: str) -> AsyncIterator[Any]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(ADMIN_TIMEOUT_S * 1000)
    )
    async with asyncio.timeout(CLIENT_START_TIMEOUT_S):
        await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def describe_partitions(bootstrap: str, topics: Iterable[str]) -> dict[str, int]:
    """Partition count of each topic that exists with a leader for every partition.

    Topics that are missing, or still electing leaders, are left out.
    """
    names = list(topics)
    async with admin_client(bootstrap) as admin:
        described = await admin.describe_topics(names)
    counts = {}
    for topic in described:
        partitions = topic["partitions"]
        if topic["error_code"] == 0 and all(p["leader"] >= 0 for p in partitions):
            counts[topic["topic"]] = len(partitions)
    return counts


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    *,
    partitions: int = 1,
    timeout_s: float = ADMIN_TIMEOUT_S,
) -> None:
    """Create topics and return once every partition of each has a leader."""
    wanted = list(names)
    deadline = time.monotonic() + timeout_s
    async with admin_client(bootstrap) as admin:
        response = await admin.create_topics(
            [NewTopic(name, partitions, 1) for name in wanted],
            timeout_ms=int(timeout_s * 1000),
        )
    failures = [
        f"{error[0]}: error {error[1]} {error[2] if len(error) > 2 else ''}"
        for error in response.topic_errors
        if error[1] != 0
    ]
    if failures:
        raise RuntimeError("cannot create topics: " + "; ".join(failures))

    # CreateTopics returns when the controller has accepted the topics; clients
    # only see them once the broker's metadata has caught up.
    while True:
        ready = await describe_partitions(bootstrap, wanted)
        if all(ready.get(name) == partitions for name in wanted):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"topics not ready within {timeout_s:g}s: "
                f"wanted {partitions} partitions each, have {ready}"
            )
        await asyncio.sleep(0.1)


async def delete_topics(
    bootstrap: str, names: Iterable[str], *, timeout_s: float = ADMIN_TIMEOUT_S
) -> None:
    wanted = list(names)
    if not wanted:
        return
    async with admin_client(bootstrap) as admin:
        await admin.delete_topics(wanted, timeout_ms=int(timeout_s * 1000))


@asynccontextmanager
async def kafka_producer(bootstrap: str, **config: Any) -> AsyncIterator[Any]:
    """A started AIOKafkaProducer that waits for every replica (acks=all)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **config)
    async with asyncio.timeout(CLIENT_START_TIMEOUT_S):
        await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@asynccontextmanager
async def _reader(bootstrap: str, topic: str) -> AsyncIterator[tuple[Any, list[Any]]]:
    """A group-less consumer assigned to every partition of ``topic``, at offset 0."""
    counts = await describe_partitions(bootstrap, [topic])
    if topic not in counts:
        raise LookupError(f"topic {topic!r} does not exist or has no leader")
    partitions = [TopicPartition(topic, p) for p in range(counts[topic])]

    # No group: nothing is committed, and tests never see each other's offsets.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    async with asyncio.timeout(CLIENT_START_TIMEOUT_S):
        await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        yield consumer, partitions
    finally:
        await consumer.stop()


async def consume_records(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    timeout_s: float = DEFAULT_READ_TIMEOUT_S,
) -> list[Record]:
    """Read ``topic`` from the start until ``count`` records have arrived.

    Records are returned in fetch order, which keeps the order within each
    partition. A fetch that brings more than ``count`` returns them all, so a
    duplicate shows up as a length mismatch. Fewer than ``count`` within
    ``timeout_s`` raises TimeoutError naming what did arrive.
    """
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    async with _reader(bootstrap, topic) as (consumer, _):
        while len(records) < count:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                raise TimeoutError(
                    f"{topic}: {len(records)} of {count} records within "
                    f"{timeout_s:g}s: {[(r.key, r.value) for r in records]}"
                )
            batches = await consumer.getmany(timeout_ms=min(POLL_MS, remaining_ms))
            for batch in batches.values():
                records.extend(batch)
    logger.debug("read %d records from %s", len(records), topic)
    return records


async def read_topic(
    bootstrap: str, topic: str, *, timeout_s: float = DEFAULT_READ_TIMEOUT_S
) -> list[Record]:
    """Every record in ``topic`` up to its end offsets at the time of the call."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    async with _reader(bootstrap, topic) as (consumer, partitions):
        end_offsets = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if end_offsets[tp] > 0}
        while pending:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                raise TimeoutError(
                    f"{topic}: did not reach the end offsets {end_offsets} "
                    f"within {timeout_s:g}s; read {len(records)} records"
                )
            batches = await consumer.getmany(
                *pending, timeout_ms=min(POLL_MS, remaining_ms)
            )
            for tp, batch in batches.items():
                records.extend(r for r in batch if r.offset < end_offsets[tp])
            for tp in list(pending):
                if await consumer.position(tp) >= end_offsets[tp]:
                    pending.discard(tp)
    return records
