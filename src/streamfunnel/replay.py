"""Offline replay: run a JSON-lines file of historical events through the engine.

The same rules as the live worker, with end of input taken as the end of time,
so every open session ends and raises its alerts. Output records go to one
stream, invalid and late lines (with their reason) to another, and progress
and the summary to a third: stdout stays clean for piping into other tools.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from streamfunnel.engine import LATE, FunnelEngine, decoder_for
from streamfunnel.events import Invalid
from streamfunnel.rules import Rules
from streamfunnel.tally import Tally, bump

PROGRESS_EVERY_S = 2.0
_PROGRESS_CHECK_LINES = 16384


@dataclass
class ReplayResult:
    lines: int = 0
    records: int = 0
    dead_letters: int = 0
    elapsed_s: float = 0.0
    tally: Tally = field(default_factory=Tally)
    sessions_open_at_end: int = 0


def dead_letter_record(
    reason: str, detail: str, raw: bytes, line_number: int
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "line": line_number,
    }
    try:
        record["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_base64"] = base64.b64encode(raw).decode("ascii")
    return record


def replay(
    lines: Iterable[bytes],
    rules: Rules,
    out: IO[bytes],
    dead_letter: IO[bytes] | None = None,
    progress: IO[str] | None = None,
) -> ReplayResult:
    """Process ``lines`` and write records to ``out``; returns the counts."""
    engine = FunnelEngine(rules)
    decoder = decoder_for(rules)
    result = ReplayResult(tally=engine.tally)
    tally = engine.tally
    write = out.write
    dumps = orjson.dumps
    started = time.monotonic()
    next_progress = started + PROGRESS_EVERY_S
    line_number = 0

    for line_number, line in enumerate(lines, start=1):
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            continue
        item = decoder.decode(raw)
        if isinstance(item, Invalid):
            bump(tally.invalid, item.reason)
            _dead(result, dead_letter, item.reason, item.detail, raw, line_number)
        elif engine.ingest(item) == LATE:
            _dead(result, dead_letter, LATE, _late_detail(engine), raw, line_number)
        if engine.outbox:
            for record in engine.take():
                write(dumps(record))
                write(b"\n")
                result.records += 1
        if progress is not None and not line_number % _PROGRESS_CHECK_LINES:
            now = time.monotonic()
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY_S
                _progress(progress, line_number, now - started)

    result.lines = line_number
    result.sessions_open_at_end = len(engine.sessions)
    engine.flush()
    for record in engine.take():
        write(dumps(record))
        write(b"\n")
        result.records += 1
    result.elapsed_s = time.monotonic() - started
    return result


def _late_detail(engine: FunnelEngine) -> str:
    return (
        "event time is before stream time (latest event time minus allowed "
        f"lateness of {engine.rules.allowed_lateness_s:g} s)"
    )


def _dead(
    result: ReplayResult,
    sink: IO[bytes] | None,
    reason: str,
    detail: str,
    raw: bytes,
    line_number: int,
) -> None:
    result.dead_letters += 1
    if sink is not None:
        sink.write(orjson.dumps(dead_letter_record(reason, detail, raw, line_number)))
        sink.write(b"\n")


def _progress(stream: IO[str], lines: int, elapsed_s: float) -> None:
    rate = lines / elapsed_s if elapsed_s > 0 else 0.0
    stream.write(f"replay: {lines:,} lines, {rate:,.0f} lines/s, {elapsed_s:.1f} s\n")
    stream.flush()


def summary(result: ReplayResult, rules: Rules) -> str:
    """A human summary for stderr: counts, conversions, abandonment, funnel."""
    t = result.tally
    ended = sum(t.sessions_ended.values())
    rows = [
        f"lines read        {result.lines:,} in {result.elapsed_s:.2f} s",
        f"events accepted   {t.events_total:,}",
        f"invalid           {t.invalid_total:,}" + _breakdown(t.invalid),
        f"late              {t.late:,}",
        f"duplicates        {t.duplicates:,}",
        f"sessions          {t.sessions_started:,} started, {ended:,} ended"
        + _breakdown(t.sessions_ended),
        f"records written   {result.records:,}",
        "macro conversions " + _listing(t.macro),
        "micro conversions " + _listing(t.micro),
        "sequences         " + _listing(t.sequences),
        "abandonments      " + _listing(t.abandonments),
    ]
    if t.ignored_cart_lines:
        rows.append(
            f"cart lines without item id or with bad numbers: {t.ignored_cart_lines:,}"
        )
    for funnel in rules.funnels:
        rows.append(f"funnel {funnel.name}:")
        previous: int | None = None
        for step in funnel.steps:
            reached = t.funnel_reached.get((funnel.name, step), 0)
            rate = ""
            if previous:
                rate = f"  {100.0 * reached / previous:5.1f}% of previous step"
            rows.append(f"  {step:<20} {reached:>10,}{rate}")
            previous = reached
    return "\n".join(rows) + "\n"


def _listing(counts: dict[str, int]) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{name} {n:,}" for name, n in sorted(counts.items()))


def _breakdown(counts: dict[str, int]) -> str:
    if not counts:
        return ""
    return " (" + _listing(counts) + ")"
