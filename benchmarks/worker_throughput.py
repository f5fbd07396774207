"""Worker throughput against a plain aiokafka consumer on the same topic.

Pre-produces simulated clickstream events (200,000 by default) to a fresh topic
on a running broker (`make run` starts one), then, in one run:

- the floor: an aiokafka consumer draining the topic with ``getmany`` and
  ``orjson.loads`` on every value, nothing else;
- the worker: `streamfunnel worker` draining the same topic through both of
  its agents (re-keying by session, then the funnel engine and state writes),
  timed from its first processed partition until its consumer group has
  committed every routed event.

Prints events/s for both and the ratio. Figures, not assertions: the machines
are shared, so compare the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamfunnel.simulation import SimulationSettings, simulate_sessions

REPO = Path(__file__).resolve().parents[1]


async def produce(bootstrap: str, topic: str, partitions: int, events: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1)])
    await admin.close()
    settings = SimulationSettings(seed=1, start_ms=int(time.time() * 1000) - 86_400_000)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    sent = 0
    pending = []
    try:
        for line in simulate_sessions(settings, events // 5):
            pending.append(await producer.send(topic, line))
            sent += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
            if sent >= events:
                break
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def floor(bootstrap: str, topic: str, partitions: int, events: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loads = orjson.loads
        seen = 0
        started = time.perf_counter()
        while seen < events:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batches.values():
                for record in records:
                    # Not contextlib.suppress: its cost would count as the floor's.
                    try:  # noqa: SIM105
                        loads(record.value)
                    except orjson.JSONDecodeError:
                        pass
                seen += len(records)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        totals: dict[str, int] = {}
        for tp, meta in offsets.items():
            totals[tp.topic] = totals.get(tp.topic, 0) + max(meta.offset, 0)
        return totals
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [
            TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []
        ]
        if not tps:
            await consumer.topics()
            tps = [
                TopicPartition(topic, p)
                for p in consumer.partitions_for_topic(topic) or []
            ]
        ends = await consumer.end_offsets(tps)
        return sum(ends.values())
    finally:
        await consumer.stop()


def health(port: int) -> dict[str, Any] | None:
    try:
        url = f"http://127.0.0.1:{port}/health"
        with urllib.request.urlopen(url, timeout=1) as r:
            doc: dict[str, Any] = json.loads(r.read())
            return doc
    except OSError:
        return None


async def run_worker(bootstrap: str, topic: str, partitions: int, events: int) -> float:
    app_id = f"bench-{uuid.uuid4().hex[:8]}"
    port = 16000 + os.getpid() % 1000
    state = tempfile.mkdtemp(prefix="streamfunnel-bench-")
    env = {
        **os.environ,
        "STREAMFUNNEL_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "STREAMFUNNEL_TOPICS_INPUTS": topic,
        "STREAMFUNNEL_TOPICS_ABANDONMENTS": f"{app_id}.abandonments",
        "STREAMFUNNEL_TOPICS_CONVERSIONS": f"{app_id}.conversions",
        "STREAMFUNNEL_TOPICS_METRICS": f"{app_id}.metrics",
        "STREAMFUNNEL_TOPICS_DEAD_LETTER": f"{app_id}.deadletter",
        "STREAMFUNNEL_TOPICS_PARTITIONS": str(partitions),
        "STREAMFUNNEL_WORKER_APP_ID": app_id,
        "STREAMFUNNEL_WORKER_STATE_DIR": state,
        "STREAMFUNNEL_WORKER_WEB_PORT": str(port),
        "STREAMFUNNEL_LOG_LEVEL": "warning",
    }
    # Starting the worker blocks only for the fork; nothing else runs meanwhile.
    log = open(Path(state) / "worker.log", "wb")  # noqa: SIM115, ASYNC230
    process = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "streamfunnel", "worker"],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    internal = f"{app_id}-session-events"
    try:
        while True:
            doc = health(port)
            if doc is not None and doc.get("partitions"):
                started = time.perf_counter()
                break
            if process.poll() is not None:
                raise RuntimeError(f"worker exited; see {log.name}")
            await asyncio.sleep(0.05)
        while True:
            done = await committed(bootstrap, app_id)
            if done.get(topic, 0) >= events:
                routed = await end_offsets(bootstrap, internal)
                if done.get(internal, 0) >= routed - 4 * partitions:
                    return time.perf_counter() - started
            await asyncio.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    topic = f"bench-{uuid.uuid4().hex[:8]}.events"
    events = await produce(args.bootstrap, topic, args.partitions, args.events)
    print(f"{events:,} events in {topic} ({args.partitions} partitions)")
    floor_s = await floor(args.bootstrap, topic, args.partitions, events)
    worker_s = await run_worker(args.bootstrap, topic, args.partitions, events)
    rows = [
        ("floor (aiokafka getmany + orjson.loads)", events / floor_s),
        ("streamfunnel worker", events / worker_s),
    ]
    for label, rate in rows:
        print(f"  {label:<42}{rate:>10,.0f} events/s")
    print(f"  {'worker / floor':<42}{floor_s / worker_s:>10.3f}")


if __name__ == "__main__":
    asyncio.run(main())
