"""The Prometheus bundle reads back what a partition processor counted."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streamfunnel.config import Config, load_config
from streamfunnel.metrics import WorkerMetrics
from streamfunnel.tally import Tally
from streamfunnel.worker.processing import Incoming, PartitionProcessor
from tests.unit.builders import SECOND, T0, raw

TIMEOUT_S = 3.0
LATENESS_S = 1.0


@pytest.fixture
def config() -> Config:
    return load_config(
        env={
            "STREAMFUNNEL_SESSION_TIMEOUT_S": str(TIMEOUT_S),
            "STREAMFUNNEL_SESSION_ALLOWED_LATENESS_S": str(LATENESS_S),
        }
    )


class Harness:
    """One worker's metrics over partition processors fed by hand."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self.processors: dict[int, PartitionProcessor] = {}
        self.router = Tally()
        self.now_ms = T0
        self.metrics = WorkerMetrics(
            self.registry,
            config.rules,
            lambda: self.processors,
            self.router,
            clock=lambda: self.now_ms / 1000,
        )
        self._offsets: dict[int, int] = {}

    def processor(self, partition: int) -> PartitionProcessor:
        if partition not in self.processors:
            self.processors[partition] = PartitionProcessor(
                partition, self.config, self.metrics
            )
        return self.processors[partition]

    def feed(self, partition: int, *docs: dict[str, Any]) -> None:
        processor = self.processor(partition)
        for doc in docs:
            offset = self._offsets.get(partition, -1) + 1
            self._offsets[partition] = offset
            processor.handle(
                Incoming(partition, offset, orjson.dumps(doc), []), self.now_ms
            )
        processor.drain()
        newest = processor.take_newest_event_ts()
        if newest is not None:
            self.metrics.observe_batch(newest, self.now_ms)

    def value(self, metric: str, /, **labels: str) -> float | None:
        return self.registry.get_sample_value(metric, labels)


def abandoned_cart(session: str, at_ms: int) -> list[dict[str, Any]]:
    return [
        raw("page_view", at_ms, session),
        raw("add_to_cart", at_ms + 100, session, product_id="p", price=5),
    ]


def purchase(session: str, at_ms: int) -> list[dict[str, Any]]:
    return [
        raw("page_view", at_ms, session),
        raw("add_to_cart", at_ms + 100, session, product_id="p", price=5),
        raw("checkout_start", at_ms + 200, session),
        raw("purchase", at_ms + 2 * SECOND, session),
    ]


def test_counters_come_from_the_tallies(config: Config) -> None:
    h = Harness(config)
    h.router.invalid["malformed_json"] = 2
    h.feed(0, *abandoned_cart("a", T0), *purchase("b", T0 + 50))
    # Far enough ahead that both sessions end; the late event is dead-lettered.
    h.feed(0, raw("page_view", T0 + 20 * SECOND, "c"), raw("page_view", T0, "late"))

    assert h.value("streamfunnel_events_consumed_total", type="page_view") == 3
    assert h.value("streamfunnel_events_consumed_total", type="purchase") == 1
    assert h.value("streamfunnel_invalid_events_total", reason="malformed_json") == 2
    # Every reason is exported from the start, at zero.
    assert h.value("streamfunnel_invalid_events_total", reason="not_utf8") == 0
    assert h.value("streamfunnel_late_events_total") == 1
    # Session "c" still waits out the allowed lateness: not started yet.
    assert h.value("streamfunnel_sessions_started_total") == 2
    assert h.value("streamfunnel_sessions_ended_total", outcome="abandoned") == 1
    assert h.value("streamfunnel_sessions_ended_total", outcome="converted") == 1
    assert h.value("streamfunnel_abandonments_total", kind="cart") == 1
    assert h.value("streamfunnel_abandonments_total", kind="checkout") == 0
    assert h.value("streamfunnel_micro_conversions_total", name="add_to_cart") == 2
    assert h.value("streamfunnel_macro_conversions_total", name="purchase") == 1
    assert h.value("streamfunnel_sequences_total", name="cart_to_checkout") == 1
    assert h.value("streamfunnel_alerts_published_total") == 1
    # Two invalid at the router, one late event in the processor.
    assert h.value("streamfunnel_dead_letters_published_total") == 3

    def step(name: str) -> float | None:
        return h.value(
            "streamfunnel_funnel_step_sessions_total", funnel="ecommerce", step=name
        )

    assert [step(s) for s in ("visit", "add_to_cart", "checkout_start")] == [2, 2, 1]
    assert step("purchase") == 1
    # The order of the steps, for the step conversion recording rule.
    assert (
        h.value(
            "streamfunnel_funnel_step_info",
            funnel="ecommerce",
            step="checkout_start",
            previous_step="add_to_cart",
        )
        == 1
    )


