"""Windowed funnel metrics: what the sessions that ended in each window did.

A session counts in the event-time window that holds its end (its last event
plus the session timeout), once, with everything it reached. A window closes,
and its record is emitted, once stream time passes its end: by then every
session ending inside it has ended, since sessions end in stream-time order.
Windows in which no session ended emit nothing.
"""

from __future__ import annotations

from typing import Any, Final

from streamfunnel.abandonment import CART, CHECKOUT, KINDS, abandonments
from streamfunnel.events import format_timestamp
from streamfunnel.rules import Rules
from streamfunnel.sessions import SessionState

FUNNEL_METRICS: Final = "funnel_metrics"


class _Window:
    __slots__ = ("abandoned", "cart_abandoned", "cart_sessions", "outcomes", "steps")

    def __init__(self, funnels: list[int]) -> None:
        self.steps = [[0] * n for n in funnels]
        self.outcomes: dict[str, int] = {}
        self.abandoned = dict.fromkeys(KINDS, 0)
        self.cart_sessions = 0
        self.cart_abandoned = 0

    def dump(self) -> list[Any]:
        return [
            self.steps,
            self.outcomes,
            self.abandoned,
            self.cart_sessions,
            self.cart_abandoned,
        ]


class FunnelWindows:
    """Accumulates ended sessions into fixed event-time windows."""

    def __init__(self, rules: Rules, window_ms: int, partition: int | None = None):
        self.rules = rules
        self.window_ms = window_ms
        self.partition = partition
        self._sizes = [len(f.steps) for f in rules.funnels]
        self._windows: dict[int, _Window] = {}

    def session_ended(
        self, session: SessionState, detected_ms: int, outcome: str
    ) -> None:
        start = detected_ms - detected_ms % self.window_ms
        window = self._windows.get(start)
        if window is None:
            window = self._windows[start] = _Window(self._sizes)
        for counts, furthest in zip(window.steps, session.furthest, strict=True):
            for step in range(furthest + 1):
                counts[step] += 1
        window.outcomes[outcome] = window.outcomes.get(outcome, 0) + 1
        kinds = [kind for kind, _ in abandonments(session)]
        for kind in kinds:
            window.abandoned[kind] += 1
        if session.carted:
            window.cart_sessions += 1
            if CART in kinds or CHECKOUT in kinds:
                window.cart_abandoned += 1

    def close(self, stream_time: int) -> list[dict[str, Any]]:
        """Records of every window that ends at or before ``stream_time``."""
        if not self._windows or min(self._windows) + self.window_ms > stream_time:
            return []
        due = sorted(s for s in self._windows if s + self.window_ms <= stream_time)
        return [self._record(start, self._windows.pop(start)) for start in due]

    def dump(self) -> list[Any]:
        return [[start, w.dump()] for start, w in sorted(self._windows.items())]

    def load(self, doc: list[Any]) -> None:
        for start, (steps, outcomes, abandoned, cart_sessions, cart_abandoned) in doc:
            window = _Window(self._sizes)
            if [len(s) for s in steps] == self._sizes:
                window.steps = steps
            window.outcomes = dict(outcomes)
            window.abandoned.update(abandoned)
            window.cart_sessions = cart_sessions
            window.cart_abandoned = cart_abandoned
            self._windows[int(start)] = window

    def _record(self, start: int, window: _Window) -> dict[str, Any]:
        funnels = {}
        for funnel, counts in zip(self.rules.funnels, window.steps, strict=True):
            steps = []
            for i, (step, reached) in enumerate(zip(funnel.steps, counts, strict=True)):
                previous = counts[i - 1] if i else None
                rate = round(reached / previous, 4) if previous else None
                steps.append(
                    {
                        "step": step,
                        "sessions": reached,
                        "conversion_from_previous": rate,
                    }
                )
            funnels[funnel.name] = steps
        carts = window.cart_sessions
        return {
            "type": FUNNEL_METRICS,
            "window_start": format_timestamp(start),
            "window_end": format_timestamp(start + self.window_ms),
            "partition": self.partition,
            "sessions": sum(window.outcomes.values()),
            "outcomes": window.outcomes,
            "funnels": funnels,
            "abandonments": window.abandoned,
            "cart_sessions": carts,
            "cart_abandonment_rate": (
                round(window.cart_abandoned / carts, 4) if carts else None
            ),
        }
