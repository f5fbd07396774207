"""The clickstream event contract: decoding raw bytes into events or invalid inputs.

Decoding is the only place that looks at raw bytes. It never raises for bad
input: each line becomes either an ``Event`` or an ``Invalid`` that names its
reason, so a single bad producer can never stop the pipeline.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Final, final

import orjson

from streamfunnel.vocabulary import default_aliases

logger = logging.getLogger(__name__)

# Reasons are metric label values, so the set is closed and documented.
NOT_UTF8: Final = "not_utf8"
MALFORMED_JSON: Final = "malformed_json"
NOT_AN_OBJECT: Final = "not_an_object"
MISSING_EVENT_ID: Final = "missing_event_id"
MISSING_TYPE: Final = "missing_type"
MISSING_TIMESTAMP: Final = "missing_timestamp"
MISSING_IDENTITY: Final = "missing_identity"
BAD_TIMESTAMP: Final = "bad_timestamp"
BAD_PROPERTIES: Final = "bad_properties"
BAD_FIELD: Final = "bad_field"
# Decided by the engine, not the decoder: the event is older than stream time.
LATE: Final = "late"

INVALID_REASONS: Final[tuple[str, ...]] = (
    NOT_UTF8,
    MALFORMED_JSON,
    NOT_AN_OBJECT,
    MISSING_EVENT_ID,
    MISSING_TYPE,
    MISSING_TIMESTAMP,
    MISSING_IDENTITY,
    BAD_TIMESTAMP,
    BAD_PROPERTIES,
    BAD_FIELD,
)

# Properties that identify a person. They are dropped at decoding unless the
# configuration asks for contact details, so they never reach session state.
CONTACT_PROPERTIES: Final = ("email", "phone")

IDENTITY_FIELDS: Final[tuple[str, str, str]] = ("session_id", "anonymous_id", "user_id")

# Timestamps outside these years are almost always epoch seconds sent as
# milliseconds (or the reverse); rejecting them beats silently misplacing events
# by decades.
MIN_TIMESTAMP_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TIMESTAMP_MS: Final = 4_102_444_800_000  # 2100-01-01T00:00:00Z

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
_EMPTY: Final[dict[str, Any]] = {}


@final
class Event:
    """One valid clickstream event, reduced to what the funnel rules read.

    ``type`` is canonical when the name is known (directly or by alias) and the
    producer's own name otherwise. ``key`` is the session key: the session id
    when present, else the anonymous id, else the user id.
    """

    __slots__ = (
        "anonymous_id",
        "event_id",
        "key",
        "properties",
        "session_id",
        "ts",
        "type",
        "user_id",
    )

    def __init__(
        self,
        event_id: str,
        type_: str,
        ts: int,
        session_id: str | None,
        anonymous_id: str | None,
        user_id: str | None,
        properties: dict[str, Any],
    ) -> None:
        self.event_id = event_id
        self.type = type_
        self.ts = ts
        self.session_id = session_id
        self.anonymous_id = anonymous_id
        self.user_id = user_id
        self.properties = properties
        key = session_id or anonymous_id or user_id
        if key is None:
            raise ValueError("an event needs at least one identity field")
        self.key: str = key

    def __repr__(self) -> str:
        return f"Event({self.event_id!r}, {self.type!r}, {self.ts}, {self.key!r})"

    def sort_key(self) -> tuple[int, str]:
        """Event-time order; the id breaks ties so equal timestamps stay stable."""
        return (self.ts, self.event_id)


@final
class Invalid:
    """An input that is not a valid event, kept whole for the dead-letter output."""

    __slots__ = ("detail", "raw", "reason")

    def __init__(self, reason: str, detail: str, raw: bytes) -> None:
        self.reason = reason
        self.detail = detail
        self.raw = raw

    def __repr__(self) -> str:
        return f"Invalid({self.reason!r}, {self.detail!r})"


def parse_timestamp(value: object) -> int | None:
    """Epoch milliseconds from an ISO-8601 string with a zone, or an integer.

    Returns None when the value cannot be a timestamp, including ISO strings
    without a zone: guessing the zone would shift events by hours.
    """
    if type(value) is str:
        ms = _parse_iso(value)
        if ms is None:
            return None
    elif type(value) is int:
        ms = value
    else:
        return None
    if ms < MIN_TIMESTAMP_MS or ms >= MAX_TIMESTAMP_MS:
        return None
    return ms


# Events arrive roughly in time order, so consecutive timestamps share their
# date and time up to the second. Caching "YYYY-MM-DDTHH:MM:SS" -> epoch ms turns
# the common UTC form into a dictionary hit plus the milliseconds.
_SECOND_CACHE: dict[str, int] = {}
_SECOND_CACHE_MAX: Final = 4096


def _parse_iso(text: str) -> int | None:
    if len(text) == 24 and text[23] == "Z" and text[19] == ".":
        fraction = text[20:23]
        if fraction.isdigit() and fraction.isascii():
            second = _SECOND_CACHE.get(text[:19])
            if second is None:
                second = _parse_iso_slow(text[:19] + "Z")
                if second is None:
                    return None
                if len(_SECOND_CACHE) >= _SECOND_CACHE_MAX:
                    _SECOND_CACHE.clear()
                _SECOND_CACHE[text[:19]] = second
            return second + int(fraction)
    return _parse_iso_slow(text)


def _parse_iso_slow(text: str) -> int | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return (parsed - _EPOCH) // _ONE_MS


_FORMAT_CACHE: dict[int, str] = {}


def format_timestamp(ms: int) -> str:
    """ISO-8601 UTC with millisecond precision, the form every output record uses."""
    second, millis = divmod(ms, 1000)
    prefix = _FORMAT_CACHE.get(second)
    if prefix is None:
        if len(_FORMAT_CACHE) >= _SECOND_CACHE_MAX:
            _FORMAT_CACHE.clear()
        prefix = (_EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S")
        _FORMAT_CACHE[second] = prefix
    return f"{prefix}.{millis:03d}Z"


@final
class EventDecoder:
    """Turns raw JSON lines into events, mapping type aliases to canonical names.

    ``property_types`` names the (canonical) event types whose properties the
    rules read; other events keep no properties at all. Events wait in memory
    until stream time passes them, and most are page views whose properties no
    rule reads, so dropping them early keeps that buffer small and cache-warm.
    ``None`` keeps every event's properties. Without ``keep_contact`` the
    contact properties (email, phone) are removed from the ones kept.
    """

    def __init__(
        self,
        aliases: dict[str, str] | None = None,
        property_types: frozenset[str] | None = None,
        keep_contact: bool = True,
    ) -> None:
        self.aliases = default_aliases() if aliases is None else dict(aliases)
        self.property_types = property_types
        self.keep_contact = keep_contact

    def decode(self, raw: bytes) -> Event | Invalid:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _undecodable(raw, exc)
        if type(doc) is not dict:
            return Invalid(NOT_AN_OBJECT, f"a JSON {type(doc).__name__}", raw)

        event_id = doc.get("event_id")
        if type(event_id) is not str or not event_id:
            if event_id is None or event_id == "":
                return Invalid(MISSING_EVENT_ID, "event_id is required", raw)
            return Invalid(BAD_FIELD, "event_id must be a string", raw)

        type_name = doc.get("type")
        if type(type_name) is not str or not type_name:
            if type_name is None or type_name == "":
                return Invalid(MISSING_TYPE, "type is required", raw)
            return Invalid(BAD_FIELD, "type must be a string", raw)

        stamp = doc.get("timestamp")
        if stamp is None:
            return Invalid(MISSING_TIMESTAMP, "timestamp is required", raw)
        ts = parse_timestamp(stamp)
        if ts is None:
            return Invalid(
                BAD_TIMESTAMP,
                "timestamp must be ISO-8601 with a zone or epoch milliseconds"
                " between 2000 and 2100",
                raw,
            )

        session_id = doc.get("session_id")
        anonymous_id = doc.get("anonymous_id")
        user_id = doc.get("user_id")
        if session_id is not None and type(session_id) is not str:
            return Invalid(BAD_FIELD, "session_id must be a string", raw)
        if anonymous_id is not None and type(anonymous_id) is not str:
            return Invalid(BAD_FIELD, "anonymous_id must be a string", raw)
        if user_id is not None and type(user_id) is not str:
            return Invalid(BAD_FIELD, "user_id must be a string", raw)
        if not (session_id or anonymous_id or user_id):
            return Invalid(
                MISSING_IDENTITY,
                "one of session_id, anonymous_id, user_id is required",
                raw,
            )

        properties = doc.get("properties")
        if properties is None:
            properties = _EMPTY
        elif type(properties) is not dict:
            return Invalid(BAD_PROPERTIES, "properties must be an object", raw)
        canonical = self.aliases.get(type_name, type_name)
        keep = self.property_types
        if keep is not None and canonical not in keep:
            properties = _EMPTY
        elif not self.keep_contact and properties:
            for name in CONTACT_PROPERTIES:
                if name in properties:
                    properties = {
                        k: v
                        for k, v in properties.items()
                        if k not in CONTACT_PROPERTIES
                    }
                    break

        return Event(
            event_id,
            canonical,
            ts,
            session_id or None,
            anonymous_id or None,
            user_id or None,
            properties,
        )


def _undecodable(raw: bytes, exc: orjson.JSONDecodeError) -> Invalid:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return Invalid(NOT_UTF8, "input is not UTF-8", raw)
    return Invalid(MALFORMED_JSON, str(exc), raw)
