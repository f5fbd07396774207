"""The live worker against the real broker: it must publish what replay computes.

Each test runs `streamfunnel worker` as a subprocess, produces clickstream events
with a real client (aiokafka, or kcat), reads what the worker publishes, and
compares it with `replay` of the same events.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamfunnel.config import build_rules
from streamfunnel.engine import decoder_for
from streamfunnel.events import Event
from streamfunnel.replay import replay
from streamfunnel.rules import Rules
from streamfunnel.simulation import SimulationSettings, simulate_sessions
from streamfunnel.worker.deadletters import (
    REASON,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TOPIC,
)
from tests.integration.kafka_helpers import (
    AIOKafkaConsumer,
    consume_records,
    kafka_producer,
    read_topic,
)
from tests.integration.kafka_helpers import create_topics as create_on_broker
from tests.integration.kcat_tool import kcat, needs_kcat
from tests.integration.worker_process import WorkerProcess, WorkerTopics, worker_topics

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

OUTPUT_TIMEOUT_S = 120.0


def rules_for(timeout_s: float, lateness_s: float) -> Rules:
    return build_rules(
        {"session": {"timeout_s": timeout_s, "allowed_lateness_s": lateness_s}}
    )


def expected_records(lines: list[bytes], rules: Rules) -> list[dict[str, Any]]:
    out = io.BytesIO()
    replay(lines, rules, out)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def canonical(records: list[dict[str, Any]]) -> list[bytes]:
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records)


def historical_lines(sessions: int, seed: int, end_before_ms: int) -> list[bytes]:
    """Simulated traffic whose last event is just before ``end_before_ms``."""
    decoder = decoder_for(build_rules({}))

    def generate(start_ms: int) -> tuple[list[bytes], int]:
        settings = SimulationSettings(seed=seed, start_ms=start_ms, sessions_per_s=20)
        lines = list(simulate_sessions(settings, sessions))
        stamps = [e.ts for e in map(decoder.decode, lines) if isinstance(e, Event)]
        return lines, max(stamps)

    probe_start = end_before_ms - 3_600_000
    _, last = generate(probe_start)
    lines, last = generate(probe_start - (last - end_before_ms))
    assert last <= end_before_ms
    return lines


@pytest.fixture
def topics(unique_name: Callable[[str], str]) -> WorkerTopics:
    return worker_topics(unique_name)


@pytest.fixture
def start_worker(
    kafka_bootstrap: str,
    topics: WorkerTopics,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []
    app_id = unique_name("app")

    def start(**settings: str) -> WorkerProcess:
        worker = WorkerProcess(
            kafka_bootstrap,
            topics,
            app_id,
            tmp_path / "state",
            tmp_path / "worker.log",
            **settings,
        )
        worker.start()
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()


async def read_outputs(
    bootstrap: str, topics: WorkerTopics, expected: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every record the worker published, once as many as expected arrived."""
    alerts = sum(1 for r in expected if r["type"] == "abandonment")
    conversions = len(expected) - alerts
    found: list[dict[str, Any]] = []
    for topic, count in (
        (topics.abandonments, alerts),
        (topics.conversions, conversions),
    ):
        if count:
            await consume_records(bootstrap, topic, count, timeout_s=OUTPUT_TIMEOUT_S)
    # Anything extra would have been published by now: read to the end.
    await asyncio.sleep(2)
    for topic in (topics.abandonments, topics.conversions):
        found.extend(orjson.loads(r.value) for r in await read_topic(bootstrap, topic))
    return found


async def create_source(bootstrap: str, topics: WorkerTopics) -> None:
    """One source partition: a fast backfill reaches the worker in time order.

    With several, the consumer may read minutes of one partition's event time
    before the other's, and per-partition stream time would call the rest late
    (see the README's limitations). The session topic still has two partitions.
    """
    await create_on_broker(bootstrap, [topics.source], partitions=1)


