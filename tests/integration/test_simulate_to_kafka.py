"""Simulated traffic sent live to the real broker: every line, keyed, on time."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from streamfunnel.cli_traffic import simulate
from streamfunnel.errors import BrokerError
from streamfunnel.events import Event, EventDecoder
from streamfunnel.settings import KafkaSettings
from streamfunnel.simulation import SimulationSettings, simulate_sessions
from streamfunnel.traffic import (
    KEY_BY_NONE,
    KEY_BY_SESSION,
    TrafficPlan,
    TrafficResult,
    produce_traffic,
)
from tests.integration.conftest import TopicCreator
from tests.integration.kafka_helpers import Record, consume_records
from tests.integration.kcat_tool import kcat, needs_kcat

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

# Sending is paced on the clock, so the whole run has a known length; this is
# the margin for a loaded machine.
RUN_TIMEOUT_S = 60.0
# How close the measured rate must come to the asked one.
RATE_TOLERANCE = 0.03


async def send(
    bootstrap: str,
    topic: str,
    settings: SimulationSettings,
    **plan: Any,
) -> TrafficResult:
    async with asyncio.timeout(RUN_TIMEOUT_S):
        return await produce_traffic(
            KafkaSettings(bootstrap_servers=bootstrap),
            settings,
            TrafficPlan(topic, **plan),
        )


def measured_rate(records: list[Record]) -> float:
    """Records per second between the first and the last record's timestamp."""
    stamps: list[int] = sorted(r.timestamp for r in records)
    return (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1000)


async def test_sessions_arrive_whole_keyed_by_session_at_the_asked_rate(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    (topic,) = await create_topics("clicks", partitions=3)
    settings = SimulationSettings(seed=21)
    sessions, rate = 500, 1000.0
    expected = sum(1 for _ in simulate_sessions(settings, sessions))

    result = await send(
        kafka_bootstrap,
        topic,
        settings,
        sessions=sessions,
        rate_per_s=rate,
        key_by=KEY_BY_SESSION,
    )
    records = await consume_records(kafka_bootstrap, topic, expected)

    assert result.sent == len(records) == expected
    assert result.rate_per_s == pytest.approx(rate, rel=RATE_TOLERANCE)
    assert measured_rate(records) == pytest.approx(rate, rel=RATE_TOLERANCE)
    assert not result.fell_behind

    decoder = EventDecoder()
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    events = 0
    for record in records:
        item = decoder.decode(record.value)
        if isinstance(item, Event):
            events += 1
            assert record.key == item.key.encode()
            # Stamped when sent, less the simulator's delay (5 s at most).
            assert record.timestamp - 5000 <= item.ts <= record.timestamp
        if record.key is not None:
            partitions_of_key[record.key].add(record.partition)
    assert events > 0.95 * expected
    assert len(partitions_of_key) >= sessions
    assert all(len(partitions) == 1 for partitions in partitions_of_key.values())


async def test_without_keys_events_spread_over_partitions(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    (topic,) = await create_topics("unkeyed", partitions=3)
    settings = SimulationSettings(seed=22)
    expected = sum(1 for _ in simulate_sessions(settings, 60))

    await send(
        kafka_bootstrap,
        topic,
        settings,
        sessions=60,
        rate_per_s=2000.0,
        key_by=KEY_BY_NONE,
    )
    records = await consume_records(kafka_bootstrap, topic, expected)

    assert len(records) == expected
    assert {r.key for r in records} == {None}
    assert {r.partition for r in records} == {0, 1, 2}


async def test_a_missing_topic_is_a_clear_error(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("never-created")
    with pytest.raises(BrokerError, match=f"topic '{topic}' does not exist"):
        await send(kafka_bootstrap, topic, SimulationSettings(), sessions=1)


async def test_the_command_sends_for_the_asked_duration(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    (topic,) = await create_topics("timed", partitions=2)
    args = [
        *("--bootstrap-servers", kafka_bootstrap, "--topic", topic),
        *("--duration", "2", "--rate", "400", "--seed", "5", "--key-by", "session"),
    ]

    # The command runs its own event loop, so it gets a thread of its own.
    result = await asyncio.to_thread(
        CliRunner().invoke, simulate, args, env={"STREAMFUNNEL_CONFIG": ""}
    )

    assert result.exit_code == 0, (result.output, result.exception)
    assert f"to {topic} at 400 events/s, keyed by session" in result.stderr
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("sent ")
    sent = int(summary.split()[1].replace(",", ""))
    assert sent == pytest.approx(800, rel=RATE_TOLERANCE)
    records = await consume_records(kafka_bootstrap, topic, sent)
    assert len(records) == sent
    assert measured_rate(records) == pytest.approx(400, rel=RATE_TOLERANCE)


@needs_kcat
async def test_kcat_reads_the_simulated_traffic(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    (topic,) = await create_topics("for-kcat", partitions=2)
    # Broken lines include some that are not UTF-8, which kcat's JSON output
    # cannot carry; this test is about the valid ones.
    settings = SimulationSettings(seed=23, invalid_share=0.0)
    result = await send(
        kafka_bootstrap,
        topic,
        settings,
        sessions=30,
        rate_per_s=2000.0,
        key_by=KEY_BY_SESSION,
    )

    output = await asyncio.to_thread(
        kcat,
        *("-C", "-b", kafka_bootstrap, "-t", topic),
        *("-o", "beginning", "-c", str(result.sent), "-J"),
    )

    messages = [json.loads(line) for line in output.splitlines() if line]
    assert len(messages) == result.sent
    decoder = EventDecoder()
    for message in messages:
        item = decoder.decode(message["payload"].encode())
        if isinstance(item, Event):
            assert message["key"] == item.key
