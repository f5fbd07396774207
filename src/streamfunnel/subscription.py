"""Following the worker's output topics: abandonments, and conversions if asked.

A subscription is a tail, not a member of a consumer group: it takes every
partition of its topics by manual assignment and commits nothing. Each run sees
everything on the topics from the moment it starts (or from the beginning),
however many run at once, and none of them shifts what the worker or another
subscriber reads. Partitions added while it runs are not picked up.

Records print as one readable line each, or as compact JSON lines. A record that
is not one of streamfunnel's (not JSON, not an object, an unknown type, a field
missing) is skipped with a one-line warning that names its offset.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Final

import orjson

from streamfunnel import events as ev
from streamfunnel.connection import (
    CONNECT_TIMEOUT_S,
    admin_client,
    client_options,
    close,
    connect,
    topic_partitions,
)
from streamfunnel.errors import BrokerError, ConfigError, StreamfunnelError
from streamfunnel.records import (
    ABANDONMENT,
    MACRO_CONVERSION,
    MICRO_CONVERSION,
    SEQUENCE,
)
from streamfunnel.settings import KafkaSettings

logger = logging.getLogger(__name__)

# In the client id, so that broker logs tell this consumer from the worker.
CLIENT_ROLE: Final = "alerts"
# One fetch waits at most this long, so that stop requests and deadlines are
# noticed quickly.
POLL_MS: Final = 250
# How often to look again for a topic that does not exist yet.
TOPIC_RETRY_S: Final = 1.0
# Wide enough for "CHECKOUT abandoned", so that the fields of alerts line up.
HEAD_WIDTH: Final = 18
ARROW: Final = " \N{RIGHTWARDS ARROW} "

_CONVERSION_HEADS: Final = {
    MICRO_CONVERSION: "MICRO",
    MACRO_CONVERSION: "MACRO",
    SEQUENCE: "SEQUENCE",
}


class RecordError(StreamfunnelError):
    """A record on an output topic that is not a streamfunnel record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- one record, one line ----------------------------------------------------


def parse_record(value: bytes | None) -> dict[str, Any]:
    """The JSON object in a record's value."""
    if value is None:
        raise RecordError("no value")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise RecordError("not UTF-8") from exc
        raise RecordError("not valid JSON") from exc
    if type(doc) is not dict:
        raise RecordError(f"a JSON {type(doc).__name__}, not an object")
    return doc


def format_record(record: Mapping[str, Any]) -> str:
    """One readable line for an abandonment or conversion record.

    Times are UTC, as in the records themselves.
    """
    kind = record.get("type")
    if kind == ABANDONMENT:
        return _abandonment_line(record)
    if kind in _CONVERSION_HEADS:
        return _conversion_line(record, _CONVERSION_HEADS[kind])
    if kind is None:
        raise RecordError("no type")
    raise RecordError(f"unknown record type {kind!r}")


def render(value: bytes | None, as_json: bool) -> str:
    """The line to print for a record's value: readable, or compact JSON."""
    record = parse_record(value)
    if as_json:
        # Re-encoded rather than passed through, so that one record is one line
        # even if a producer pretty-printed it.
        return orjson.dumps(record).decode()
    return format_record(record)


def _abandonment_line(record: Mapping[str, Any]) -> str:
    kind = _text(record, "kind")
    fields = []
    if "form_id" in record:
        fields.append(f"form={_text(record, 'form_id')}")
    fields += _identity(record)
    cart = record.get("cart")
    if cart is not None:
        fields += _cart(cart)
    micro = record.get("micro_conversions", [])
    if not isinstance(micro, list) or not all(isinstance(m, str) for m in micro):
        raise RecordError("micro_conversions is not a list of names")
    fields.append(f"step={_text(record, 'funnel_step')}")
    fields.append(f"intent={round(_number(record, 'intent_score'), 1):g}")
    fields.append(f"micro={','.join(micro) or '-'}")
    head = f"{kind.upper()} abandoned"
    return _line(_clock(record, "detected_at"), head, fields)