def test_counters_survive_a_revoked_partition(config: Config) -> None:
    h = Harness(config)
    h.feed(1, *abandoned_cart("a", T0), raw("page_view", T0 + 20 * SECOND, "b"))
    before = h.value("streamfunnel_events_consumed_total", type="page_view")
    assert h.value("streamfunnel_abandonments_total", kind="cart") == 1

    h.metrics.retire(h.processors.pop(1))
    assert h.value("streamfunnel_events_consumed_total", type="page_view") == before
    assert h.value("streamfunnel_abandonments_total", kind="cart") == 1
    assert h.value("streamfunnel_alerts_published_total") == 1

    # Reassigned later: the new processor's counts add to the retained ones.
    h.feed(1, *abandoned_cart("c", T0 + 30 * SECOND))
    assert h.value("streamfunnel_events_consumed_total", type="page_view") == 3


def test_gauges_follow_sessions_and_stream_time(config: Config) -> None:
    h = Harness(config)
    h.processor(0)
    h.feed(1, raw("page_view", T0, "a"), raw("page_view", T0 + 500, "b"))
    h.now_ms = T0 + 10 * SECOND

    assert h.value("streamfunnel_active_sessions") == 2
    # Partition 0 has no events yet, so it has no lag.
    assert h.value("streamfunnel_stream_time_lag_seconds", partition="0") is None
    lag = h.value("streamfunnel_stream_time_lag_seconds", partition="1")
    assert lag == pytest.approx(10.0 - 0.5 + LATENESS_S)


def test_histograms_observe_alerts_conversions_and_delay(config: Config) -> None:
    h = Harness(config)
    h.feed(0, *abandoned_cart("a", T0), *purchase("b", T0))
    h.now_ms = T0 + 30 * SECOND
    h.feed(0, raw("page_view", T0 + 20 * SECOND, "c"))

    # Session "a" ended at its last event plus the timeout, due after lateness.
    due_ms = T0 + 100 + round(TIMEOUT_S * 1000) + round(LATENESS_S * 1000)
    latency = (h.now_ms - due_ms) / 1000
    assert h.value("streamfunnel_alert_latency_seconds_count") == 1
    assert h.value("streamfunnel_alert_latency_seconds_sum") == pytest.approx(latency)
    assert h.value("streamfunnel_time_to_macro_conversion_seconds_count") == 1
    assert h.value("streamfunnel_time_to_macro_conversion_seconds_sum") == 2.0
    # One observation per batch: 2 s after the first (T0 + 2 s) and 10 s.
    assert h.value("streamfunnel_event_processing_delay_seconds_count") == 2
    delay = h.value("streamfunnel_event_processing_delay_seconds_sum")
    assert delay == pytest.approx(0.0 + 10.0)


def test_no_label_carries_a_session_or_a_person(config: Config) -> None:
    h = Harness(config)
    h.feed(0, *abandoned_cart("person@example.com", T0))
    h.feed(0, raw("page_view", T0 + 20 * SECOND, "user-42"))
    for family in h.registry.collect():
        for sample in family.samples:
            values = " ".join(sample.labels.values())
            assert "example.com" not in values
            assert "user-42" not in values


def test_each_registry_is_independent(config: Config) -> None:
    # Two bundles in one process (two workers in a test) must not clash.
    first = Harness(config)
    second = Harness(dataclasses.replace(config))
    first.feed(0, raw("page_view", T0, "a"))
    assert second.value("streamfunnel_events_consumed_total", type="page_view") == 0
    assert first.value("streamfunnel_events_consumed_total", type="page_view") == 1
