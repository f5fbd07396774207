"""The funnel rules: what counts as a micro or macro conversion, funnels, sequences.

These are plain, frozen values. ``presets`` builds the defaults for each
industry and ``config`` builds them from a TOML file; the engine only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

# The first step of every funnel: any event, i.e. the session exists.
VISIT: Final = "visit"

INDUSTRIES: Final[tuple[str, ...]] = (
    "ecommerce",
    "saas",
    "content",
    "affiliate",
    "freemium",
)


@dataclass(frozen=True)
class Condition:
    """One way to reach a micro conversion.

    Matches events of ``type`` (after alias mapping). With ``property`` set, the
    event's property must be at least ``at_least`` (numbers, or numeric strings)
    or equal ``equals``. ``count`` makes the n-th matching event in the session
    the one that reaches the conversion (``count = 6`` on page views: the 6th).
    """

    type: str
    property: str | None = None
    at_least: float | None = None
    equals: str | int | float | bool | None = None
    count: int = 1


@dataclass(frozen=True)
class MicroConversion:
    """A named micro conversion, reached once per session by any of its conditions."""

    name: str
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Funnel:
    """Ordered steps; each is ``visit``, a micro conversion or the macro name."""

    name: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Sequence:
    """Micro conversions reached in this order within ``within_s`` seconds.

    Other conversions may be reached between the steps: the steps must appear in
    order, not back to back. The span runs from the first step to the last.
    """

    name: str
    steps: tuple[str, ...]
    within_s: float


@dataclass(frozen=True)
class Rules:
    """Everything the engine needs to turn events into records."""

    industry: str
    macro_name: str
    macro_types: frozenset[str]
    micro: tuple[MicroConversion, ...]
    funnels: tuple[Funnel, ...]
    sequences: tuple[Sequence, ...]
    intent_weights: dict[str, float] = field(default_factory=dict)
    intent_max: float = 100.0
    session_timeout_s: float = 1800.0
    allowed_lateness_s: float = 60.0
    aliases: dict[str, str] = field(default_factory=dict)
    include_contact: bool = False

    @property
    def session_timeout_ms(self) -> int:
        return round(self.session_timeout_s * 1000)

    @property
    def allowed_lateness_ms(self) -> int:
        return round(self.allowed_lateness_s * 1000)

    @property
    def primary_funnel(self) -> Funnel:
        return self.funnels[0]
