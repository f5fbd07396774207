"""Produce and consume through the real broker with aiokafka."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.integration.conftest import TopicCreator
from tests.integration.kafka_helpers import consume_records, kafka_producer, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def test_keys_values_and_headers_survive_the_round_trip(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    (topic,) = await create_topics("clicks")
    sent = [
        (b"session-1", b'{"type":"page_view"}', [("source", b"web"), ("v", b"1")]),
        (None, b"no key at all", []),
        (b"session-2", b"", [("empty", b"")]),
        (b"session-1", "caf\u00e9 \u2615".encode(), [("charset", b"utf-8")]),
    ]

    async with kafka_producer(kafka_bootstrap) as producer:
        for key, value, headers in sent:
            await producer.send_and_wait(topic, value, key=key, headers=headers)

    records = await consume_records(kafka_bootstrap, topic, len(sent))
    received = [(r.key, r.value, list(r.headers)) for r in records]
    assert received == sent
    assert [r.offset for r in records] == [0, 1, 2, 3]


async def test_order_is_kept_within_each_partition(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    (topic,) = await create_topics("orders", partitions=3)
    # 16 keys hash onto all three partitions.
    keys = [f"user-{n}".encode() for n in range(16)]
    per_key = 20

    async with kafka_producer(kafka_bootstrap, linger_ms=5) as producer:
        futures = [
            await producer.send(topic, str(seq).encode(), key=key)
            for seq in range(per_key)
            for key in keys
        ]
        metadata = [await future for future in futures]

    records = await consume_records(kafka_bootstrap, topic, per_key * len(keys))
    assert len(records) == per_key * len(keys)

    # The default partitioner hashes the key: one key, one partition.
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    sequence_of_key: dict[bytes, list[int]] = defaultdict(list)
    for record in records:
        partitions_of_key[record.key].add(record.partition)
        sequence_of_key[record.key].append(int(record.value))
    assert all(len(parts) == 1 for parts in partitions_of_key.values())
    assert {p for parts in partitions_of_key.values() for p in parts} == {0, 1, 2}
    for key in keys:
        assert sequence_of_key[key] == list(range(per_key)), key

    # What the broker acknowledged is where the consumer found each record.
    acknowledged = {(m.partition, m.offset) for m in metadata}
    assert acknowledged == {(r.partition, r.offset) for r in records}


async def test_explicit_partition_and_read_to_end(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    (topic,) = await create_topics("explicit", partitions=4)

    async with kafka_producer(kafka_bootstrap) as producer:
        for partition in (3, 1, 3):
            await producer.send_and_wait(
                topic, f"to-{partition}".encode(), partition=partition
            )

    records = await read_topic(kafka_bootstrap, topic)
    assert sorted((r.partition, r.offset, r.value) for r in records) == [
        (1, 0, b"to-1"),
        (3, 0, b"to-3"),
        (3, 1, b"to-3"),
    ]
