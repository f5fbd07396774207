"""The one-command demo: a local broker, the worker, simulated traffic, alerts.

Every part runs as its own process, exactly as a user would run it by hand
(`kafka-local start`, `streamfunnel worker`, `simulate`, `alerts`), in its own
process group, so that Ctrl-C reaches only the demo, which then stops them in
order: traffic first, then the worker (which commits), then the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Final

from streamfunnel.config import Config
from streamfunnel.errors import StreamfunnelError

logger = logging.getLogger(__name__)

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
KAFKA_LOCAL: Final = REPO_ROOT / "deploy" / "kafka-local" / "kafka-local"
# Short sessions, so that abandonment shows within a minute instead of the
# production default of 30 minutes without events.
DEMO_TIMEOUT_S: Final = 20.0
DEMO_LATENESS_S: Final = 5.0
DEMO_RATE: Final = 40.0
WORKER_READY_TIMEOUT_S: Final = 120.0
STOP_TIMEOUT_S: Final = 30.0


class DemoError(StreamfunnelError):
    """A part of the demo could not start."""


@dataclass(frozen=True)
class DemoPlan:
    run_dir: Path
    industry: str | None = None
    rate_per_s: float = DEMO_RATE
    session_timeout_s: float = DEMO_TIMEOUT_S
    allowed_lateness_s: float = DEMO_LATENESS_S
    broker_port: int = 9092
    # None: the port after broker_port.
    controller_port: int | None = None
    web_port: int = 6066
    # None: start the local broker; otherwise use this one and leave it be.
    bootstrap_servers: str | None = None
    duration_s: float | None = None


def run_demo(plan: DemoPlan, config: Config, config_path: Path | None) -> None:
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    broker_dir: Path | None = None
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        bootstrap = plan.bootstrap_servers
        if bootstrap is None:
            broker_dir = plan.run_dir / "kafka"
            bootstrap = _start_broker(plan, broker_dir)
        env = _environment(plan, bootstrap, config_path)

        from streamfunnel.worker.topics import ensure_topics

        kafka = replace(config.kafka, bootstrap_servers=bootstrap)
        asyncio.run(ensure_topics(replace(config, kafka=kafka)))

        worker_log = plan.run_dir / "worker.log"
        children.append(("worker", _spawn(["worker"], env, worker_log)))
        _wait_for_worker(plan.web_port, children[-1][1], worker_log)
        traffic_log = plan.run_dir / "simulate.log"
        children.append(
            (
                "simulate",
                _spawn(
                    ["simulate", "--rate", f"{plan.rate_per_s:g}"], env, traffic_log
                ),
            )
        )
        _banner(plan, bootstrap, worker_log, traffic_log)
        children.append(("alerts", _spawn(["alerts", "--conversions"], env, None)))
        _wait(children, plan.duration_s)
    except KeyboardInterrupt:
        sys.stderr.write("\nstopping the demo...\n")
    finally:
        signal.signal(signal.SIGTERM, previous)
        for name, process in reversed(children):
            _stop(name, process)
        if broker_dir is not None:
            _stop_broker(broker_dir)
        sys.stderr.write("demo stopped\n")


def _raise_stop(signum: int, frame: object) -> None:
    # SIGTERM stops the demo the way Ctrl-C does, clean-up included.
    raise KeyboardInterrupt


def _environment(
    plan: DemoPlan, bootstrap: str, config_path: Path | None
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "STREAMFUNNEL_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "STREAMFUNNEL_SESSION_TIMEOUT_S": f"{plan.session_timeout_s:g}",
            "STREAMFUNNEL_SESSION_ALLOWED_LATENESS_S": f"{plan.allowed_lateness_s:g}",
            "STREAMFUNNEL_WORKER_APP_ID": "streamfunnel-demo",
            "STREAMFUNNEL_WORKER_STATE_DIR": str(plan.run_dir / "state"),
            "STREAMFUNNEL_WORKER_WEB_PORT": str(plan.web_port),
            # Children print through the demo's terminal without buffering.
            "PYTHONUNBUFFERED": "1",
        }
    )
    if plan.industry is not None:
        env["STREAMFUNNEL_INDUSTRY"] = plan.industry
    if config_path is not None:
        env["STREAMFUNNEL_CONFIG"] = str(config_path)
    return env


def _start_broker(plan: DemoPlan, data_dir: Path) -> str:
    if not KAFKA_LOCAL.is_file():
        raise DemoError(
            "the demo starts deploy/kafka-local from a source checkout; "
            "elsewhere pass --bootstrap-servers to use a running broker"
        )
    command = [
        sys.executable,
        str(KAFKA_LOCAL),
        "start",
        "--port",
        str(plan.broker_port),
        "--controller-port",
        str(plan.controller_port or plan.broker_port + 1),
        "--data-dir",
        str(data_dir),
    ]
    sys.stderr.write("starting the local Kafka broker...\n")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DemoError(f"the local broker did not start:\n{result.stderr.strip()}")
    return result.stdout.strip().splitlines()[-1]


def _stop_broker(data_dir: Path) -> None:
    command = [sys.executable, str(KAFKA_LOCAL), "stop", "--data-dir", str(data_dir)]
    subprocess.run(command, capture_output=True, check=False, timeout=120)


def _spawn(
    args: list[str], env: dict[str, str], log: Path | None
) -> subprocess.Popen[bytes]:
    output: IO[bytes] | None = log.open("ab") if log is not None else None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "streamfunnel", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            # Its own process group: Ctrl-C in the terminal reaches the demo
            # alone, which stops the parts in order.
            start_new_session=True,
        )
    finally:
        if output is not None:
            output.close()


def _wait_for_worker(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    sys.stderr.write("starting the worker...\n")
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    url = f"http://127.0.0.1:{port}/health"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"the worker exited; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if json.loads(response.read()).get("partitions"):
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.5)
    raise DemoError(
        f"the worker was not ready in {WORKER_READY_TIMEOUT_S:g} s; see {log}"
    )


def _banner(
    plan: DemoPlan, bootstrap: str, worker_log: Path, traffic_log: Path
) -> None:
    timeout, lateness = plan.session_timeout_s, plan.allowed_lateness_s
    lines = [
        "",
        "streamfunnel demo",
        f"  broker    {bootstrap}",
        f"  worker    http://127.0.0.1:{plan.web_port}/health  (log {worker_log})",
        f"  metrics   http://127.0.0.1:{plan.web_port}/metrics",
        f"  traffic   {plan.rate_per_s:g} events/s of simulated visitors  "
        f"(log {traffic_log})",
        f"  sessions  end {timeout:g} s after their last event, alerts follow "
        f"{lateness:g} s later",
        "Alerts and conversions follow as they are published. Ctrl-C stops it all.",
        "",
    ]
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def _wait(
    children: list[tuple[str, subprocess.Popen[bytes]]], duration_s: float | None
) -> None:
    deadline = None if duration_s is None else time.monotonic() + duration_s
    while deadline is None or time.monotonic() < deadline:
        for name, process in children:
            if process.poll() is not None:
                raise DemoError(f"{name} exited with status {process.returncode}")
        time.sleep(0.5)


def _stop(name: str, process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        logger.warning("%s did not stop within %g s; killing it", name, STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
