"""A real Prometheus scrapes a live worker, and every shipped query answers.

The worker gets scripted traffic with known outcomes; Prometheus (Debian's
binary) scrapes it every second and evaluates deploy/prometheus/rules.yml. Then
every PromQL expression of the Grafana dashboard and of the rules goes through
Prometheus' HTTP API: a misspelled metric gives an empty answer and fails here.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.kafka_helpers import create_topics as create_on_broker
from tests.integration.kafka_helpers import kafka_producer
from tests.integration.test_worker import event_line
from tests.integration.worker_process import WorkerProcess, WorkerTopics, worker_topics
from tests.local_broker import free_ports
from tests.prometheus_tool import (
    PROMETHEUS,
    RULES_FILE,
    binary,
    dashboard_exprs,
    needs_prometheus,
    rules,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio, needs_prometheus]

SCRAPE_INTERVAL = "1s"
READY_TIMEOUT_S = 30.0
# Sessions end 3 s after their last event, alerts leave 1 s after that.
OUTCOME_TIMEOUT_S = 40.0

CART_SESSIONS = 3
CHECKOUT_SESSIONS = 1
BUYING_SESSIONS = 2
INVALID_LINES = [b"{not json", b"[1, 2, 3]"]


class Prometheus:
    """One Prometheus server on a free loopback port, scraping one worker."""

    def __init__(self, workdir: Path, worker_port: int) -> None:
        self.port = free_ports(1)[0]
        self.workdir = workdir
        config = {
            "global": {
                "scrape_interval": SCRAPE_INTERVAL,
                "evaluation_interval": SCRAPE_INTERVAL,
            },
            "rule_files": [str(RULES_FILE)],
            "scrape_configs": [
                {
                    "job_name": "streamfunnel",
                    "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}],
                }
            ],
        }
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    binary(PROMETHEUS, "prometheus"),
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log_tail()}")
            try:
                ready = f"http://127.0.0.1:{self.port}/-/ready"
                with urllib.request.urlopen(ready, timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)

    def url(self, path: str, **params: str) -> str:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return f"http://127.0.0.1:{self.port}{path}{query}"

    def api(self, path: str, **params: str) -> dict[str, Any]:
        url = self.url(path, **params)
        try:
            # url() always builds an http://127.0.0.1 address.
            with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310
                doc: dict[str, Any] = json.loads(r.read())
        except urllib.error.HTTPError as error:
            # Bad PromQL is a 400 with the reason in the body.
            doc = json.loads(error.read())
        return doc

    def query(self, expr: str) -> list[dict[str, Any]]:
        doc = self.api("/api/v1/query", query=expr)
        assert doc["status"] == "success", f"{expr}: {doc.get('error')}"
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture
def topics(unique_name: Callable[[str], str]) -> WorkerTopics:
    return worker_topics(unique_name)


@pytest.fixture
def worker(
    kafka_bootstrap: str,
    topics: WorkerTopics,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> Iterator[WorkerProcess]:
    asyncio.run(create_on_broker(kafka_bootstrap, [topics.source], partitions=1))
    process = WorkerProcess(
        kafka_bootstrap,
        topics,
        unique_name("app"),
        tmp_path / "state",
        tmp_path / "worker.log",
        session_timeout_s="3",
        session_allowed_lateness_s="1",
    )
    process.start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture
def prometheus(worker: WorkerProcess, tmp_path: Path) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path, worker.web_port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def traffic(now_ms: int) -> list[bytes]:
    lines = []
    cart = {"items": [{"item_id": "sku-1", "quantity": 1, "price": 20.0}]}
    for i in range(CART_SESSIONS):
        s = f"cart-{i}"
        lines.append(event_line("page_view", now_ms + i, s, f"{s}-a"))
        lines.append(event_line("add_to_cart", now_ms + 10 + i, s, f"{s}-b", **cart))
    for i in range(CHECKOUT_SESSIONS):
        s = f"checkout-{i}"
        lines.append(event_line("add_to_cart", now_ms + i, s, f"{s}-a", **cart))
        lines.append(event_line("checkout_start", now_ms + 20 + i, s, f"{s}-b"))
    for i in range(BUYING_SESSIONS):
        s = f"buy-{i}"
        lines.append(event_line("page_view", now_ms + i, s, f"{s}-a"))
        lines.append(event_line("add_to_cart", now_ms + 10 + i, s, f"{s}-b", **cart))
        lines.append(event_line("checkout_start", now_ms + 20 + i, s, f"{s}-c"))
        lines.append(event_line("purchase", now_ms + 400 + i, s, f"{s}-d"))
    lines.append(event_line("page_view", now_ms + 30, "bounce", "bounce-a"))
    return lines + INVALID_LINES


async def test_every_dashboard_and_rule_query_answers_with_the_traffic_sent(
    kafka_bootstrap: str,
    topics: WorkerTopics,
    worker: WorkerProcess,
    prometheus: Prometheus,
) -> None:
    async with kafka_producer(kafka_bootstrap) as producer:
        for line in traffic(int(time.time() * 1000)):
            await producer.send_and_wait(topics.source, line)

    # Every session has ended and been scraped; then a few more scrapes and
    # rule evaluations, so that rates span samples from after the traffic.
    alerts = CART_SESSIONS + CHECKOUT_SESSIONS
    deadline = time.monotonic() + OUTCOME_TIMEOUT_S
    while prometheus.value("sum(streamfunnel_sessions_ended_total)") != 7:
        assert time.monotonic() < deadline, worker.log_tail()
        await asyncio.sleep(0.5)
    while prometheus.value("sum(streamfunnel_alerts_published_total)") != alerts:
        assert time.monotonic() < deadline, worker.log_tail()
        await asyncio.sleep(0.5)
    await asyncio.sleep(4)

    # Everything shipped parses and has data. Alerts may rightly be empty.
    for expr in dashboard_exprs():
        assert prometheus.query(expr), f"no data for dashboard query {expr}"
    for rule in rules():
        result = prometheus.query(rule["expr"])
        if "record" in rule:
            assert result, f"no data for rule {rule['record']}: {rule['expr']}"
            assert prometheus.query(rule["record"]), f"{rule['record']} not recorded"
    groups = prometheus.api("/api/v1/rules")["data"]["groups"]
    assert [r for g in groups for r in g["rules"] if r["health"] == "err"] == []

    # The numbers are the traffic's.
    def total(selector: str) -> float | None:
        return prometheus.value(f"sum({selector})")

    assert total('up{job="streamfunnel"}') == 1
    assert total('streamfunnel_abandonments_total{kind="cart"}') == CART_SESSIONS
    assert total('streamfunnel_abandonments_total{kind="checkout"}') == 1
    assert total("streamfunnel_alerts_published_total") == alerts
    assert total("streamfunnel_macro_conversions_total") == BUYING_SESSIONS
    assert total("streamfunnel_sessions_started_total") == 7
    assert total('streamfunnel_sessions_ended_total{outcome="converted"}') == 2
    assert total('streamfunnel_sessions_ended_total{outcome="abandoned"}') == 4
    assert total('streamfunnel_sessions_ended_total{outcome="bounced"}') == 1
    assert total("streamfunnel_invalid_events_total") == len(INVALID_LINES)
    assert total('streamfunnel_invalid_events_total{reason="malformed_json"}') == 1
    assert total("streamfunnel_dead_letters_published_total") == len(INVALID_LINES)
    assert total('streamfunnel_events_consumed_total{type="purchase"}') == 2
    carted = CART_SESSIONS + CHECKOUT_SESSIONS + BUYING_SESSIONS
    steps = {
        "visit": 7,
        "add_to_cart": carted,
        "checkout_start": CHECKOUT_SESSIONS + BUYING_SESSIONS,
        "purchase": BUYING_SESSIONS,
    }
    for step, count in steps.items():
        selector = f'streamfunnel_funnel_step_sessions_total{{step="{step}"}}'
        assert total(selector) == count, step
    assert total("streamfunnel_alert_latency_seconds_count") == alerts
    assert total("streamfunnel_time_to_macro_conversion_seconds_count") == 2
    assert total("streamfunnel_active_sessions") == 0
