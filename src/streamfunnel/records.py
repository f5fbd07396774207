"""Output records: the JSON objects streamfunnel publishes, one builder per type.

Every record carries the session's derived id, its key and whichever of
``anonymous_id`` and ``user_id`` the session has seen, so a subscriber can act
on it without looking anything up.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from streamfunnel.events import format_timestamp
from streamfunnel.sessions import SessionState

MICRO_CONVERSION: Final = "micro_conversion"
MACRO_CONVERSION: Final = "macro_conversion"
SEQUENCE: Final = "sequence"
ABANDONMENT: Final = "abandonment"

CONVERSION_TYPES: Final = frozenset({MICRO_CONVERSION, MACRO_CONVERSION, SEQUENCE})

Record = dict[str, Any]


def conversion(
    kind: str, name: str, session: SessionState, event_id: str, at_ms: int
) -> Record:
    record: Record = {
        "type": kind,
        "name": name,
        "session_id": session.session_id,
        "session_key": session.key,
    }
    if session.anonymous_id is not None:
        record["anonymous_id"] = session.anonymous_id
    if session.user_id is not None:
        record["user_id"] = session.user_id
    record["event_id"] = event_id
    record["at"] = format_timestamp(at_ms)
    return record


def sequence(
    name: str, steps: tuple[str, ...], session: SessionState, event_id: str, at_ms: int
) -> Record:
    record = conversion(SEQUENCE, name, session, event_id, at_ms)
    record["steps"] = list(steps)
    return record


def alert_id(session_id: str, kind: str, form_id: str | None) -> str:
    """Deterministic: the same session and kind always give the same id.

    Subscribers de-duplicate on it, which is what makes at-least-once delivery
    safe to act on (one recovery email per abandoned cart, not one per retry).
    """
    text = f"{session_id}\x1f{kind}\x1f{form_id if form_id is not None else ''}"
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def abandonment(
    kind: str,
    session: SessionState,
    detected_ms: int,
    funnel_step: str,
    intent_score: float,
    form_id: str | None = None,
    include_contact: bool = False,
) -> Record:
    record: Record = {
        "type": ABANDONMENT,
        "kind": kind,
        "alert_id": alert_id(session.session_id, kind, form_id),
    }
    record.update(session.identity())
    record["last_event_at"] = format_timestamp(session.last_ts)
    record["detected_at"] = format_timestamp(detected_ms)
    record["cart"] = session.cart.to_record()
    if kind == "form":
        record["form_id"] = form_id
    record["micro_conversions"] = list(session.micro)
    record["funnel_step"] = funnel_step
    record["intent_score"] = intent_score
    if include_contact and session.contact is not None:
        record["email"] = session.contact
    return record
