"""kcat (librdkafka) and aiokafka agree on what is in a topic.

kcat is what an operator reaches for to inspect streamfunnel's topics, so it
must read what the worker writes and write what the worker reads.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from tests.integration.conftest import TopicCreator
from tests.integration.kafka_helpers import consume_records, kafka_producer
from tests.integration.kcat_tool import kcat, needs_kcat

pytestmark = [pytest.mark.integration, pytest.mark.asyncio, needs_kcat]


async def test_records_produced_by_kcat_reach_aiokafka(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    (topic,) = await create_topics("from-kcat", partitions=2)
    lines = ["session-1|page_view", "session-2|add_to_cart", "session-1|checkout"]

    kcat(
        "-P",
        "-b",
        kafka_bootstrap,
        "-t",
        topic,
        "-K",
        "|",
        "-H",
        "producer=kcat",
        stdin="\n".join(lines) + "\n",
    )

    records = await consume_records(kafka_bootstrap, topic, len(lines))
    # librdkafka hashes keys differently from aiokafka, but still sends one key
    # to one partition, so each key's records keep the order of the input.
    values_of_key: dict[bytes, list[bytes]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        values_of_key[record.key].append(record.value)
    assert values_of_key == {
        b"session-1": [b"page_view", b"checkout"],
        b"session-2": [b"add_to_cart"],
    }
    assert all(list(r.headers) == [("producer", b"kcat")] for r in records)


async def test_kcat_reads_what_aiokafka_produced(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    (topic,) = await create_topics("to-kcat")
    async with kafka_producer(kafka_bootstrap) as producer:
        for n in range(3):
            await producer.send_and_wait(
                topic, f"event-{n}".encode(), key=b"user-7", headers=[("n", b"%d" % n)]
            )

    output = kcat(
        "-C", "-b", kafka_bootstrap, "-t", topic, "-o", "beginning", "-c", "3", "-J"
    )
    messages = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert [(m["offset"], m["key"], m["payload"]) for m in messages] == [
        (0, "user-7", "event-0"),
        (1, "user-7", "event-1"),
        (2, "user-7", "event-2"),
    ]
    assert [m["headers"] for m in messages] == [["n", "0"], ["n", "1"], ["n", "2"]]