def _conversion_line(record: Mapping[str, Any], head: str) -> str:
    name = _text(record, "name")
    if head == _CONVERSION_HEADS[SEQUENCE]:
        steps = record.get("steps")
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise RecordError("steps is not a list of names")
        name = f"{name} ({ARROW.join(steps)})"
    return _line(_clock(record, "at"), f"{head} {name}", _identity(record))


def _line(clock: str, head: str, fields: list[str]) -> str:
    return f"{clock} {head:<{HEAD_WIDTH}} {' '.join(fields)}"


def _identity(record: Mapping[str, Any]) -> list[str]:
    fields = [f"session={_text(record, 'session_id')}"]
    for name, label in (("user_id", "user"), ("anonymous_id", "anon")):
        value = record.get(name)
        if isinstance(value, str) and value:
            fields.append(f"{label}={value}")
            # The user id is the one a subscriber acts on; an anonymous id
            # next to it adds nothing to read.
            break
    return fields


def _cart(cart: object) -> list[str]:
    if not isinstance(cart, dict):
        raise RecordError("cart is not an object")
    items = cart.get("items", [])
    if not isinstance(items, list):
        raise RecordError("cart.items is not a list")
    if not items:
        return []
    try:
        units = sum(float(item["quantity"]) for item in items)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError("a cart item has no numeric quantity") from exc
    value = _number(cart, "value")
    currency = cart.get("currency")
    money = f"{currency} {value:.2f}" if isinstance(currency, str) else f"{value:.2f}"
    return [f"value={money}", f"items={units:g}"]


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise RecordError(f"{name} is missing or not text")
    return value


def _number(record: Mapping[str, Any], name: str) -> float:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{name} is missing or not a number")
    return float(value)


