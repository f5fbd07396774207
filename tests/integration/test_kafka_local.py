"""The local broker script's whole life cycle, on a broker of its own.

The session broker (tests/conftest.py) is started and stopped once; these tests
exercise what happens around that: a second start, restarts on existing data,
stop and status, and a start that gives up.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.integration.kafka_helpers import (
    create_topics,
    describe_partitions,
    kafka_producer,
)
from tests.local_broker import BROKER_ENV, free_ports, run_kafka_local

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(os.environ.get(BROKER_ENV, "").strip()),
        reason=f"{BROKER_ENV} is set: this run starts no broker of its own",
    ),
]

START_TIMEOUT_S = 300.0
COMMAND_TIMEOUT_S = 60.0


def kafka_local(*args: str) -> tuple[int, str, str]:
    result = run_kafka_local(*args, timeout_s=START_TIMEOUT_S)
    return result.returncode, result.stdout.strip(), result.stderr


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (here: a data directory)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


async def produce_to_missing_topic(bootstrap: str, topic: str) -> BaseException:
    async with kafka_producer(bootstrap, request_timeout_ms=3000) as producer:
        try:
            await asyncio.wait_for(producer.send_and_wait(topic, b"x"), timeout=20)
        except Exception as exc:
            return exc
    raise AssertionError(f"producing to {topic} created it")


def test_start_status_restart_and_stop(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "kafka")
    port, controller_port = free_ports(2)
    start = [
        "start",
        "--port",
        str(port),
        "--controller-port",
        str(controller_port),
        "--data-dir",
        data_dir,
    ]
    address = f"127.0.0.1:{port}"
    try:
        code, out, err = kafka_local(*start)
        assert (code, out) == (0, address), err

        code, out, err = kafka_local("status", "--data-dir", data_dir)
        assert code == 0, err
        assert out.startswith(f"running {address} (pid ")

        code, out, err = kafka_local(*start)
        assert (code, out) == (0, address), err
        assert "already running" in err

        # The port is this broker's now: another data directory cannot have it.
        (other_controller_port,) = free_ports(1)
        code, out, err = kafka_local(
            "start",
            "--port",
            str(port),
            "--controller-port",
            str(other_controller_port),
            "--data-dir",
            str(tmp_path / "other"),
        )
        assert code == 1
        assert "already in use" in err

        # Topics are only created on purpose; the one a test creates survives a
        # restart because the data directory is reused, not reformatted.
        error = asyncio.run(produce_to_missing_topic(address, "no-such-topic"))
        assert "no-such-topic" not in asyncio.run(
            describe_partitions(address, ["no-such-topic"])
        ), error
        asyncio.run(create_topics(address, ["kept"], partitions=3))

        code, out, err = kafka_local("stop", "--data-dir", data_dir)
        assert code == 0, err
        assert processes_mentioning(data_dir) == []
        code, out, err = kafka_local("status", "--data-dir", data_dir)
        assert (code, out) == (3, "stopped")

        code, out, err = kafka_local(*start)
        assert (code, out) == (0, address), err
        assert "formatting storage" not in err
        assert asyncio.run(describe_partitions(address, ["kept"])) == {"kept": 3}
    finally:
        kafka_local("stop", "--data-dir", data_dir)

    code, out, err = kafka_local("stop", "--data-dir", data_dir)
    assert code == 0
    assert "not running" in err


def test_start_that_times_out_shows_the_log_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    data_dir = str(tmp_path / "kafka")
    port, controller_port = free_ports(2)
    try:
        code, out, err = kafka_local(
            "start",
            "--port",
            str(port),
            "--controller-port",
            str(controller_port),
            "--data-dir",
            data_dir,
            # Long enough for the JVM to start logging, far too short for KRaft.
            "--timeout",
            "0.5",
        )
        assert code == 1
        assert out == ""
        assert "not ready within 0.5s" in err
        assert f"last lines of {data_dir}/broker.log" in err
        assert "kafka-local start" in err  # the log's own first line
        assert processes_mentioning(data_dir) == []
        assert not (Path(data_dir) / "kafka-local.json").exists()
    finally:
        kafka_local("stop", "--data-dir", data_dir)
