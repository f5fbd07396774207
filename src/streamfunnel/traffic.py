"""Live simulated traffic: the simulator's lines sent to Kafka at a chosen pace.

Without a rate, a line is due when the simulator says it arrives: sessions
start at ``SimulationSettings.sessions_per_s`` and visitors read and click at
human speed. With ``rate_per_s`` the n-th line is due n / rate seconds after
the start, and sessions start at the rate divided by the mean number of lines
per session, which keeps simulated reading times close to real ones at any
rate. ``pacing`` holds the schedule and says when the sender cannot keep up.

Event time follows the wall clock. Each line's timestamp becomes the moment it
is sent, less the delay the simulator gave it, so late events stay exactly as
late as simulated, and a duplicate is still a byte-for-byte copy of the line it
repeats. Broken lines stay broken; those without a readable timestamp go out as
simulated.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any, Final, Protocol

import orjson

from streamfunnel import events as ev
from streamfunnel.connection import (
    CONNECT_TIMEOUT_S,
    check_topic,
    client_options,
    close,
    connect,
)
from streamfunnel.engine import DUPLICATE
from streamfunnel.errors import BrokerError, ConfigError
from streamfunnel.pacing import (
    KeepUpCheck,
    Pacer,
    Progress,
    RateMeter,
    format_progress,
)
from streamfunnel.settings import KafkaSettings
from streamfunnel.simulation import (
    VALID,
    Arrival,
    SimulationSettings,
    lines_per_session,
    simulate_arrivals,
)
from streamfunnel.visitors import MAX_RESEND_DELAY_MS

logger = logging.getLogger(__name__)

KEY_BY_NONE: Final = "none"
KEY_BY_SESSION: Final = "session"
KEY_BY: Final = (KEY_BY_NONE, KEY_BY_SESSION)

# What is still in flight when sending stops is delivered within this, or the
# run fails: aiokafka gives up on a batch after its request timeout (40 s).
FLUSH_TIMEOUT_S: Final = 60.0
# In the client id, so that broker logs tell this producer from the worker.
CLIENT_ROLE: Final = "simulate"
# A few milliseconds fill batches at high rates and are invisible at low ones.
LINGER_MS: Final = 5
# Waking up more often than this costs more than it gains: lines that fall due
# meanwhile go out together in the next batch, on the same schedule.
MIN_SLEEP_S: Final = 0.002
MAX_SLEEP_S: Final = 0.05
# Lines between two yields to the event loop, so that the producer's own task
# gets to send batches while a backlog is worked off.
BATCH_LINES: Final = 500
# How long to remember an event's live timestamp for its duplicates.
DUPLICATE_WINDOW_MS: Final = MAX_RESEND_DELAY_MS + 2000


# -- lines for sending now ---------------------------------------------------


def session_key(doc: dict[str, Any]) -> str | None:
    """The session key of an event: its session id, else anonymous id, else user id."""
    for name in ev.IDENTITY_FIELDS:
        value = doc.get(name)
        if type(value) is str and value:
            return value
    return None


class LiveStamps:
    """Turns simulated lines into Kafka messages sent now: wall-clock timestamps.

    Keys are the session key with ``key_by="session"``, else none at all.
    """

    def __init__(self, key_by: str) -> None:
        self.key_by_session = key_by == KEY_BY_SESSION
        # Live timestamps of recent valid events by id, so that a duplicate
        # gets its original's and stays a byte-for-byte copy of what was sent.
        self._stamped: dict[str, int] = {}
        self._order: deque[tuple[int, str]] = deque()

    def prepare(self, arrival: Arrival, send_ms: int) -> tuple[bytes | None, bytes]:
        """The key and value to send ``arrival``'s line at ``send_ms``."""
        arrival_ms, line, label = arrival
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None, line
        if type(doc) is not dict:
            return None, line
        key = session_key(doc) if self.key_by_session else None
        key_bytes = None if key is None else key.encode()
        stamp = doc.get("timestamp")
        simulated_ms = ev.parse_timestamp(stamp)
        if simulated_ms is None:
            return key_bytes, line

        event_id = doc.get("event_id")
        if type(event_id) is not str:
            event_id = ""
        live_ms = self._stamped.get(event_id) if label == DUPLICATE else None
        if live_ms is None:
            live_ms = send_ms - max(0, arrival_ms - simulated_ms)
        if label == VALID:
            self._remember(arrival_ms, event_id, live_ms)
        doc["timestamp"] = (
            live_ms if type(stamp) is int else ev.format_timestamp(live_ms)
        )
        return key_bytes, orjson.dumps(doc)

    def _remember(self, arrival_ms: int, event_id: str, live_ms: int) -> None:
        order = self._order
        while order and order[0][0] < arrival_ms - DUPLICATE_WINDOW_MS:
            self._stamped.pop(order.popleft()[1], None)
        self._stamped[event_id] = live_ms
        order.append((arrival_ms, event_id))


