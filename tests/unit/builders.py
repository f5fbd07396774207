"""Small builders for events and engines, shared by the unit tests."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from streamfunnel.config import build_rules
from streamfunnel.engine import FunnelEngine
from streamfunnel.events import Event, EventDecoder
from streamfunnel.records import Record
from streamfunnel.rules import Rules

T0 = 1_767_600_000_000  # 2026-01-05T08:00:00Z
SECOND = 1000
MINUTE = 60 * SECOND

_ids = itertools.count(1)


def raw(
    type_: str,
    at_ms: int,
    session: str | None = "s1",
    event_id: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": event_id or f"e{next(_ids)}",
        "type": type_,
        "timestamp": at_ms,
    }
    if session is not None:
        doc["session_id"] = session
    if properties:
        doc["properties"] = properties
    return doc


def event(doc: dict[str, Any], rules: Rules | None = None) -> Event:
    decoded = EventDecoder(rules.aliases if rules else None).decode(orjson.dumps(doc))
    assert isinstance(decoded, Event), decoded
    return decoded


def rules(industry: str = "ecommerce", **doc: Any) -> Rules:
    return build_rules({"industry": industry, **doc})


def run(docs: list[dict[str, Any]], rules_: Rules | None = None) -> list[Record]:
    """All records the engine gives for ``docs`` in this arrival order."""
    return run_engine(docs, rules_)[0]


def run_engine(
    docs: list[dict[str, Any]], rules_: Rules | None = None
) -> tuple[list[Record], FunnelEngine]:
    """The records, and the engine with its tally, after ``docs`` and the end."""
    rules_ = rules_ or build_rules({})
    engine = FunnelEngine(rules_)
    out: list[Record] = []
    for doc in docs:
        engine.ingest(event(doc, rules_))
        out.extend(engine.take())
    engine.flush()
    out.extend(engine.take())
    return out, engine


def of_type(records: list[Record], type_: str) -> list[Record]:
    return [r for r in records if r["type"] == type_]


def names(records: list[Record], type_: str) -> list[str]:
    return [str(r.get("name") or r.get("kind")) for r in of_type(records, type_)]
