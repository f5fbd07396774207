"""Per-partition processing: engine, stream time, state and outputs of one partition.

This is the worker's logic without Faust: it takes messages of one partition of
the internal session-keyed topic, feeds them to a ``FunnelEngine``, and says
what to store and what to publish. ``app`` supplies the Faust table and topics
behind the two small interfaces below; the tests supply in-memory ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Protocol

import orjson

from streamfunnel.config import Config
from streamfunnel.engine import BEGINNING_OF_TIME, LATE, FunnelEngine, decoder_for
from streamfunnel.events import Invalid, parse_timestamp
from streamfunnel.funnel_metrics import FunnelWindows
from streamfunnel.records import ABANDONMENT, MACRO_CONVERSION, Record
from streamfunnel.snapshots import (
    PartitionMark,
    SnapshotError,
    dump_session,
    load_session,
)
from streamfunnel.worker.deadletters import (
    Headers,
    dead_letter_headers,
    header_map,
    source_headers,
)

logger = logging.getLogger(__name__)

# A wake-up message the worker sends into its own quiet partitions: it is
# processed in order with events, so stream time can follow the clock while
# every table write still happens inside stream processing.
TICK: Final = b"\x00tick"
# Table key of a partition's mark; NUL cannot start a session key in practice.
MARK_PREFIX: Final = b"\x00streamfunnel-mark-"

ABANDONMENTS: Final = "abandonments"
CONVERSIONS: Final = "conversions"
METRICS: Final = "metrics"
DEAD_LETTER: Final = "dead_letter"


class SessionStore(Protocol):
    """The partition's slice of the session table."""

    def put(self, key: bytes, value: bytes) -> None: ...
    def delete(self, key: bytes) -> None: ...
    def get(self, key: bytes) -> bytes | None: ...
    def items(self) -> Iterable[tuple[bytes, bytes]]: ...


class PublishObserver(Protocol):
    """Told about records as they leave (``streamfunnel.metrics`` implements it)."""

    def observe_alert(self, due_ms: int, published_ms: int) -> None: ...
    def observe_macro(self, session_start_ms: int, at_ms: int) -> None: ...


@dataclass(frozen=True)
class Incoming:
    """One message of the internal topic."""

    partition: int
    offset: int
    value: bytes
    # As Kafka gave them (pairs or a mapping); read only for a dead letter.
    headers: object


