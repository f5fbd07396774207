"""The test session's Kafka broker, started through deploy/kafka-local/kafka-local.

Tests run against the same broker a developer gets from ``make run``: the script
is the one place that knows how to configure and start it. Only the standard
library is used here so that collecting unit tests costs nothing.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_LOCAL = REPO_ROOT / "deploy" / "kafka-local" / "kafka-local"

# Set to "host:port" to run the integration tests against a broker that is
# already running; nothing is started or stopped then.
BROKER_ENV = "STREAMFUNNEL_TEST_BROKER"

# Readiness after the JVM starts: about 3 s when idle, but CI may be compiling
# or running other JVMs on the same two cores.
BROKER_READY_TIMEOUT_S = 120.0
# The whole `start` command, including a first Maven resolution into an empty
# local repository on a slow mirror.
START_COMMAND_TIMEOUT_S = 900.0
STOP_TIMEOUT_S = 60.0

_BOOTSTRAP = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:(\d{1,5})$")


class BrokerStartError(Exception):
    """kafka-local could not start the broker; carries its output."""


def parse_bootstrap(text: str) -> str:
    """Validate a ``host:port`` bootstrap address and return it stripped."""
    address = text.strip()
    match = _BOOTSTRAP.match(address)
    if match is None or not 0 < int(match.group(1)) < 65536:
        raise ValueError(f"not a host:port bootstrap address: {text!r}")
    return address


def free_ports(count: int) -> list[int]:
    """Ports that were free a moment ago, distinct from each other.

    All sockets stay bound until every port is known, so the kernel cannot hand
    out the same port twice.
    """
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
    return ports


def run_kafka_local(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(KAFKA_LOCAL), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def start_broker(data_dir: Path) -> str:
    """Start a broker on free ports in ``data_dir``; return its bootstrap address."""
    port, controller_port = free_ports(2)
    command = [
        "start",
        "--port",
        str(port),
        "--controller-port",
        str(controller_port),
        "--data-dir",
        str(data_dir),
        "--timeout",
        str(BROKER_READY_TIMEOUT_S),
    ]
    try:
        result = run_kafka_local(*command, timeout_s=START_COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise BrokerStartError(
            f"kafka-local start did not finish within {START_COMMAND_TIMEOUT_S:.0f}s"
        ) from exc
    if result.returncode != 0:
        raise BrokerStartError(
            f"kafka-local start exited {result.returncode}:\n{result.stderr}"
        )
    logger.info("test broker at %s, data in %s", result.stdout.strip(), data_dir)
    return parse_bootstrap(result.stdout)


def stop_broker(data_dir: Path) -> None:
    result = run_kafka_local(
        "stop",
        "--data-dir",
        str(data_dir),
        "--timeout",
        str(STOP_TIMEOUT_S / 2),
        timeout_s=STOP_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kafka-local stop failed:\n{result.stderr}")
