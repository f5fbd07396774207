"""The funnel engine: event-time ordering, session boundaries and the rules.

The engine keeps *stream time*: the largest event time seen minus the allowed
lateness. Accepted events wait in their session until stream time passes them,
then apply in event-time order (ties broken by event id). Because nothing older
than stream time is accepted, any arrival order within the allowed lateness gives
exactly the records the sorted input gives. A session ends once stream time
reaches its last event plus the session timeout.

It is pure: no clock, no I/O. The replay command drives it from a file, the
worker from Kafka, and both call ``advance_to`` to move stream time (the worker
also when a partition is idle).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Final, final

from streamfunnel import records
from streamfunnel import vocabulary as v
from streamfunnel.abandonment import abandonments, intent_score
from streamfunnel.cart import cart_lines
from streamfunnel.events import Event, EventDecoder
from streamfunnel.records import Record
from streamfunnel.rules import VISIT, Rules, Sequence
from streamfunnel.sessions import SessionState
from streamfunnel.tally import Tally, bump

logger = logging.getLogger(__name__)

ACCEPTED: Final = "accepted"
DUPLICATE: Final = "duplicate"
LATE: Final = "late"

CONVERTED: Final = "converted"
ABANDONED: Final = "abandoned"
BOUNCED: Final = "bounced"
OTHER_OUTCOME: Final = "other"
OUTCOMES: Final[tuple[str, ...]] = (CONVERTED, ABANDONED, BOUNCED, OTHER_OUTCOME)

# Stream time before any event: everything is on time.
BEGINNING_OF_TIME: Final = -(2**62)
END_OF_TIME: Final = 2**62

# Event types whose email property may be kept, and only with include_contact.
CONTACT_TYPES: Final = frozenset(
    {v.EMAIL_OPTIN, v.SMS_OPTIN, v.NEWSLETTER_SIGNUP, v.FORM_START, v.FORM_SUBMIT}
)

_CANONICAL: Final = frozenset(v.CANONICAL_TYPES)

# (micro name, condition index, property, at_least, equals, count)
_Check = tuple[str, int, str | None, float | None, Any, int]

SessionEndHook = Callable[[SessionState, int, str], None]


@final
class FunnelEngine:
    """Runs the rules over events from one partition (or one replay file)."""

    def __init__(
        self,
        rules: Rules,
        on_session_end: SessionEndHook | None = None,
        track_changes: bool = False,
    ):
        self.rules = rules
        # With tracking on, ``changed`` collects the keys of sessions that were
        # modified or ended, so a caller can persist just those.
        self.track_changes = track_changes
        self.changed: set[str] = set()
        self.tally = Tally()
        self.sessions: dict[str, SessionState] = {}
        self.outbox: list[Record] = []
        self.stream_time = BEGINNING_OF_TIME
        self.max_event_ts = BEGINNING_OF_TIME
        self.on_session_end = on_session_end
        # Accepted events not yet applied: (event time, event id, arrival, event).
        self._queue: deque[tuple[int, str, int, Event]] = deque()
        self._stragglers: list[tuple[int, str, int, Event]] = []
        self._arrivals = 0
        self._deadlines: list[tuple[int, str]] = []
        self._timeout_ms = rules.session_timeout_ms
        self._lateness_ms = rules.allowed_lateness_ms
        self._funnel_count = len(rules.funnels)
        self._compile(rules)

    def _compile(self, rules: Rules) -> None:
        self._macro_types = rules.macro_types
        self._checks: dict[str, list[_Check]] = {}
        index = 0
        for micro in rules.micro:
            for cond in micro.conditions:
                self._checks.setdefault(cond.type, []).append(
                    (
                        micro.name,
                        index,
                        cond.property,
                        cond.at_least,
                        cond.equals,
                        cond.count,
                    )
                )
                index += 1
        self._step_index = [
            {step: i for i, step in enumerate(f.steps)} for f in rules.funnels
        ]
        self._sequences_ending: dict[str, list[Sequence]] = {}
        for seq in rules.sequences:
            self._sequences_ending.setdefault(seq.steps[-1], []).append(seq)

    # -- stream time ----------------------------------------------------------

    def ingest(self, event: Event) -> str:
        """Accept one event; returns ACCEPTED, DUPLICATE or LATE.

        Records it causes (possibly for other sessions, as stream time moves)
        are appended to ``outbox``.
        """
        ts = event.ts
        key = event.key
        session = self.sessions.get(key)
        if session is not None and event.event_id in session.seen:
            self.tally.duplicates += 1
            return DUPLICATE
        if ts < self.stream_time:
            self.tally.late += 1
            return LATE
        if session is None:
            session = SessionState(key, self._funnel_count)
            self.sessions[key] = session

        session.seen.add(event.event_id)
        session.pending.append(event)
        if self.track_changes:
            self.changed.add(key)
        self._arrivals += 1
        item = (ts, event.event_id, self._arrivals, event)
        queue = self._queue
        # Most events arrive in order: they append to a sorted deque in O(1).
        # Only the stragglers pay for a heap.
        if not queue or item > queue[-1]:
            queue.append(item)
        else:
            heapq.heappush(self._stragglers, item)
        counts = self.tally.events
        type_ = event.type
        if type_ in counts:
            counts[type_] += 1
        else:
            counts[v.OTHER] += 1

        if ts > self.max_event_ts:
            self.max_event_ts = ts
            self.advance_to(ts - self._lateness_ms)
        return ACCEPTED

    def advance_to(self, stream_time: int) -> None:
        """Move stream time forward (never back), applying and ending what is due.

        Events older than the new stream time apply first, in event-time order
        across all sessions; then sessions whose deadline has passed end. Any
        event still queued for such a session is at or after its deadline, so
        it belongs to the next session either way.
        """
        if stream_time <= self.stream_time:
            return
        self.stream_time = stream_time
        queue = self._queue
        stragglers = self._stragglers
        sessions = self.sessions
        timeout = self._timeout_ms
        while True:
            if queue and queue[0][0] < stream_time:
                if stragglers and stragglers[0] < queue[0]:
                    ts, event_id, _, event = heapq.heappop(stragglers)
                else:
                    ts, event_id, _, event = queue.popleft()
            elif stragglers and stragglers[0][0] < stream_time:
                ts, event_id, _, event = heapq.heappop(stragglers)
            else:
                break
            session = sessions[event.key]
            pending = session.pending
            if pending[0] is event:
                del pending[0]
            else:
                pending.remove(event)
            if session.event_count and ts - session.last_ts >= timeout:
                self._end(session)
                session.reset(self._funnel_count)
                session.seen.add(event_id)
            self._apply(session, event)
            if self.track_changes:
                self.changed.add(event.key)

        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= stream_time:
            entry, key = heapq.heappop(deadlines)
            due = sessions.get(key)
            # One live entry per session, never later than its real deadline;
            # it moves forward lazily here instead of on every event.
            if due is None or due.deadline_entry != entry:
                continue
            deadline = due.last_ts + timeout
            if deadline > stream_time:
                due.deadline_entry = deadline
                heapq.heappush(deadlines, (deadline, key))
                continue
            self._end(due)
            due.deadline_entry = None
            if self.track_changes:
                self.changed.add(key)
            if due.pending:
                due.reset(self._funnel_count)
            else:
                del sessions[key]

    def flush(self) -> None:
        """End of input: apply every pending event and end every session."""
        self.advance_to(END_OF_TIME)

    def take_changes(self) -> set[str]:
        changed, self.changed = self.changed, set()
        return changed

    def restore(self, session: SessionState) -> None:
        """Adopt a session saved earlier (by the worker), pending events included."""
        self.sessions[session.key] = session
        for event in session.pending:
            self._arrivals += 1
            item = (event.ts, event.event_id, self._arrivals, event)
            heapq.heappush(self._stragglers, item)
        session.deadline_entry = None
        if session.event_count:
            session.deadline_entry = session.last_ts + self._timeout_ms
            heapq.heappush(self._deadlines, (session.deadline_entry, session.key))

    def restore_clock(self, max_event_ts: int) -> None:
        """Resume stream time from a saved latest event time."""
        if max_event_ts > self.max_event_ts:
            self.max_event_ts = max_event_ts
            self.stream_time = max(self.stream_time, max_event_ts - self._lateness_ms)

    def take(self) -> list[Record]:
        """The records produced since the last call."""
        out, self.outbox = self.outbox, []
        return out

    # -- the rules ------------------------------------------------------------

    def _apply(self, session: SessionState, event: Event) -> None:
        tally = self.tally
        if not session.event_count:
            session.start(event.ts)
            tally.sessions_started += 1
            if session.deadline_entry is None:
                session.deadline_entry = event.ts + self._timeout_ms
                heapq.heappush(self._deadlines, (session.deadline_entry, session.key))
            for funnel in self.rules.funnels:
                bump(tally.funnel_reached, (funnel.name, VISIT))
        session.last_ts = event.ts
        session.event_count += 1
        if event.anonymous_id is not None:
            session.anonymous_id = event.anonymous_id
        if event.user_id is not None:
            session.user_id = event.user_id

        type_ = event.type
        props = event.properties
        if type_ in _BUILTIN_TYPES:
            self._builtin(session, type_, props, event.ts)
        if self.rules.include_contact and type_ in CONTACT_TYPES:
            email = props.get("email")
            if isinstance(email, str) and email:
                session.contact = email

        if type_ in self._macro_types:
            name = self.rules.macro_name
            session.macro_count += 1
            bump(tally.macro, name)
            self.outbox.append(
                records.conversion(
                    records.MACRO_CONVERSION, name, session, event.event_id, event.ts
                )
            )
            if session.macro_first_ts is None:
                session.macro_first_ts = event.ts
                self._reached(session, name, event)
            return

        checks = self._checks.get(type_)
        if checks is None:
            return
        reached = session.micro
        for name, index, prop, at_least, equals, count in checks:
            if name in reached:
                continue
            if prop is not None and not _matches(props.get(prop), at_least, equals):
                continue
            if count > 1:
                seen = session.counts.get(index, 0) + 1
                session.counts[index] = seen
                if seen < count:
                    continue
            reached[name] = event.ts
            bump(tally.micro, name)
            self.outbox.append(
                records.conversion(
                    records.MICRO_CONVERSION, name, session, event.event_id, event.ts
                )
            )
            self._reached(session, name, event)

    def _builtin(
        self, session: SessionState, type_: str, props: dict[str, Any], ts: int
    ) -> None:
        if type_ == v.ADD_TO_CART or type_ == v.REMOVE_FROM_CART:
            lines, bad = cart_lines(props)
            self.tally.ignored_cart_lines += bad
            if type_ == v.ADD_TO_CART:
                session.carted = True
                session.cart.add(lines)
                currency = props.get("currency")
                if isinstance(currency, str) and currency:
                    session.cart.currency = currency
            else:
                session.cart.remove(lines)
        elif type_ == v.CHECKOUT_START:
            session.checkout_open = True
        elif type_ == v.PURCHASE:
            # A purchase settles the cart whatever the industry's macro is.
            session.cart.clear()
            session.checkout_open = False
        elif type_ == v.FORM_START:
            form_id = _form_id(props)
            session.open_forms.setdefault(form_id, ts)
        elif type_ == v.FORM_SUBMIT:
            session.open_forms.pop(_form_id(props), None)

    def _reached(self, session: SessionState, name: str, event: Event) -> None:
        for position, steps in enumerate(self._step_index):
            index = steps.get(name)
            if index is not None and index > session.furthest[position]:
                funnel = self.rules.funnels[position]
                for step in funnel.steps[session.furthest[position] + 1 : index + 1]:
                    bump(self.tally.funnel_reached, (funnel.name, step))
                session.furthest[position] = index

        for seq in self._sequences_ending.get(name, ()):
            if seq.name not in session.sequences_done and self._completes(session, seq):
                session.sequences_done.add(seq.name)
                bump(self.tally.sequences, seq.name)
                self.outbox.append(
                    records.sequence(
                        seq.name, seq.steps, session, event.event_id, event.ts
                    )
                )

    def _completes(self, session: SessionState, seq: Sequence) -> bool:
        times = []
        for step in seq.steps:
            at = session.micro.get(step)
            if at is None and step == self.rules.macro_name:
                at = session.macro_first_ts
            if at is None:
                return False
            times.append(at)
        in_order = all(a <= b for a, b in itertools.pairwise(times))
        return in_order and times[-1] - times[0] <= seq.within_s * 1000

    def _end(self, session: SessionState) -> None:
        detected = session.last_ts + self._timeout_ms
        funnel = self.rules.primary_funnel
        step = funnel.steps[session.furthest[0]]
        found = abandonments(session)
        if found:
            score = intent_score(
                session, self.rules.intent_weights, self.rules.intent_max
            )
            for kind, form_id in found:
                bump(self.tally.abandonments, kind)
                self.outbox.append(
                    records.abandonment(
                        kind,
                        session,
                        detected,
                        step,
                        score,
                        form_id,
                        self.rules.include_contact,
                    )
                )
        if session.macro_count:
            outcome = CONVERTED
        elif found:
            outcome = ABANDONED
        elif session.event_count == 1:
            outcome = BOUNCED
        else:
            outcome = OTHER_OUTCOME
        bump(self.tally.sessions_ended, outcome)
        if self.on_session_end is not None:
            self.on_session_end(session, detected, outcome)


def decoder_for(rules: Rules) -> EventDecoder:
    """The decoder that keeps exactly what these rules read."""
    return EventDecoder(rules.aliases, property_types(rules), rules.include_contact)


def property_types(rules: Rules) -> frozenset[str]:
    """The event types whose properties these rules read (see ``EventDecoder``)."""
    types = set(_BUILTIN_TYPES)
    for micro in rules.micro:
        types.update(c.type for c in micro.conditions if c.property is not None)
    if rules.include_contact:
        types.update(CONTACT_TYPES)
    return frozenset(types)


_BUILTIN_TYPES: Final = frozenset(
    {
        v.ADD_TO_CART,
        v.REMOVE_FROM_CART,
        v.CHECKOUT_START,
        v.PURCHASE,
        v.FORM_START,
        v.FORM_SUBMIT,
    }
)


def _form_id(props: dict[str, Any]) -> str | None:
    form_id = props.get("form_id")
    if isinstance(form_id, str) and form_id:
        return form_id
    if isinstance(form_id, int) and not isinstance(form_id, bool):
        return str(form_id)
    return None


def _matches(value: object, at_least: float | None, equals: object) -> bool:
    if at_least is not None:
        if isinstance(value, bool) or value is None:
            return False
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return False
        return isinstance(value, int | float) and value >= at_least
    return bool(value == equals)
