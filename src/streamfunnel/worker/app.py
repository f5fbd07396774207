"""The Faust application: topics, the session table, agents, ticks, /health, /metrics.

Two agents, each with concurrency 1 (Faust can commit past an in-flight event
with more):

- ``route`` reads the clickstream topics, validates each message and forwards
  it, keyed by session key, to the internal session topic; invalid messages go
  to the dead-letter topic. This is what makes a session's events meet in one
  partition whatever key the producer used.
- ``sessions`` reads the internal topic in batches, runs each partition's
  ``PartitionProcessor`` and writes each changed session to the table once per
  batch. Its offsets are committed only after the batch's table writes and
  outputs were handed to the producer, which Faust flushes before committing.

``/metrics`` serves ``streamfunnel.metrics`` in Prometheus' text format from
the same web server as ``/health``.

A timer sends a tick into every quiet partition this worker owns, so that
stream time follows the clock there and alerts fire on time without traffic.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streamfunnel.config import Config
from streamfunnel.engine import decoder_for
from streamfunnel.events import Invalid
from streamfunnel.metrics import WorkerMetrics
from streamfunnel.tally import Tally, bump
from streamfunnel.worker.deadletters import (
    dead_letter_headers,
    source_headers,
)
from streamfunnel.worker.processing import (
    ABANDONMENTS,
    CONVERSIONS,
    DEAD_LETTER,
    METRICS,
    TICK,
    Incoming,
    Outgoing,
    PartitionProcessor,
)
from streamfunnel.worker.security import faust_credentials

logger = logging.getLogger(__name__)

TABLE_NAME = "sessions"


def _now_ms() -> int:
    return int(time.time() * 1000)


class TableStore:
    """One partition's view of the Faust session table (see SessionStore)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def put(self, key: bytes, value: bytes) -> None:
        self.table[key] = value

    def delete(self, key: bytes) -> None:
        with contextlib.suppress(KeyError):
            del self.table[key]

    def get(self, key: bytes) -> bytes | None:
        value = self.table.get(key)
        return bytes(value) if value is not None else None

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        for key, value in self.table.items():
            yield bytes(key), bytes(value)


