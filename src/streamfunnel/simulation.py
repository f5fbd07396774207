"""Simulated clickstream traffic: reproducible visitor sessions for each industry.

The simulator is pure (no clock, no Kafka): ``SimulationSettings`` fix the
industry, the seed and the start time, and the same settings always give the
same bytes. Lines come out in *arrival* order, the order a topic would hold
them, with many sessions running at once.

What the traffic looks like with the default settings. The unit tests hold the
generator to ``DOCUMENTED_RANGES``, measured by running the output through the
engine:

- Sessions start as a Poisson process (``sessions_per_s``). Each visitor reads a
  page for a few seconds to a few minutes (median 30 s) and acts on a page
  within seconds; no gap exceeds ``visitors.MAX_GAP_MS``, far below the 30 minute
  session timeout, so one simulated session is one engine session.
- About 5 page views per session (about 2 on B2B saas sites), with 40-55 % of
  sessions bouncing after their landing page and a long tail of deep visits.
- About 2 % of sessions reach the industry's macro conversion: a purchase, a
  demo request after the demo form, a newsletter signup, a sponsored link click,
  or an account created through the signup form.
- Carts are abandoned at the industry average of 69.82 %: of the sessions that
  add to cart, half start a checkout, 29 % buy, about 1 % empty the cart again
  and the rest leave with items in it or a checkout open. Every industry has
  some carts (merchandise, self-serve plans, upgrades), so every preset sees
  every micro conversion: opt-ins by email, sms and newsletter, forms started
  and often left unsubmitted, accounts, downloads, comments, videos with
  progress at 25/50/75/90 % and completion, wishlist adds and cart removals.
- ``invalid_share`` of the lines are broken, spread over every reason the
  decoder names (``events.INVALID_REASONS``); ``duplicate_share`` are exact
  copies of an event re-sent up to 3 s after it; ``delayed_share`` of events
  arrive up to ``max_delay_ms`` late. The default delay stays far within the
  engine's 60 s allowed lateness, so no event is late unless asked for.
- A quarter of sessions come from a GA4-style tracker and 15 % from a
  Segment-style one, which spell event names, cart lines and video progress
  their own way. Most sessions carry a session id; some only an anonymous id,
  a few only a user id, and some gain a user id when the visitor logs in.
"""

from __future__ import annotations

import bisect
import logging
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import IO, Final

from streamfunnel import events as ev
from streamfunnel.errors import ConfigError
from streamfunnel.rules import INDUSTRIES
from streamfunnel.visitors import VALID, Arrival, SessionBuilder

__all__ = [
    "DEFAULT_START_MS",
    "DOCUMENTED_RANGES",
    "VALID",
    "Arrival",
    "SimulatedLine",
    "SimulationSettings",
    "lines_per_session",
    "simulate_arrivals",
    "simulate_duration",
    "simulate_labelled",
    "simulate_sessions",
    "write_lines",
]

logger = logging.getLogger(__name__)

SimulatedLine = tuple[bytes, str]

DEFAULT_START_MS: Final = 1_767_600_000_000  # 2026-01-05T08:00:00Z


_ONE_SESSION: Final = {
    "page_views_per_session": (4.0, 6.0),
    "bounce_rate": (0.4, 0.6),
    "macro_conversion_rate": (0.01, 0.03),
    "cart_abandonment_rate": (0.65, 0.75),
}
DOCUMENTED_RANGES: Final[dict[str, dict[str, tuple[float, float]]]] = {
    industry: dict(_ONE_SESSION) for industry in INDUSTRIES
}
DOCUMENTED_RANGES["saas"]["page_views_per_session"] = (1.5, 2.5)


@dataclass(frozen=True)
class SimulationSettings:
    """What to simulate. Shares are fractions (0.01 is 1 %), times are UTC."""

    industry: str = "ecommerce"
    seed: int = 0
    start_ms: int = DEFAULT_START_MS
    sessions_per_s: float = 10.0
    invalid_share: float = 0.005
    duplicate_share: float = 0.01
    delayed_share: float = 0.03
    # Beyond the engine's allowed lateness (60 s by default) delays make late events.
    max_delay_ms: int = 5000
    ga4_share: float = 0.25
    segment_share: float = 0.15
    epoch_ms_share: float = 0.2
    anonymous_only_share: float = 0.1
    user_only_share: float = 0.02
    login_share: float = 0.12

    def __post_init__(self) -> None:
        problems = [
            (name, "must be within 0 and 1")
            for name in (f.name for f in fields(self) if f.name.endswith("_share"))
            if not 0.0 <= getattr(self, name) <= 1.0
        ]
        for first, second in _SHARE_PAIRS:
            if getattr(self, first) + getattr(self, second) >= 1.0:
                problems.append((second, f"plus {first} must stay below 1"))
        if self.industry not in INDUSTRIES:
            problems.append(("industry", f"is not one of {', '.join(INDUSTRIES)}"))
        if not self.sessions_per_s > 0:
            problems.append(("sessions_per_s", "must be positive"))
        if self.max_delay_ms < 0:
            problems.append(("max_delay_ms", "must not be negative"))
        if ev.parse_timestamp(self.start_ms) is None:
            problems.append(("start_ms", "must be epoch ms between 2000 and 2100"))
        if problems:
            name, message = problems[0]
            raise ConfigError(f"simulation.{name}", message)


