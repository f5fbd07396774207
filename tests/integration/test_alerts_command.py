"""The alerts command against the real broker: records the engine made, as lines.

The records come from running simulated traffic through the engine, so every
type the worker publishes is there in the shape the worker gives it.
"""

from __future__ import annotations

import asyncio
import functools
import io
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from streamfunnel.cli_traffic import alerts
from streamfunnel.config import load_config
from streamfunnel.records import ABANDONMENT
from streamfunnel.replay import replay
from streamfunnel.settings import KafkaSettings
from streamfunnel.simulation import SimulationSettings, simulate_sessions
from streamfunnel.subscription import SubscriptionPlan, format_record, subscribe
from tests.integration.conftest import TopicCreator
from tests.integration.kafka_helpers import create_topics as create_on_broker
from tests.integration.kafka_helpers import kafka_producer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

# Generous for a loaded CI machine; a passing run takes a second or two.
COMMAND_TIMEOUT_S = 30.0


@functools.cache
def engine_records() -> tuple[dict[str, Any], ...]:
    out = io.BytesIO()
    lines = simulate_sessions(SimulationSettings(seed=4), 300)
    replay(lines, load_config(env={}).rules, out)
    return tuple(orjson.loads(line) for line in out.getvalue().splitlines())


def split(records: tuple[dict[str, Any], ...]) -> tuple[list[Any], list[Any]]:
    abandonments = [r for r in records if r["type"] == ABANDONMENT]
    return abandonments, [r for r in records if r["type"] != ABANDONMENT]


class WatchedText(io.StringIO):
    """A text buffer that says when something was written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


async def produce(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    async with kafka_producer(bootstrap) as producer:
        for record in records:
            key = record["session_key"].encode()
            await producer.send(topic, orjson.dumps(record), key=key)
        await producer.flush()


async def run_alerts(
    bootstrap: str, abandonments: str, conversions: str, *args: str
) -> Result:
    env = {
        "STREAMFUNNEL_CONFIG": "",
        "STREAMFUNNEL_TOPICS_ABANDONMENTS": abandonments,
        "STREAMFUNNEL_TOPICS_CONVERSIONS": conversions,
    }
    # The command runs its own event loop, so it gets a thread of its own.
    return await asyncio.to_thread(
        CliRunner().invoke,
        alerts,
        ["--bootstrap-servers", bootstrap, *args],
        env=env,
    )


async def test_every_record_type_prints_and_a_broken_one_is_skipped(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    abandon_topic, convert_topic = await create_topics(
        "abandonments", "conversions", partitions=2
    )
    abandonments, conversions = split(engine_records())
    assert {r["type"] for r in conversions} == {
        "micro_conversion",
        "macro_conversion",
        "sequence",
    }
    async with kafka_producer(kafka_bootstrap) as producer:
        await producer.send_and_wait(abandon_topic, b"{not json", partition=0)
    await produce(kafka_bootstrap, abandon_topic, abandonments)
    await produce(kafka_bootstrap, convert_topic, conversions)
    total = len(abandonments) + len(conversions)

    result = await run_alerts(
        kafka_bootstrap,
        abandon_topic,
        convert_topic,
        *("--conversions", "--from-beginning", "--max", str(total)),
        *("--timeout", str(COMMAND_TIMEOUT_S)),
    )

    assert result.exit_code == 0, (result.output, result.exception)
    shown = result.stdout.splitlines()
    assert Counter(shown) == Counter(format_record(r) for r in engine_records())
    heads = {line.split()[1] for line in shown}
    assert {"CART", "CHECKOUT", "FORM", "MICRO", "MACRO", "SEQUENCE"} <= heads
    assert f"warning: skipped {abandon_topic}[0]@0: not valid JSON" in result.stderr


async def test_json_lines_are_the_records_themselves(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    abandon_topic, convert_topic = await create_topics("abandonments", "conversions")
    abandonments, _ = split(engine_records())
    await produce(kafka_bootstrap, abandon_topic, abandonments)

    result = await run_alerts(
        kafka_bootstrap,
        abandon_topic,
        convert_topic,
        *("--json", "--from-beginning", "--max", str(len(abandonments))),
        *("--timeout", str(COMMAND_TIMEOUT_S)),
    )

    assert result.exit_code == 0, (result.output, result.exception)
    assert [orjson.loads(line) for line in result.stdout.splitlines()] == abandonments


async def test_without_from_beginning_only_new_records_show(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    (topic,) = await create_topics("abandonments", partitions=2)
    old, new = split(engine_records())[0][:2]
    await produce(kafka_bootstrap, topic, [old])
    out, errors = io.StringIO(), io.StringIO()
    ready = asyncio.Event()
    plan = SubscriptionPlan((topic,), max_records=1, timeout_s=COMMAND_TIMEOUT_S)
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)

    following = asyncio.create_task(subscribe(kafka, plan, out, errors, ready=ready))
    async with asyncio.timeout(COMMAND_TIMEOUT_S):
        await ready.wait()
    await produce(kafka_bootstrap, topic, [new])
    result = await following

    assert (result.shown, result.skipped, result.timed_out) == (1, 0, False)
    assert out.getvalue() == format_record(new) + "\n"


async def test_a_topic_created_later_is_read_from_its_start(
    kafka_bootstrap: str,
    create_topics: TopicCreator,
    unique_name: Callable[[str], str],
) -> None:
    (existing,) = await create_topics("conversions")
    late = unique_name("abandonments-later")
    record = split(engine_records())[0][0]
    out, errors = io.StringIO(), WatchedText()
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    plan = SubscriptionPlan((late, existing), max_records=1, timeout_s=60)

    following = asyncio.create_task(subscribe(kafka, plan, out, errors))
    async with asyncio.timeout(COMMAND_TIMEOUT_S):
        await errors.written.wait()
    await create_on_broker(kafka_bootstrap, [late])
    create_topics.created.append(late)
    await produce(kafka_bootstrap, late, [record])
    async with asyncio.timeout(COMMAND_TIMEOUT_S):
        result = await following

    assert errors.getvalue() == f"waiting for {late} to be created\n"
    assert result.shown == 1
    assert out.getvalue() == format_record(record) + "\n"


async def test_a_timeout_ends_a_quiet_subscription(
    kafka_bootstrap: str, create_topics: TopicCreator
) -> None:
    abandon_topic, convert_topic = await create_topics("abandonments", "conversions")
    started = time.monotonic()

    result = await run_alerts(
        kafka_bootstrap,
        abandon_topic,
        convert_topic,
        "--conversions",
        "--timeout",
        "1.5",
    )

    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout == ""
    assert 1.5 <= time.monotonic() - started < COMMAND_TIMEOUT_S
