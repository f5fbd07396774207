"""A real Faust worker against the real broker: stream, table, changelog, restart.

The worker runs in a subprocess (`faust -A ... worker`), the way it runs in
production; the test only produces input and reads what comes out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import faust_counting_app
from tests.integration.conftest import TopicCreator
from tests.integration.kafka_helpers import (
    consume_records,
    describe_partitions,
    kafka_producer,
    read_topic,
)
from tests.local_broker import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

PARTITIONS = 2
# A worker joins its group, creates and recovers its changelog, then starts its
# agents: a few seconds idle, more on a loaded two-core CI machine.
OUTPUT_TIMEOUT_S = 90.0
WORKER_STOP_TIMEOUT_S = 30.0


class FaustWorker:
    """One `faust worker` subprocess running faust_counting_app."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "faust",
            "-A",
            f"{faust_counting_app.__name__}:app",
            "worker",
            "--without-web",
            "--loglevel",
            "info",
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if the worker has not exited in time."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(timeout=WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=WORKER_STOP_TIMEOUT_S)
        return process.returncode

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture
def worker_factory(
    tmp_path: Path, kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> Iterator[Callable[[str, str], FaustWorker]]:
    app_id = unique_name("app")
    workers: list[FaustWorker] = []

    def make(source: str, sink: str) -> FaustWorker:
        env = {
            **os.environ,
            "COUNTING_APP_BROKER": kafka_bootstrap,
            "COUNTING_APP_ID": app_id,
            "COUNTING_APP_SOURCE": source,
            "COUNTING_APP_SINK": sink,
            "COUNTING_APP_PARTITIONS": str(PARTITIONS),
            "COUNTING_APP_DATADIR": str(tmp_path / "faust-data"),
        }
        worker = FaustWorker(env, tmp_path / "worker.log")
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()


def outputs(records: list[Any]) -> list[tuple[str, str, int]]:
    decoded = [json.loads(r.value) for r in records]
    return sorted((d["key"], d["upper"], d["seen"]) for d in decoded)


async def test_worker_transforms_counts_and_recovers_its_table(
    kafka_bootstrap: str,
    create_topics: TopicCreator,
    worker_factory: Callable[[str, str], FaustWorker],
) -> None:
    source, sink = await create_topics("in", "out", partitions=PARTITIONS)
    first_batch = [(b"a", b"view"), (b"b", b"cart"), (b"a", b"cart"), (b"a", b"buy")]

    # Produced before the worker exists: a new group starts at the earliest
    # offset, so nothing is missed however long the worker takes to start.
    async with kafka_producer(kafka_bootstrap) as producer:
        for key, value in first_batch:
            await producer.send_and_wait(source, value, key=key)

    worker = worker_factory(source, sink)
    worker.start()
    try:
        records = await consume_records(
            kafka_bootstrap, sink, len(first_batch), timeout_s=OUTPUT_TIMEOUT_S
        )
    except TimeoutError as exc:
        pytest.fail(f"{exc}\nworker log:\n{worker.log_tail()}")
    assert outputs(records) == [
        ("a", "BUY", 3),
        ("a", "CART", 2),
        ("a", "VIEW", 1),
        ("b", "CART", 1),
    ]

    # The table is backed by a changelog topic that the worker created on the
    # broker, co-partitioned with the source topic.
    app_id = worker.env["COUNTING_APP_ID"]
    changelog = f"{app_id}-{faust_counting_app.TABLE_NAME}-changelog"
    partitions = await describe_partitions(kafka_bootstrap, [changelog])
    assert partitions == {changelog: PARTITIONS}, worker.log_tail()
    latest = {
        json.loads(r.key): json.loads(r.value)
        for r in await read_topic(kafka_bootstrap, changelog)
    }
    assert latest == {"a": 3, "b": 1}

    assert worker.stop() == 0, worker.log_tail()

    # A new worker with an in-memory store can only know "a" was seen three
    # times by replaying the changelog from the broker.
    async with kafka_producer(kafka_bootstrap) as producer:
        await producer.send_and_wait(source, b"view", key=b"a")
    restarted = worker_factory(source, sink)
    restarted.start()
    try:
        records = await consume_records(
            kafka_bootstrap, sink, len(first_batch) + 1, timeout_s=OUTPUT_TIMEOUT_S
        )
    except TimeoutError as exc:
        pytest.fail(f"{exc}\nworker log:\n{restarted.log_tail()}")
    assert ("a", "VIEW", 4) in outputs(records), restarted.log_tail()
    assert len(records) == len(first_batch) + 1, outputs(records)