def _clock(record: Mapping[str, Any], name: str) -> str:
    ms = ev.parse_timestamp(record.get(name))
    if ms is None:
        raise RecordError(f"{name} is missing or not a timestamp")
    return time.strftime("%H:%M:%S", time.gmtime(ms // 1000))


# -- following the topics ----------------------------------------------------


@dataclass(frozen=True)
class SubscriptionPlan:
    """What to follow and when to stop; with no limits, until asked to stop."""

    topics: tuple[str, ...]
    from_beginning: bool = False
    as_json: bool = False
    max_records: int | None = None
    timeout_s: float | None = None
    connect_timeout_s: float = CONNECT_TIMEOUT_S

    def __post_init__(self) -> None:
        if not self.topics or not all(self.topics):
            raise ConfigError("subscription.topics", "must name at least one topic")
        if self.max_records is not None and self.max_records < 1:
            raise ConfigError("subscription.max_records", "must be at least 1")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ConfigError("subscription.timeout_s", "must be positive")


@dataclass(frozen=True)
class SubscriptionResult:
    shown: int
    skipped: int
    # Whether the run ended because its time was up.
    timed_out: bool


async def subscribe(
    kafka: KafkaSettings,
    plan: SubscriptionPlan,
    out: IO[str],
    errors: IO[str],
    *,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> SubscriptionResult:
    """Print the records of ``plan.topics`` to ``out``, warnings to ``errors``.

    ``ready`` is set once every partition is assigned and positioned: a record
    produced after that is shown.
    """
    # Imported here, so that the command line loads without aiokafka.
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaError

    started_s = time.monotonic()
    deadline_s = math.inf if plan.timeout_s is None else started_s + plan.timeout_s
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if plan.from_beginning else "latest",
        # Under exactly-once the worker writes in transactions; an alert from
        # an aborted one was never really raised.
        isolation_level="read_committed",
        **client_options(kafka, CLIENT_ROLE),
    )
    connect_s = min(plan.connect_timeout_s, max(0.0, deadline_s - started_s))
    await connect(consumer, kafka, connect_s)
    try:
        assigned = await _assign(consumer, kafka, plan, errors, deadline_s, stop)
        if assigned is None:
            return SubscriptionResult(0, 0, timed_out=True)
        if ready is not None:
            ready.set()
        return await _follow(consumer, plan, out, errors, deadline_s, stop)
    except KafkaError as exc:
        raise BrokerError(f"reading {', '.join(plan.topics)} failed: {exc}") from exc
    finally:
        await close(consumer)


async def _assign(
    consumer: Any,
    kafka: KafkaSettings,
    plan: SubscriptionPlan,
    errors: IO[str],
    deadline_s: float,
    stop: asyncio.Event | None,
) -> list[Any] | None:
    """Assign and position every partition, once every topic exists.

    Returns None if the time is up or a stop is asked for first.
    """
    from aiokafka import TopicPartition

    found = await _partitions_when_present(kafka, plan, errors, deadline_s, stop)
    if found is None:
        return None
    partitions_of, late_topics = found
    partitions = [
        TopicPartition(topic, number)
        for topic in plan.topics
        for number in partitions_of[topic]
    ]
    consumer.assign(partitions)
    # A topic that appeared while we waited holds only records produced since
    # the start, so it is read from its beginning either way.
    early = [tp for tp in partitions if tp.topic not in late_topics]
    late = [tp for tp in partitions if tp.topic in late_topics]
    if plan.from_beginning:
        early, late = [], partitions
    if early:
        await consumer.seek_to_end(*early)
    if late:
        await consumer.seek_to_beginning(*late)
    for partition in partitions:
        # Resolves the position now, so that "from now" means now and not the
        # first fetch.
        await consumer.position(partition)
    logger.info(
        "following %s from %s (%d partitions)",
        ", ".join(plan.topics),
        "the beginning" if plan.from_beginning else "now",
        len(partitions),
    )
    return partitions


async def _partitions_when_present(
    kafka: KafkaSettings,
    plan: SubscriptionPlan,
    errors: IO[str],
    deadline_s: float,
    stop: asyncio.Event | None,
) -> tuple[dict[str, list[int]], set[str]] | None:
    """Partition numbers of every topic, and which topics were missing at first.

    A consumer without a group knows the partitions only of topics it already
    reads, so an admin client asks the broker.
    """
    admin = admin_client(kafka, CLIENT_ROLE)
    await connect(admin, kafka, plan.connect_timeout_s)
    missing_at_start: set[str] | None = None
    try:
        while True:
            partitions_of = await topic_partitions(admin, plan.topics)
            missing = [t for t in plan.topics if t not in partitions_of]
            if missing_at_start is None:
                missing_at_start = set(missing)
                if missing:
                    errors.write(f"waiting for {', '.join(missing)} to be created\n")
                    errors.flush()
            if not missing:
                return partitions_of, missing_at_start
            if time.monotonic() >= deadline_s or (stop is not None and stop.is_set()):
                return None
            pause_s = min(TOPIC_RETRY_S, max(0.0, deadline_s - time.monotonic()))
            await asyncio.sleep(pause_s)
    finally:
        await close(admin)


async def _follow(
    consumer: Any,
    plan: SubscriptionPlan,
    out: IO[str],
    errors: IO[str],
    deadline_s: float,
    stop: asyncio.Event | None,
) -> SubscriptionResult:
    shown = skipped = 0
    limit = math.inf if plan.max_records is None else plan.max_records
    while shown < limit:
        if stop is not None and stop.is_set():
            break
        remaining_ms = (deadline_s - time.monotonic()) * 1000
        if remaining_ms <= 0:
            return SubscriptionResult(shown, skipped, timed_out=True)
        batches = await consumer.getmany(timeout_ms=int(min(POLL_MS, remaining_ms)))
        for batch in batches.values():
            for record in batch:
                try:
                    line = render(record.value, plan.as_json)
                except RecordError as exc:
                    skipped += 1
                    errors.write(
                        f"warning: skipped {record.topic}[{record.partition}]"
                        f"@{record.offset}: {exc.reason}\n"
                    )
                    errors.flush()
                    continue
                out.write(line + "\n")
                shown += 1
                if shown >= limit:
                    break
            if shown >= limit:
                break
        out.flush()
    return SubscriptionResult(shown, skipped, timed_out=False)
