"""The worker's Prometheus metrics, as one bundle against an injected registry.

Counters are not incremented per event: the engine already keeps plain-dict
tallies (``streamfunnel.tally``), and a collector reads them at scrape time, so
the hot path pays nothing for metrics. A partition processor dropped on a
rebalance takes its tally with it, so ``retire`` folds its counts into a
retained total first; without that a counter would go down, which Prometheus
reads as a restart and turns into a bogus rate.

Histograms are observed where records leave a partition processor, which is
rare next to events, and the event-to-processing delay once per batch.

Every label is bounded: a canonical event type, a reason, a rule name from the
configuration, a funnel step, a partition number. Never a session or a person.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Final, TypeVar

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streamfunnel.abandonment import KINDS
from streamfunnel.engine import BEGINNING_OF_TIME, OUTCOMES
from streamfunnel.events import INVALID_REASONS
from streamfunnel.rules import Rules
from streamfunnel.tally import Tally, bump
from streamfunnel.worker.processing import (
    ABANDONMENTS,
    DEAD_LETTER,
    PartitionProcessor,
)

logger = logging.getLogger(__name__)

PREFIX: Final = "streamfunnel"

# Alerts are due seconds after a session's end; a backfill of old traffic
# gives latencies of hours, which the top buckets keep apart from +Inf.
LATENCY_BUCKETS_S: Final = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    3600.0,
)
# Sessions run for minutes (the default timeout is 30 min), so do conversions.
CONVERSION_BUCKETS_S: Final = (
    1.0,
    5.0,
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1200.0,
    1800.0,
    3600.0,
)

K = TypeVar("K")
Processors = Callable[[], Mapping[int, PartitionProcessor]]


def _fold(total: Tally, part: Tally) -> None:
    _add(total.events, part.events)
    _add(total.invalid, part.invalid)
    _add(total.sessions_ended, part.sessions_ended)
    _add(total.micro, part.micro)
    _add(total.macro, part.macro)
    _add(total.sequences, part.sequences)
    _add(total.abandonments, part.abandonments)
    _add(total.funnel_reached, part.funnel_reached)
    total.late += part.late
    total.duplicates += part.duplicates
    total.sessions_started += part.sessions_started
    total.ignored_cart_lines += part.ignored_cart_lines


def _add(total: dict[K, int], part: Mapping[K, int]) -> None:
    for key, count in part.items():
        bump(total, key, count)


class WorkerMetrics:
    """Everything the worker exports, registered in ``registry``.

    ``processors`` returns the live partition processors (the worker's dict);
    ``router_tally`` is the router agent's, which counts invalid input.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        rules: Rules,
        processors: Processors,
        router_tally: Tally,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.rules = rules
        self.processors = processors
        self.router_tally = router_tally
        self.clock = clock
        self.retired = Tally()
        self.retired_published: dict[str, int] = {}
        self.alert_latency = Histogram(
            f"{PREFIX}_alert_latency_seconds",
            "Wall-clock time an abandonment alert was published after it was due "
            "(session end plus allowed lateness).",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.event_delay = Histogram(
            f"{PREFIX}_event_processing_delay_seconds",
            "Wall clock minus event time of the newest event of each batch, "
            "when the batch is processed.",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.time_to_macro = Histogram(
            f"{PREFIX}_time_to_macro_conversion_seconds",
            "Event time from a session's first event to its macro conversion.",
            buckets=CONVERSION_BUCKETS_S,
            registry=registry,
        )
        registry.register(_TallyCollector(self))

    # -- called by the worker ---------------------------------------------------

    def retire(self, processor: PartitionProcessor) -> None:
        """Keep a dropped processor's counts, so that counters never go down."""
        _fold(self.retired, processor.engine.tally)
        _add(self.retired_published, processor.counts.published)

    def observe_alert(self, due_ms: int, published_ms: int) -> None:
        self.alert_latency.observe(max(0.0, (published_ms - due_ms) / 1000))

    def observe_macro(self, session_start_ms: int, at_ms: int) -> None:
        self.time_to_macro.observe(max(0.0, (at_ms - session_start_ms) / 1000))

    def observe_batch(self, newest_event_ms: int, processed_ms: int) -> None:
        self.event_delay.observe(max(0.0, (processed_ms - newest_event_ms) / 1000))

    # -- read by the collector --------------------------------------------------

    def totals(self) -> tuple[Tally, dict[str, int]]:
        """The sum of retired and live tallies, and of published counts."""
        tally = Tally()
        published: dict[str, int] = {}
        _fold(tally, self.retired)
        _fold(tally, self.router_tally)
        _add(published, self.retired_published)
        for processor in list(self.processors().values()):
            _fold(tally, processor.engine.tally)
            _add(published, processor.counts.published)
        return tally, published


class _TallyCollector(Collector):
    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        rules = m.rules
        tally, published = m.totals()

        yield _labelled(
            "events_consumed",
            "Valid events taken in, by canonical type (or other).",
            "type",
            tally.events,
        )
        # The router's dead letters are its invalid events; the processors count
        # their own (late events, mostly) as they publish them.
        invalid = dict.fromkeys(INVALID_REASONS, 0)
        _add(invalid, tally.invalid)
        yield _labelled(
            "invalid_events", "Events rejected by validation.", "reason", invalid
        )
        yield _single("late_events", "Events older than stream time.", tally.late)
        yield _single(
            "duplicate_events",
            "Events ignored because their id was already seen in the session.",
            tally.duplicates,
        )
        micro = dict.fromkeys((c.name for c in rules.micro), 0)
        yield _labelled(
            "micro_conversions",
            "Micro conversions reached, by name.",
            "name",
            _merged(micro, tally.micro),
        )
        yield _labelled(
            "macro_conversions",
            "Macro conversion events, by name.",
            "name",
            _merged({rules.macro_name: 0}, tally.macro),
        )
        sequences = dict.fromkeys((s.name for s in rules.sequences), 0)
        yield _labelled(
            "sequences",
            "Sequences of micro conversions completed, by name.",
            "name",
            _merged(sequences, tally.sequences),
        )
        yield _single("sessions_started", "Sessions started.", tally.sessions_started)
        yield _labelled(
            "sessions_ended",
            "Sessions ended, by outcome.",
            "outcome",
            _merged(dict.fromkeys(OUTCOMES, 0), tally.sessions_ended),
        )
        yield _labelled(
            "abandonments",
            "Abandonments detected, by kind.",
            "kind",
            _merged(dict.fromkeys(KINDS, 0), tally.abandonments),
        )
        yield _single(
            "alerts_published",
            "Abandonment alerts handed to the producer.",
            published.get(ABANDONMENTS, 0),
        )
        yield _single(
            "dead_letters_published",
            "Messages sent to the dead-letter topic (invalid and late events).",
            published.get(DEAD_LETTER, 0) + tally.invalid_total,
        )
        yield _funnel_steps(rules, tally)
        yield _funnel_order(rules)
        yield from _gauges(m)


def _merged(base: dict[str, int], counts: Mapping[str, int]) -> dict[str, int]:
    # Every configured label is present from the first scrape, at zero, so
    # rates and ratios over it have data before the first occurrence.
    _add(base, counts)
    return base


def _single(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", documentation, value=value)


def _labelled(
    name: str, documentation: str, label: str, counts: Mapping[str, int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{PREFIX}_{name}", documentation, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family


def _funnel_steps(rules: Rules, tally: Tally) -> CounterMetricFamily:
    family = CounterMetricFamily(
        f"{PREFIX}_funnel_step_sessions",
        "Sessions that reached each funnel step (each step once per session).",
        labels=["funnel", "step"],
    )
    for funnel in rules.funnels:
        for step in funnel.steps:
            count = tally.funnel_reached.get((funnel.name, step), 0)
            family.add_metric([funnel.name, step], count)
    return family


def _funnel_order(rules: Rules) -> GaugeMetricFamily:
    # PromQL cannot tell which step comes before which; this series (always 1)
    # lets a recording rule divide each step by the one before it.
    family = GaugeMetricFamily(
        f"{PREFIX}_funnel_step_info",
        "Each funnel step after the first, with the step before it; always 1.",
        labels=["funnel", "step", "previous_step"],
    )
    for funnel in rules.funnels:
        for previous, step in itertools.pairwise(funnel.steps):
            family.add_metric([funnel.name, step, previous], 1)
    return family


def _gauges(m: WorkerMetrics) -> Iterator[Metric]:
    now_ms = m.clock() * 1000
    processors = sorted(m.processors().items())
    active = GaugeMetricFamily(
        f"{PREFIX}_active_sessions",
        "Sessions open in this worker's partitions.",
        value=sum(len(p.engine.sessions) for _, p in processors),
    )
    yield active
    lag = GaugeMetricFamily(
        f"{PREFIX}_stream_time_lag_seconds",
        "Wall clock minus stream time, per partition with events.",
        labels=["partition"],
    )
    for partition, processor in processors:
        engine = processor.engine
        if engine.max_event_ts > BEGINNING_OF_TIME:
            lag.add_metric([str(partition)], (now_ms - engine.stream_time) / 1000)
    yield lag