# -- sending -----------------------------------------------------------------


@dataclass(frozen=True)
class TrafficPlan:
    """Where the traffic goes, how fast, and when it stops.

    ``duration_s`` is wall seconds of sending. With neither it nor ``sessions``
    the traffic stops only when asked to.
    """

    topic: str
    rate_per_s: float | None = None
    sessions: int | None = None
    duration_s: float | None = None
    key_by: str = KEY_BY_NONE
    linger_ms: int = LINGER_MS
    connect_timeout_s: float = CONNECT_TIMEOUT_S

    def __post_init__(self) -> None:
        if not self.topic:
            raise ConfigError("traffic.topic", "must be a topic name")
        if self.rate_per_s is not None and not self.rate_per_s > 0:
            raise ConfigError("traffic.rate_per_s", "must be positive")
        if self.sessions is not None and self.sessions < 1:
            raise ConfigError("traffic.sessions", "must be at least 1")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError("traffic.duration_s", "must be positive")
        if self.sessions is not None and self.duration_s is not None:
            raise ConfigError("traffic.duration_s", "goes without traffic.sessions")
        if self.key_by not in KEY_BY:
            raise ConfigError("traffic.key_by", f"must be one of {', '.join(KEY_BY)}")
        if self.linger_ms < 0:
            raise ConfigError("traffic.linger_ms", "must not be negative")
        if not self.connect_timeout_s > 0:
            raise ConfigError("traffic.connect_timeout_s", "must be positive")


