"""Running counts of what the engine saw and decided.

Plain dictionaries, so the pure core stays free of any metrics library: the
replay summary prints them and the worker's Prometheus collector reads them.
Every key is a bounded label (a canonical type, a reason, a rule name), never a
session or a person.
"""

from __future__ import annotations

from typing import Any, final

from streamfunnel.vocabulary import CANONICAL_TYPES, OTHER


@final
class Tally:
    __slots__ = (
        "abandonments",
        "duplicates",
        "events",
        "funnel_reached",
        "ignored_cart_lines",
        "invalid",
        "late",
        "macro",
        "micro",
        "sequences",
        "sessions_ended",
        "sessions_started",
    )

    def __init__(self) -> None:
        # Plain dicts pre-filled with every label: counting is the hot path, and
        # a dict increment is several times cheaper than a Counter's.
        self.events: dict[str, int] = dict.fromkeys((*CANONICAL_TYPES, OTHER), 0)
        self.invalid: dict[str, int] = {}
        self.late = 0
        self.duplicates = 0
        self.sessions_started = 0
        self.sessions_ended: dict[str, int] = {}
        self.micro: dict[str, int] = {}
        self.macro: dict[str, int] = {}
        self.sequences: dict[str, int] = {}
        self.abandonments: dict[str, int] = {}
        self.funnel_reached: dict[tuple[str, str], int] = {}
        self.ignored_cart_lines = 0

    @property
    def events_total(self) -> int:
        return sum(self.events.values())

    @property
    def invalid_total(self) -> int:
        return sum(self.invalid.values())


def bump(counts: dict[Any, int], key: Any, by: int = 1) -> None:
    counts[key] = counts.get(key, 0) + by