# Shares that split one population, so together they cannot reach all of it.
_SHARE_PAIRS: Final = (
    ("ga4_share", "segment_share"),
    ("invalid_share", "duplicate_share"),
    ("anonymous_only_share", "user_only_share"),
)


def simulate_sessions(settings: SimulationSettings, count: int) -> Iterator[bytes]:
    """JSON lines, in arrival order, of ``count`` sessions and their noise."""
    chunks = _chunks(settings, _starts(settings, count, None))
    return (line for chunk in chunks for _, line, _ in chunk)


def simulate_duration(
    settings: SimulationSettings, duration_s: float
) -> Iterator[bytes]:
    """JSON lines of every session starting within ``duration_s`` of the start.

    Sessions are emitted whole, so the last lines are a few minutes later.
    """
    chunks = _chunks(settings, _starts(settings, None, duration_s))
    return (line for chunk in chunks for _, line, _ in chunk)


def simulate_labelled(
    settings: SimulationSettings,
    *,
    count: int | None = None,
    duration_s: float | None = None,
) -> Iterator[SimulatedLine]:
    """The lines of either function above, each with what it was meant to be.

    Exactly one of ``count`` and ``duration_s`` is given.
    """
    if (count is None) == (duration_s is None):
        raise TypeError("give exactly one of count and duration_s")
    arrivals = simulate_arrivals(settings, count=count, duration_s=duration_s)
    return ((line, label) for _, line, label in arrivals)


def simulate_arrivals(
    settings: SimulationSettings,
    *,
    count: int | None = None,
    duration_s: float | None = None,
) -> Iterator[Arrival]:
    """Each line with the simulated epoch ms it reaches the topic, and its label.

    At most one of ``count`` and ``duration_s`` is given; with neither, the
    sessions never stop coming. Arrival times never decrease; a line's own
    timestamp is earlier than its arrival when the simulator delayed it.
    """
    if count is not None and duration_s is not None:
        raise TypeError("give at most one of count and duration_s")
    chunks = _chunks(settings, _starts(settings, count, duration_s))
    return (arrival for chunk in chunks for arrival in chunk)


def lines_per_session(
    settings: SimulationSettings, sample_sessions: int = 1000
) -> float:
    """The mean number of lines a session of these settings makes, noise included.

    Measured on a sample rather than derived from the profile, so that it stays
    right whatever the visitors do; the sample takes a few tens of milliseconds.
    """
    if sample_sessions < 1:
        raise ValueError("sample_sessions must be at least 1")
    lines = sum(1 for _ in simulate_sessions(settings, sample_sessions))
    return lines / sample_sessions


def write_lines(lines: Iterable[bytes], stream: IO[bytes]) -> int:
    """Write ``lines`` newline-terminated to a binary stream; returns how many."""
    written = 0
    write = stream.write
    for line in lines:
        write(line + b"\n")
        written += 1
    return written


def _starts(
    settings: SimulationSettings,
    count: int | None,
    duration_s: float | None,
) -> Iterator[float]:
    # A separate stream of randomness, so changing the arrival rate keeps what
    # each session does.
    rng = random.Random(f"{settings.seed}:arrivals")
    rate_per_ms = settings.sessions_per_s / 1000.0
    end = math.inf if duration_s is None else settings.start_ms + duration_s * 1000
    at = float(settings.start_ms)
    made = 0
    while (count is None or made < count) and at < end:
        yield at
        made += 1
        at += rng.expovariate(rate_per_ms)


# Sessions are merged by sorting a window of pending lines, which is much cheaper
# than a heap push and pop per line; all lines arriving before the next start
# can no longer be overtaken.
_SESSIONS_PER_CHUNK: Final = 2048


def _chunks(
    settings: SimulationSettings, starts: Iterator[float]
) -> Iterator[list[Arrival]]:
    builder = SessionBuilder(settings)
    pending: list[Arrival] = []
    logger.debug("simulating %s traffic with seed %s", settings.industry, settings.seed)
    for index, start in enumerate(starts):
        start_ms = int(start)
        if index and not index % _SESSIONS_PER_CHUNK:
            pending.sort()
            cut = bisect.bisect_left(pending, (start_ms,))
            yield pending[:cut]
            del pending[:cut]
        builder.build(start_ms, pending)
    pending.sort()
    yield pending