@dataclass(frozen=True)
class TrafficResult:
    sent: int
    elapsed_s: float
    # Schedule time given up after stalls; 0 when the sender kept its pace.
    slipped_s: float
    # Whether the sender warned that it could not keep up.
    fell_behind: bool

    @property
    def rate_per_s(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


def summary(result: TrafficResult, topic: str) -> str:
    return (
        f"sent {result.sent:,} events to {topic} in {result.elapsed_s:,.1f} s "
        f"({result.rate_per_s:,.0f} events/s)"
    )


class Producer(Protocol):
    """The part of ``AIOKafkaProducer`` the sender uses."""

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[Any]: ...


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Clock:
    """The clocks the sender reads; tests pass fake ones."""

    monotonic_s: Callable[[], float] = time.monotonic
    wall_ms: Callable[[], int] = _wall_ms
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


SYSTEM_CLOCK: Final = Clock()


def live_settings(
    settings: SimulationSettings, rate_per_s: float | None, now_ms: int
) -> SimulationSettings:
    """The simulation for live traffic: starting now, sessions matching the rate."""
    live = replace(settings, start_ms=now_ms)
    if rate_per_s is None:
        return live
    return replace(live, sessions_per_s=rate_per_s / lines_per_session(live))


async def send_lines(
    producer: Producer,
    arrivals: Iterator[Arrival],
    plan: TrafficPlan,
    start_ms: int,
    *,
    clock: Clock = SYSTEM_CLOCK,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> TrafficResult:
    """Send ``arrivals`` (simulated from ``start_ms``) on the plan's schedule."""
    rate = plan.rate_per_s
    stamps = LiveStamps(plan.key_by)
    meter = RateMeter()
    keep_up = KeepUpCheck()
    in_flight: deque[asyncio.Future[Any]] = deque()
    started_s = clock.monotonic_s()
    pacer = Pacer(started_s)
    deadline_s = math.inf if plan.duration_s is None else started_s + plan.duration_s
    sent = 0
    upcoming = next(arrivals, None)
    while upcoming is not None and not (stop is not None and stop.is_set()):
        now_s = clock.monotonic_s()
        if now_s >= deadline_s:
            break
        place_s = wait_s = 0.0
        for _ in range(BATCH_LINES):
            place_s = sent / rate if rate else (upcoming[0] - start_ms) / 1000
            wait_s = pacer.wait_s(place_s, now_s)
            if wait_s > 0:
                break
            send_ms = clock.wall_ms()
            key, value = stamps.prepare(upcoming, send_ms)
            in_flight.append(
                await producer.send(plan.topic, value, key=key, timestamp_ms=send_ms)
            )
            sent += 1
            upcoming = next(arrivals, None)
            if upcoming is None:
                break
        _check_deliveries(in_flight, plan.topic)

        meter.record(now_s, sent, pacer.progress_s(place_s, now_s))
        if progress is not None and progress.due(now_s):
            progress.show(format_progress(sent, meter.rate_per_s(), now_s - started_s))
        if keep_up.too_slow(now_s, meter.pace()):
            _warn_slow(progress, rate, meter)

        if wait_s > 0:
            nap_s = min(max(wait_s, MIN_SLEEP_S), MAX_SLEEP_S, deadline_s - now_s)
            await clock.sleep(max(nap_s, 0.0))
        else:
            await clock.sleep(0)
    elapsed_s = clock.monotonic_s() - started_s

    if in_flight:
        _, late = await asyncio.wait(list(in_flight), timeout=FLUSH_TIMEOUT_S)
        if late:
            raise BrokerError(
                f"{plan.topic}: {len(late)} events not delivered within "
                f"{FLUSH_TIMEOUT_S:g} s"
            )
        _check_deliveries(in_flight, plan.topic)
    return TrafficResult(sent, elapsed_s, pacer.slipped_s, keep_up.warned)


def _check_deliveries(in_flight: deque[asyncio.Future[Any]], topic: str) -> None:
    while in_flight and in_flight[0].done():
        failure = in_flight.popleft().exception()
        if failure is not None:
            raise BrokerError(f"sending to {topic} failed: {failure}") from failure


def _warn_slow(progress: Progress | None, rate: float | None, meter: RateMeter) -> None:
    pace = meter.pace() or 0.0
    if rate is None:
        message = (
            f"cannot keep up with the simulated traffic: sending at {pace:.0%} "
            "of its pace"
        )
    else:
        message = (
            f"cannot keep up with {rate:,.0f} events/s: sending "
            f"{meter.rate_per_s():,.0f} events/s; the producer, the broker or "
            "this machine is the limit"
        )
    if progress is None:
        logger.warning("%s", message)
    else:
        progress.warn(message)


async def produce_traffic(
    kafka: KafkaSettings,
    simulation: SimulationSettings,
    plan: TrafficPlan,
    *,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> TrafficResult:
    """Simulate traffic and send it live to ``plan.topic``; see the module doc."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    await check_topic(kafka, plan.topic, CLIENT_ROLE, plan.connect_timeout_s)
    producer = AIOKafkaProducer(
        acks="all", linger_ms=plan.linger_ms, **client_options(kafka, CLIENT_ROLE)
    )
    await connect(producer, kafka, plan.connect_timeout_s)
    try:
        settings = live_settings(simulation, plan.rate_per_s, _wall_ms())
        logger.debug(
            "simulating %s traffic, seed %s, %.3g sessions/s",
            settings.industry,
            settings.seed,
            settings.sessions_per_s,
        )
        arrivals = simulate_arrivals(settings, count=plan.sessions)
        # The first sessions take a moment to build; build them before the
        # schedule starts, so that it does not begin behind.
        first = next(arrivals, None)
        lines = chain([] if first is None else [first], arrivals)
        try:
            result = await send_lines(
                producer, lines, plan, settings.start_ms, progress=progress, stop=stop
            )
        except KafkaError as exc:
            raise BrokerError(f"sending to {plan.topic} failed: {exc}") from exc
    finally:
        await close(producer)
    return result
