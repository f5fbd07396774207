"""Fixtures shared by every test directory."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.local_broker import (
    BROKER_ENV,
    BrokerStartError,
    parse_bootstrap,
    start_broker,
    stop_broker,
)

# Kafka allows 249 characters; short names keep broker logs readable.
_MAX_NAME_LENGTH = 120
_NOT_IN_TOPIC_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address ("host:port") of a real Kafka broker for this session.

    Starts one with deploy/kafka-local/kafka-local on free ports in a temporary
    data directory, or uses the broker named by STREAMFUNNEL_TEST_BROKER.
    """
    external = os.environ.get(BROKER_ENV, "").strip()
    if external:
        try:
            address = parse_bootstrap(external)
        except ValueError as exc:
            pytest.fail(f"{BROKER_ENV}: {exc}", pytrace=False)
        yield address
        return

    data_dir = tmp_path_factory.mktemp("kafka-local")
    try:
        address = start_broker(data_dir)
    except BrokerStartError as exc:
        # Stop whatever a half-finished start may have left behind, without
        # hiding why the start failed.
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            stop_broker(data_dir)
        pytest.fail(f"the test broker did not start: {exc}", pytrace=False)
    try:
        yield address
    finally:
        stop_broker(data_dir)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Make topic and group names unique to this test and this run.

    Tests share one broker, so names carry the test's own name (to find its
    topics in the broker log) and a random suffix (so reruns never collide).
    """

    def make(role: str) -> str:
        test = _NOT_IN_TOPIC_NAME.sub("-", request.node.name).strip("-")
        role = _NOT_IN_TOPIC_NAME.sub("-", role).strip("-")
        suffix = uuid.uuid4().hex[:10]
        stem = f"{test}.{role}"[: _MAX_NAME_LENGTH - len(suffix) - 1]
        return f"{stem}.{suffix}"

    return make
