"""Pacing live traffic: when each line is due, how fast it really goes, progress.

Every line has a place in a schedule, in seconds since the start of sending,
and is due at the schedule's origin plus its place on the monotonic clock. A
sender that falls behind catches up by at most ``MAX_CATCH_UP_S`` worth of
lines, instead of bursting after a stall; the pace it keeps is measured over a
sliding window, and one that stays below 95 % of it for a few seconds is told
so, once.
"""

from __future__ import annotations

from collections import deque
from typing import IO, Final

MAX_CATCH_UP_S: Final = 1.0
KEEP_UP_SHARE: Final = 0.95
RATE_WINDOW_S: Final = 2.0
SLOW_WARNING_AFTER_S: Final = 3.0
PROGRESS_TTY_EVERY_S: Final = 1.0
PROGRESS_PLAIN_EVERY_S: Final = 5.0


class Pacer:
    """When each line is due: ``origin_s`` plus the line's place in the schedule.

    A place is seconds since the start of sending. A sender more than
    ``max_catch_up_s`` behind moves the origin rather than bursting, and counts
    the time it gave up in ``slipped_s``.
    """

    def __init__(self, start_s: float, max_catch_up_s: float = MAX_CATCH_UP_S) -> None:
        self.origin_s = start_s
        self.max_catch_up_s = max_catch_up_s
        self.slipped_s = 0.0

    def wait_s(self, place_s: float, now_s: float) -> float:
        """Seconds until the line at ``place_s`` is due; 0 once it is."""
        behind_s = now_s - self.origin_s - place_s
        if behind_s > self.max_catch_up_s:
            slip_s = behind_s - self.max_catch_up_s
            self.origin_s += slip_s
            self.slipped_s += slip_s
        return max(0.0, -behind_s)

    def progress_s(self, place_s: float, now_s: float) -> float:
        """How far along the schedule the sender is, the next line at ``place_s``.

        While it waits for a line that is not due yet it is exactly on schedule.
        """
        return min(now_s - self.origin_s, place_s)


class RateMeter:
    """Lines sent and schedule progress over the last ``window_s`` of wall time."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int, float]] = deque()

    def record(self, now_s: float, sent: int, progress_s: float) -> None:
        samples = self._samples
        if samples and samples[-1][0] >= now_s:
            samples[-1] = (samples[-1][0], sent, progress_s)
            return
        samples.append((now_s, sent, progress_s))
        # The oldest sample kept is the last one at or before the window's start.
        while len(samples) > 2 and samples[1][0] <= now_s - self.window_s:
            samples.popleft()

    def rate_per_s(self) -> float:
        """Lines per second over the window, or since the start if shorter."""
        if len(self._samples) < 2:
            return 0.0
        (first_s, first_sent, _), (last_s, last_sent, _) = (
            self._samples[0],
            self._samples[-1],
        )
        return (last_sent - first_sent) / (last_s - first_s)

    def pace(self) -> float | None:
        """Schedule seconds per wall second (1.0 is on time); None before a window."""
        if len(self._samples) < 2:
            return None
        (first_s, _, first_progress), (last_s, _, last_progress) = (
            self._samples[0],
            self._samples[-1],
        )
        span_s = last_s - first_s
        if span_s < self.window_s:
            return None
        return (last_progress - first_progress) / span_s


class KeepUpCheck:
    """Decides, once, that the sender has been below its pace for too long."""

    def __init__(
        self, share: float = KEEP_UP_SHARE, after_s: float = SLOW_WARNING_AFTER_S
    ) -> None:
        self.share = share
        self.after_s = after_s
        self.slow_since_s: float | None = None
        self.warned = False

    def too_slow(self, now_s: float, pace: float | None) -> bool:
        """True exactly once: when the pace has stayed low for ``after_s``."""
        if self.warned:
            return False
        if pace is None or pace >= self.share:
            self.slow_since_s = None
            return False
        if self.slow_since_s is None:
            self.slow_since_s = now_s
        if now_s - self.slow_since_s >= self.after_s:
            self.warned = True
            return True
        return False


# -- progress ----------------------------------------------------------------


def format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_progress(sent: int, rate_per_s: float, elapsed_s: float) -> str:
    return (
        f"sent {sent:,} events, {rate_per_s:,.0f} events/s, "
        f"{format_elapsed(elapsed_s)} elapsed"
    )


class Progress:
    """A progress line redrawn in place on a terminal, or plain lines in a log.

    Plain lines come less often: a log of the run needs a line every few
    seconds, not one per second.
    """

    def __init__(
        self, stream: IO[str], tty: bool, every_s: float | None = None
    ) -> None:
        self.stream = stream
        self.tty = tty
        default_s = PROGRESS_TTY_EVERY_S if tty else PROGRESS_PLAIN_EVERY_S
        self.every_s = default_s if every_s is None else every_s
        self._next_s: float | None = None
        self._width = 0

    def due(self, now_s: float) -> bool:
        """Whether a line is due; the first comes ``every_s`` after the first call."""
        if self._next_s is None:
            self._next_s = now_s + self.every_s
            return False
        if now_s < self._next_s:
            return False
        self._next_s += self.every_s
        if self._next_s <= now_s:
            # Called late (a long stall): count the next period from now.
            self._next_s = now_s + self.every_s
        return True

    def show(self, line: str) -> None:
        if self.tty:
            padding = " " * max(0, self._width - len(line))
            self.stream.write(f"\r{line}{padding}")
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def warn(self, message: str) -> None:
        self._clear()
        self.stream.write(f"warning: {message}\n")
        self.stream.flush()

    def finish(self, line: str) -> None:
        self._clear()
        self.stream.write(line + "\n")
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