async def test_worker_publishes_exactly_what_replay_computes(
    kafka_bootstrap: str,
    topics: WorkerTopics,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    # Lateness above the simulator's largest delay (5 s), so nothing is late in
    # either; the traffic ended long enough ago that every session is over.
    timeout_s, lateness_s = 10.0, 8.0
    now = int(time.time() * 1000)
    lines = historical_lines(300, seed=11, end_before_ms=now - 30_000)
    expected = expected_records(lines, rules_for(timeout_s, lateness_s))
    assert {r["type"] for r in expected} >= {
        "abandonment",
        "micro_conversion",
        "macro_conversion",
        "sequence",
    }

    await create_source(kafka_bootstrap, topics)
    start_worker(
        session_timeout_s=str(timeout_s), session_allowed_lateness_s=str(lateness_s)
    )
    async with kafka_producer(kafka_bootstrap, linger_ms=5) as producer:
        sent = [await producer.send(topics.source, line) for line in lines]
        await asyncio.gather(*sent)

    actual = await read_outputs(kafka_bootstrap, topics, expected)
    assert canonical(actual) == canonical(expected)
    # Alerts are keyed by session key, so a subscriber's partition holds a
    # session's alerts in order.
    for record in await read_topic(kafka_bootstrap, topics.abandonments):
        assert record.key.decode() == orjson.loads(record.value)["session_key"]


def event_line(
    type_: str, at_ms: int, session: str, event_id: str, **props: Any
) -> bytes:
    doc: dict[str, Any] = {
        "event_id": event_id,
        "type": type_,
        "timestamp": at_ms,
        "session_id": session,
    }
    if props:
        doc["properties"] = props
    return orjson.dumps(doc)


@needs_kcat
async def test_bad_input_goes_to_dead_letters_and_the_worker_goes_on(
    kafka_bootstrap: str,
    topics: WorkerTopics,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    await create_source(kafka_bootstrap, topics)
    worker = start_worker(session_timeout_s="2", session_allowed_lateness_s="1")
    now = int(time.time() * 1000)
    bad = [
        b"{not json",
        b"[1, 2, 3]",
        orjson.dumps({"type": "page_view", "timestamp": now, "session_id": "x"}),
        orjson.dumps({"event_id": "n1", "type": "page_view", "timestamp": now}),
        orjson.dumps(
            {"event_id": "n2", "type": "page_view", "timestamp": "soon", "user_id": "u"}
        ),
    ]
    good = [
        event_line("add_to_cart", now, "kc-1", "kc-1-a", product_id="p", price=9.5),
        event_line("page_view", now + 100, "kc-1", "kc-1-b"),
    ]
    # kcat, a Kafka client written by others, produces one message per line.
    batch = tmp_path / "input.jsonl"
    batch.write_bytes(b"\n".join(bad[:2] + good[:1] + bad[2:] + good[1:]) + b"\n")
    kcat("-b", kafka_bootstrap, "-P", "-t", topics.source, "-l", str(batch))
    # Bytes that are not UTF-8 cannot go through a text file line by line.
    async with kafka_producer(kafka_bootstrap) as producer:
        await producer.send_and_wait(topics.source, b"\xff\xfe\x00garbage")

    dead = await consume_records(
        kafka_bootstrap, topics.dead_letter, len(bad) + 1, timeout_s=OUTPUT_TIMEOUT_S
    )
    reasons = sorted(dict(r.headers)[REASON].decode() for r in dead)
    assert reasons == sorted(
        [
            "malformed_json",
            "not_an_object",
            "missing_event_id",
            "missing_identity",
            "bad_timestamp",
            "not_utf8",
        ]
    )
    for record in dead:
        headers = dict(record.headers)
        assert headers[SOURCE_TOPIC].decode() == topics.source
        assert headers[SOURCE_PARTITION] == b"0"
        assert int(headers[SOURCE_OFFSET]) >= 0
    assert {r.value for r in dead} == {*bad, b"\xff\xfe\x00garbage"}

    # The valid session still gets its alert, and the worker is still up.
    [alert] = await consume_records(
        kafka_bootstrap, topics.abandonments, 1, timeout_s=OUTPUT_TIMEOUT_S
    )
    assert orjson.loads(alert.value)["session_key"] == "kc-1"
    assert worker.health() is not None


async def test_alerts_fire_on_time_without_further_traffic(
    kafka_bootstrap: str,
    topics: WorkerTopics,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    timeout_s, lateness_s = 3.0, 2.0
    await create_source(kafka_bootstrap, topics)
    start_worker(
        session_timeout_s=str(timeout_s), session_allowed_lateness_s=str(lateness_s)
    )
    consumer = AIOKafkaConsumer(
        topics.abandonments,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        sessions = [f"rt-{i}" for i in range(3)]
        stamps: dict[str, int] = {}
        async with kafka_producer(kafka_bootstrap) as producer:
            for session in sessions:
                # Each event carries the time it is sent, as live traffic does.
                stamps[session] = int(time.time() * 1000)
                line = event_line(
                    "add_to_cart",
                    stamps[session],
                    session,
                    f"{session}-a",
                    product_id="p",
                )
                await producer.send_and_wait(topics.source, line)
                await asyncio.sleep(0.2)
        arrivals: dict[str, float] = {}
        deadline = time.monotonic() + 60
        while len(arrivals) < len(sessions) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=100)
            for batch in batches.values():
                for record in batch:
                    arrivals[orjson.loads(record.value)["session_key"]] = time.time()
    finally:
        await consumer.stop()

    assert sorted(arrivals) == sessions
    for session in sessions:
        due_s = stamps[session] / 1000 + timeout_s + lateness_s
        # Never early (stream time waits out the lateness), and at most 2 s late.
        assert due_s - 0.1 <= arrivals[session] <= due_s + 2.0, (
            session,
            arrivals[session] - due_s,
        )


async def test_restart_recovers_sessions_and_loses_no_alert(
    kafka_bootstrap: str,
    topics: WorkerTopics,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    timeout_s, lateness_s = 15.0, 2.0
    await create_source(kafka_bootstrap, topics)
    worker = start_worker(
        session_timeout_s=str(timeout_s), session_allowed_lateness_s=str(lateness_s)
    )
    now = int(time.time() * 1000)
    cart = {"items": [{"item_id": "sku-1", "quantity": 2, "price": 12.5}]}
    before = [
        *(event_line("page_view", now + i, "rs-a", f"a-{i}") for i in range(3)),
        event_line("add_to_cart", now + 10, "rs-a", "a-cart", **cart),
        event_line("form_start", now + 20, "rs-b", "b-form", form_id="quote"),
        event_line("purchase", now + 30, "rs-c", "c-buy"),
    ]
    after = [
        *(
            event_line("page_view", now + 2000 + i, "rs-a", f"a-{i + 3}")
            for i in range(3)
        ),
        event_line("checkout_start", now + 2010, "rs-a", "a-checkout"),
    ]
    async with kafka_producer(kafka_bootstrap) as producer:
        for line in before:
            await producer.send_and_wait(topics.source, line)
        # Wait until the worker has taken all of it in, then stop it mid-session.
        deadline = time.monotonic() + OUTPUT_TIMEOUT_S
        while time.monotonic() < deadline:
            health = worker.health() or {}
            sessions = sum(p["sessions"] for p in health.get("partitions", {}).values())
            if sessions == 3:
                break
            await asyncio.sleep(0.2)
        assert worker.stop() == 0, worker.log_tail()
        for line in after:
            await producer.send_and_wait(topics.source, line)

    restarted = start_worker(
        session_timeout_s=str(timeout_s), session_allowed_lateness_s=str(lateness_s)
    )
    expected = expected_records(before + after, rules_for(timeout_s, lateness_s))
    assert sorted(
        r.get("kind", "") for r in expected if r["type"] == "abandonment"
    ) == [
        "checkout",
        "form",
    ]
    actual = await read_outputs(kafka_bootstrap, topics, expected)
    # At-least-once: a copy may repeat, but each copy is identical, and nothing
    # is missing.
    assert sorted(set(canonical(actual))) == sorted(set(canonical(expected)))
    [checkout] = [r for r in actual if r.get("kind") == "checkout"]
    assert checkout["cart"]["value"] == 25.0
    # The restarted worker found the three open sessions in the changelog.
    recovered = re.findall(
        r"partition (\d+): recovered (\d+) sessions", restarted.log_tail(2000)
    )
    latest = dict(recovered)
    assert sum(int(n) for n in latest.values()) == 3, recovered