@dataclass(frozen=True)
class Outgoing:
    """One message to publish: ``topic`` is a role (ABANDONMENTS, ...)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None = None


@dataclass
class PartitionCounts:
    redelivered: int = 0
    ticks: int = 0
    recovered_sessions: int = 0
    unreadable_snapshots: int = 0
    published: dict[str, int] = field(default_factory=dict)


def mark_key(partition: int) -> bytes:
    return MARK_PREFIX + str(partition).encode()


class PartitionProcessor:
    """Everything the worker knows about one partition of the session topic."""

    def __init__(
        self,
        partition: int,
        config: Config,
        observer: PublishObserver | None = None,
    ) -> None:
        self.partition = partition
        self.observer = observer
        self.rules = config.rules
        self.idle_after_ms = round(config.worker.idle_after_s * 1000)
        self.windows = FunnelWindows(
            config.rules, round(config.worker.metrics_window_s * 1000), partition
        )
        self.engine = FunnelEngine(
            config.rules, on_session_end=self.windows.session_ended, track_changes=True
        )
        self.decoder = decoder_for(config.rules)
        self.offset = -1
        # Wall-clock times (ms) of the latest event, and of the latest rise of
        # the largest event time: idle stream time runs on from the latter.
        self.last_event_wall_ms = 0
        self.max_ts_wall_ms = 0
        self.counts = PartitionCounts()
        # Event time of the newest event since the last ``take_newest_event_ts``.
        self._newest_ts: int | None = None
        self._stored: set[str] = set()
        self._out: list[Outgoing] = []

    # -- recovery ---------------------------------------------------------------

    def recover(self, store: SessionStore, now_ms: int) -> None:
        """Load this partition's sessions and mark from the table."""
        funnels = len(self.rules.funnels)
        prefix = b"[1," + str(self.partition).encode() + b","
        for key, value in store.items():
            if key.startswith(MARK_PREFIX) or not value.startswith(prefix):
                continue
            try:
                _, session = load_session(value, funnels)
            except SnapshotError:
                self.counts.unreadable_snapshots += 1
                logger.warning(
                    "partition %d: skipped an unreadable snapshot", self.partition
                )
                continue
            self.engine.restore(session)
            self._stored.add(session.key)
        self.counts.recovered_sessions = len(self._stored)

        raw_mark = store.get(mark_key(self.partition))
        if raw_mark is not None:
            try:
                mark = PartitionMark.load(raw_mark)
            except SnapshotError:
                logger.warning("partition %d: unreadable mark ignored", self.partition)
            else:
                self.offset = mark.offset
                self.engine.restore_clock(mark.max_event_ts)
                self.max_ts_wall_ms = mark.wall_ms
                self.windows.load(mark.windows)
        self.last_event_wall_ms = self.max_ts_wall_ms or now_ms
        logger.info(
            "partition %d: recovered %d sessions, resuming after offset %d",
            self.partition,
            len(self._stored),
            self.offset,
        )

    # -- processing -------------------------------------------------------------

    def handle(self, message: Incoming, now_ms: int) -> None:
        """Process one message (an event or a tick), in offset order."""
        if message.offset <= self.offset:
            # Delivered again after a restart or rebalance: already applied.
            self.counts.redelivered += 1
            return
        self.offset = message.offset
        if message.value == TICK:
            self.counts.ticks += 1
            self.follow_clock(now_ms)
            return

        engine = self.engine
        item = self.decoder.decode(message.value)
        if isinstance(item, Invalid):
            # The router validated it; only a changed configuration gets here.
            self._dead(item.reason, item.detail, message)
        else:
            before = engine.max_event_ts
            if engine.ingest(item) == LATE:
                self._dead(LATE, "event time is before stream time", message)
            if engine.max_event_ts > before:
                self.max_ts_wall_ms = now_ms
            if self._newest_ts is None or item.ts > self._newest_ts:
                self._newest_ts = item.ts
        self.last_event_wall_ms = now_ms
        self._collect(now_ms)

    def follow_clock(self, now_ms: int) -> None:
        """On a quiet partition, let stream time run on with the wall clock.

        Only after ``idle_after_s`` without events, so that data replayed faster
        than real time is ordered by its own event times alone.
        """
        engine = self.engine
        if engine.max_event_ts == BEGINNING_OF_TIME:
            return
        if now_ms - self.last_event_wall_ms < self.idle_after_ms:
            return
        elapsed = max(0, now_ms - self.max_ts_wall_ms)
        engine.advance_to(
            engine.max_event_ts + elapsed - engine.rules.allowed_lateness_ms
        )
        self._collect(now_ms)

    def is_idle(self, now_ms: int) -> bool:
        return now_ms - self.last_event_wall_ms >= self.idle_after_ms

    def take_newest_event_ts(self) -> int | None:
        """Event time of the newest event handled since the last call, if any."""
        newest, self._newest_ts = self._newest_ts, None
        return newest

    def _collect(self, now_ms: int) -> None:
        engine = self.engine
        if engine.outbox:
            for record in engine.take():
                self._publish(record, now_ms)
        for record in self.windows.close(engine.stream_time):
            self._out.append(
                Outgoing(METRICS, str(self.partition).encode(), orjson.dumps(record))
            )

    def _publish(self, record: Record, now_ms: int) -> None:
        type_ = record["type"]
        role = ABANDONMENTS if type_ == ABANDONMENT else CONVERSIONS
        if self.observer is not None:
            self._observe(self.observer, type_, record, now_ms)
        self._out.append(
            Outgoing(role, str(record["session_key"]).encode(), orjson.dumps(record))
        )

    def _observe(
        self, observer: PublishObserver, type_: str, record: Record, now_ms: int
    ) -> None:
        # Records carry ISO times only; parsing them costs microseconds, and
        # only alerts and macro conversions, a small share of events, pay it.
        if type_ == ABANDONMENT:
            detected = parse_timestamp(record["detected_at"])
            if detected is not None:
                due = detected + self.rules.allowed_lateness_ms
                observer.observe_alert(due, now_ms)
        elif type_ == MACRO_CONVERSION:
            at = parse_timestamp(record["at"])
            # The session id is "<key>:<start ms>" (sessions.session_id_for).
            start = str(record["session_id"]).rpartition(":")[2]
            if at is not None and start.isdigit():
                observer.observe_macro(int(start), at)

    def _dead(self, reason: str, detail: str, message: Incoming) -> None:
        source = list(header_map(message.headers).items()) or source_headers(
            "", message.partition, message.offset
        )
        self._out.append(
            Outgoing(
                DEAD_LETTER,
                None,
                message.value,
                dead_letter_headers(reason, detail, source),
            )
        )

    # -- results ----------------------------------------------------------------

    def persist(self, store: SessionStore, now_ms: int) -> int:
        """Write every session changed since the last call; returns how many."""
        sessions = self.engine.sessions
        written = 0
        for key in self.engine.take_changes():
            session = sessions.get(key)
            if session is not None:
                store.put(key.encode(), dump_session(session, self.partition))
                self._stored.add(key)
            elif key in self._stored:
                # A tombstone in the changelog: ended sessions leave no state.
                store.delete(key.encode())
                self._stored.discard(key)
            written += 1
        mark = PartitionMark(
            self.partition,
            self.offset,
            self.engine.max_event_ts,
            self.max_ts_wall_ms or now_ms,
            self.windows.dump(),
        )
        store.put(mark_key(self.partition), mark.dump())
        return written

    def drain(self) -> list[Outgoing]:
        out, self._out = self._out, []
        for message in out:
            self.counts.published[message.topic] = (
                self.counts.published.get(message.topic, 0) + 1
            )
        return out
