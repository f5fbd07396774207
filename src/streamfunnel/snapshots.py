"""Session snapshots: the compact bytes a session is saved as between batches.

The worker keeps each open session in a table backed by a changelog topic, so a
restarted or replacement worker resumes exactly where the last one stopped.
A snapshot holds the applied state *and* the events still waiting for stream
time to pass them: their Kafka offsets are committed once the batch is done, so
the snapshot is the only place they survive. Contact details are only present
when the configuration asked for them (the decoder drops them otherwise).

The format is a JSON array (orjson), versioned by its first element.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from streamfunnel.events import Event
from streamfunnel.sessions import SessionState

FORMAT: Final = 1


class SnapshotError(ValueError):
    """Bytes that are not a snapshot this version can read."""


def dump_session(session: SessionState, partition: int) -> bytes:
    cart = session.cart
    return orjson.dumps(
        [
            FORMAT,
            partition,
            session.key,
            session.start_ts,
            session.last_ts,
            session.event_count,
            session.anonymous_id,
            session.user_id,
            session.contact,
            session.micro,
            list(session.counts.items()),
            session.macro_count,
            session.macro_first_ts,
            cart.lines,
            cart.currency,
            session.carted,
            session.checkout_open,
            list(session.open_forms.items()),
            session.furthest,
            sorted(session.sequences_done),
            [_dump_event(e) for e in session.pending],
            list(session.seen),
        ]
    )


def load_session(data: bytes, funnel_count: int) -> tuple[int, SessionState]:
    """(partition, session) from a snapshot; raises SnapshotError if unreadable."""
    try:
        doc = orjson.loads(data)
        if not isinstance(doc, list) or doc[0] != FORMAT:
            raise SnapshotError("not a session snapshot of this version")
        (
            _,
            partition,
            key,
            start_ts,
            last_ts,
            event_count,
            anonymous_id,
            user_id,
            contact,
            micro,
            counts,
            macro_count,
            macro_first_ts,
            lines,
            currency,
            carted,
            checkout_open,
            open_forms,
            furthest,
            sequences_done,
            pending,
            seen,
        ) = doc
        session = SessionState(key, funnel_count)
        if event_count:
            session.start(start_ts)
        session.last_ts = last_ts
        session.event_count = event_count
        session.anonymous_id = anonymous_id
        session.user_id = user_id
        session.contact = contact
        session.micro = dict(micro)
        session.counts = {int(k): int(n) for k, n in counts}
        session.macro_count = macro_count
        session.macro_first_ts = macro_first_ts
        session.cart.lines = {
            item: [float(q), float(p)] for item, (q, p) in lines.items()
        }
        session.cart.currency = currency
        session.carted = bool(carted)
        session.checkout_open = bool(checkout_open)
        session.open_forms = {form: int(ts) for form, ts in open_forms}
        if len(furthest) == funnel_count:
            session.furthest = [int(i) for i in furthest]
        session.sequences_done = set(sequences_done)
        session.pending = [_load_event(e) for e in pending]
        session.seen = set(seen)
    except SnapshotError:
        raise
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
        raise SnapshotError(f"unreadable session snapshot: {exc}") from exc
    return int(partition), session


def _dump_event(event: Event) -> list[Any]:
    return [
        event.event_id,
        event.type,
        event.ts,
        event.session_id,
        event.anonymous_id,
        event.user_id,
        event.properties,
    ]


def _load_event(doc: list[Any]) -> Event:
    event_id, type_, ts, session_id, anonymous_id, user_id, properties = doc
    return Event(event_id, type_, ts, session_id, anonymous_id, user_id, properties)


@dataclass(frozen=True)
class PartitionMark:
    """How far the worker got in one partition: saved with every batch.

    ``offset`` is the last message processed, so messages the broker delivers
    again after a restart or rebalance are skipped instead of counted twice;
    ``max_event_ts`` restores stream time; ``wall_ms`` is the wall clock when
    that event time was seen, so stream time can follow the clock on recovery.
    """

    partition: int
    offset: int
    max_event_ts: int
    wall_ms: int
    # Funnel metrics windows still open (``FunnelWindows.dump``).
    windows: list[Any]

    def dump(self) -> bytes:
        return orjson.dumps(
            [
                FORMAT,
                self.partition,
                self.offset,
                self.max_event_ts,
                self.wall_ms,
                self.windows,
            ]
        )

    @classmethod
    def load(cls, data: bytes) -> PartitionMark:
        try:
            version, partition, offset, max_ts, wall_ms, windows = orjson.loads(data)
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            raise SnapshotError(f"unreadable partition mark: {exc}") from exc
        if version != FORMAT:
            raise SnapshotError("not a partition mark of this version")
        return cls(int(partition), int(offset), int(max_ts), int(wall_ms), windows)