class Worker:
    """The Faust app and the per-partition processors it drives."""

    def __init__(
        self, config: Config, registry: CollectorRegistry | None = None
    ) -> None:
        import faust

        self.config = config
        settings = config.worker
        topics = config.topics
        self.started_ms = _now_ms()
        self.processors: dict[int, PartitionProcessor] = {}
        self.router_tally = Tally()
        # A registry of its own rather than the process-wide default, so that a
        # second Worker in one process (tests) registers without clashing.
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = WorkerMetrics(
            self.registry, config.rules, lambda: self.processors, self.router_tally
        )
        self.app = faust.App(
            settings.app_id,
            broker=f"kafka://{config.kafka.bootstrap_servers}",
            broker_credentials=faust_credentials(config.kafka),
            broker_client_id=config.kafka.client_id,
            store="rocksdb://" if settings.store == "rocksdb" else "memory://",
            datadir=str(settings.state_dir),
            topic_partitions=topics.partitions,
            topic_replication_factor=topics.replication_factor,
            processing_guarantee=settings.processing_guarantee,
            consumer_auto_offset_reset="earliest",
            key_serializer="raw",
            value_serializer="raw",
            web_enabled=True,
            web_bind=settings.web_host,
            web_port=settings.web_port,
            # Commit often: everything before a commit is already in the table.
            broker_commit_interval=1.0,
            # Without a linger every send is its own produce request, which
            # caps the worker at a few thousand messages a second. A few ms of
            # batching is invisible next to the allowed lateness.
            producer_linger=0.005,
            producer_max_batch_size=256 * 1024,
        )
        app = self.app
        self.sources = app.topic(
            *topics.inputs, key_serializer="raw", value_serializer="raw"
        )
        self.internal = app.topic(
            f"{settings.app_id}-session-events",
            partitions=topics.partitions,
            internal=True,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.outputs = {
            role: app.topic(name, key_serializer="raw", value_serializer="raw")
            for role, name in (
                (ABANDONMENTS, topics.abandonments),
                (CONVERSIONS, topics.conversions),
                (METRICS, topics.metrics),
                (DEAD_LETTER, topics.dead_letter),
            )
        }
        options = {"driver": "rocksdict"} if settings.store == "rocksdb" else None
        # Keys and values are bytes: the app's raw serializers apply to tables too.
        self.table = app.Table(
            TABLE_NAME,
            partitions=topics.partitions,
            key_type=bytes,
            value_type=bytes,
            options=options,
        )
        self.store = TableStore(self.table)
        # Transactions need Faust's send path, which joins the right one.
        self.transactional = settings.processing_guarantee == "exactly_once"
        self.decoder = decoder_for(config.rules)

        app.agent(self.sources, name="route", concurrency=1)(self._route)
        app.agent(self.internal, name="sessions", concurrency=1)(self._sessions)
        app.timer(settings.tick_interval_s, name="tick")(self._tick)

        async def health(view: Any, request: Any) -> Any:
            # Faust makes this function the GET method of a view class.
            return view.json(self.health())

        async def metrics(view: Any, request: Any) -> Any:
            return view.bytes(
                generate_latest(self.registry),
                headers={"Content-Type": CONTENT_TYPE_LATEST},
            )

        app.page("/health")(health)
        app.page("/metrics")(metrics)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

    # -- agents -----------------------------------------------------------------

    async def _route(self, stream: Any) -> None:
        settings = self.config.worker
        decode = self.decoder.decode
        internal = self.internal
        async for events in stream.take_events(
            settings.batch_max, settings.batch_within_s
        ):
            for event in events:
                message = event.message
                value = message.value if message.value is not None else b""
                source = source_headers(
                    message.topic, message.partition, message.offset
                )
                item = decode(value)
                if isinstance(item, Invalid):
                    bump(self.router_tally.invalid, item.reason)
                    await self._send(
                        Outgoing(
                            DEAD_LETTER,
                            message.key,
                            value,
                            dead_letter_headers(item.reason, item.detail, source),
                        )
                    )
                else:
                    await self._produce(internal, item.key.encode(), value, source)

    async def _sessions(self, stream: Any) -> None:
        settings = self.config.worker
        # Table writes queue in Faust's producer buffer, and past this many
        # queued messages Faust stops the stream to drain it one by one. One
        # batch writes up to one message per session it touched.
        self.app.producer.buffer.max_messages = max(1000, 2 * settings.batch_max)
        async for events in stream.take_events(
            settings.batch_max, settings.batch_within_s
        ):
            now = _now_ms()
            groups: dict[int, list[Any]] = {}
            for event in events:
                groups.setdefault(event.message.partition, []).append(event)
            for partition, group in groups.items():
                # Table reads and writes belong to the partition of the current
                # event (Faust's RocksDB store files them by it), so make one of
                # this partition's events current while handling the group.
                stream._set_current_event(group[-1])
                processor = self._processor(partition, now)
                for event in group:
                    message = event.message
                    processor.handle(
                        Incoming(
                            partition,
                            message.offset,
                            message.value if message.value is not None else b"",
                            message.headers,
                        ),
                        now,
                    )
                processor.persist(self.store, now)
                newest = processor.take_newest_event_ts()
                if newest is not None:
                    self.metrics.observe_batch(newest, now)
                for outgoing in processor.drain():
                    await self._send(outgoing)

    def _processor(self, partition: int, now_ms: int) -> PartitionProcessor:
        processor = self.processors.get(partition)
        if processor is None:
            processor = PartitionProcessor(partition, self.config, self.metrics)
            processor.recover(self.store, now_ms)
            self.processors[partition] = processor
        return processor

    async def _send(self, outgoing: Outgoing) -> None:
        await self._produce(
            self.outputs[outgoing.topic], outgoing.key, outgoing.value, outgoing.headers
        )

    async def _produce(
        self, topic: Any, key: bytes | None, value: bytes, headers: Any
    ) -> None:
        """Hand one message to the producer's batch, without waiting for Kafka.

        Faust flushes the producer before it commits offsets, so everything
        sent for a batch is in Kafka before the batch counts as processed.
        Faust's own per-message send path costs several times more than the
        producer call itself; only transactions need it, to join the right one.
        """
        if self.transactional:
            await topic.send(key=key, value=value, headers=headers)
        else:
            await self.app.producer.send(
                topic.get_topic_name(), key, value, None, None, headers
            )

    # -- ticks, rebalances, health ---------------------------------------------

    async def _tick(self) -> None:
        now = _now_ms()
        try:
            assignment = self.app.consumer.assignment()
        except Exception:
            return
        name = self.internal.get_topic_name()
        for tp in assignment:
            if tp.topic != name:
                continue
            processor = self.processors.get(tp.partition)
            if processor is None or processor.is_idle(now):
                self.internal.send_soon(key=None, value=TICK, partition=tp.partition)

    async def _on_revoked(self, sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        name = self.internal.get_topic_name()
        dropped = [tp.partition for tp in revoked if tp.topic == name]
        for partition in dropped:
            processor = self.processors.pop(partition, None)
            if processor is not None:
                self.metrics.retire(processor)
        if dropped:
            logger.info("partitions revoked: %s", sorted(dropped))

    def health(self) -> dict[str, Any]:
        now = _now_ms()
        partitions = {}
        for partition, p in sorted(self.processors.items()):
            engine = p.engine
            partitions[str(partition)] = {
                "sessions": len(engine.sessions),
                "offset": p.offset,
                "stream_time_lag_s": (
                    round((now - engine.stream_time) / 1000, 3)
                    if engine.max_event_ts > -(2**61)
                    else None
                ),
            }
        return {
            "status": "ok",
            "uptime_s": round((now - self.started_ms) / 1000, 1),
            "partitions": partitions,
        }


def run_worker(config: Config, log_level: str) -> None:
    """Create the topics, then run the worker until SIGTERM or Ctrl-C."""
    import asyncio

    from faust.worker import Worker as FaustWorker

    from streamfunnel.worker.topics import ensure_topics

    asyncio.run(ensure_topics(config))
    worker = Worker(config)
    logger.info(
        "worker %s: consuming %s, health and metrics on http://%s:%d",
        config.worker.app_id,
        ", ".join(config.topics.inputs),
        config.worker.web_host,
        config.worker.web_port,
    )
    # quiet: no banner or spinner; the log says what happens.
    FaustWorker(worker.app, loglevel=log_level, quiet=True).execute_from_commandline()
