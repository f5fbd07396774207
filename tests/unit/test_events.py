from __future__ import annotations

import orjson
import pytest

from streamfunnel import events as ev
from streamfunnel import vocabulary as v
from streamfunnel.events import Event, EventDecoder, Invalid

from .builders import T0

DECODER = EventDecoder()


def decode(doc: object) -> Event | Invalid:
    return DECODER.decode(orjson.dumps(doc))


def valid(**extra: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "event_id": "e1",
        "type": "page_view",
        "timestamp": "2026-01-05T08:00:00.120Z",
        "session_id": "s1",
    }
    doc.update(extra)
    return doc


def test_valid_event_fields() -> None:
    event = decode(valid(anonymous_id="a1", user_id="u1", properties={"x": 1}))
    assert isinstance(event, Event)
    assert event.event_id == "e1"
    assert event.type == v.PAGE_VIEW
    assert event.ts == T0 + 120
    assert (event.session_id, event.anonymous_id, event.user_id) == ("s1", "a1", "u1")
    assert event.properties == {"x": 1}


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-01-05T08:00:00.120Z", T0 + 120),
        ("2026-01-05T09:00:00.120+01:00", T0 + 120),
        ("2026-01-05T08:00:00Z", T0),
        (T0 + 5, T0 + 5),
    ],
)
def test_timestamp_forms(stamp: object, expected: int) -> None:
    event = decode(valid(timestamp=stamp))
    assert isinstance(event, Event)
    assert event.ts == expected


@pytest.mark.parametrize(
    ("identity", "key"),
    [
        ({"session_id": "s", "anonymous_id": "a", "user_id": "u"}, "s"),
        ({"anonymous_id": "a", "user_id": "u"}, "a"),
        ({"user_id": "u"}, "u"),
        ({"session_id": "", "anonymous_id": "a"}, "a"),
    ],
)
def test_session_key_precedence(identity: dict[str, str], key: str) -> None:
    doc = valid()
    del doc["session_id"]
    doc.update(identity)
    event = decode(doc)
    assert isinstance(event, Event)
    assert event.key == key


@pytest.mark.parametrize(
    ("family", "table"),
    [("ga4", v.GA4_ALIASES), ("segment", v.SEGMENT_ALIASES)],
)
def test_alias_families_map_to_canonical(family: str, table: dict[str, str]) -> None:
    for alias, canonical in table.items():
        event = decode(valid(type=alias))
        assert isinstance(event, Event), family
        assert event.type == canonical
        assert canonical in v.CANONICAL_TYPES


def test_every_canonical_type_is_accepted_as_is() -> None:
    for name in v.CANONICAL_TYPES:
        event = decode(valid(type=name))
        assert isinstance(event, Event)
        assert event.type == name


def test_unknown_type_is_kept_verbatim() -> None:
    event = decode(valid(type="Coupon Applied"))
    assert isinstance(event, Event)
    assert event.type == "Coupon Applied"


def test_configured_alias_maps_custom_type() -> None:
    decoder = EventDecoder({**v.default_aliases(), "Lead Captured": "form_submit"})
    event = decoder.decode(orjson.dumps(valid(type="Lead Captured")))
    assert isinstance(event, Event)
    assert event.type == v.FORM_SUBMIT


def test_null_properties_mean_none() -> None:
    event = decode(valid(properties=None))
    assert isinstance(event, Event)
    assert event.properties == {}


def _without(name: str) -> dict[str, object]:
    doc = valid()
    del doc[name]
    return doc


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe{not utf8", ev.NOT_UTF8),
        (b'{"event_id": "e1", ', ev.MALFORMED_JSON),
        (b"[1, 2]", ev.NOT_AN_OBJECT),
        (b'"a string"', ev.NOT_AN_OBJECT),
        (orjson.dumps(_without("event_id")), ev.MISSING_EVENT_ID),
        (orjson.dumps(valid(event_id="")), ev.MISSING_EVENT_ID),
        (orjson.dumps(valid(event_id=17)), ev.BAD_FIELD),
        (orjson.dumps(_without("type")), ev.MISSING_TYPE),
        (orjson.dumps(valid(type=["page_view"])), ev.BAD_FIELD),
        (orjson.dumps(_without("timestamp")), ev.MISSING_TIMESTAMP),
        (orjson.dumps(valid(timestamp="yesterday")), ev.BAD_TIMESTAMP),
        (orjson.dumps(valid(timestamp="2026-01-05T08:00:00")), ev.BAD_TIMESTAMP),
        (orjson.dumps(valid(timestamp=1_767_600_000)), ev.BAD_TIMESTAMP),
        (orjson.dumps(valid(timestamp=1.5e12)), ev.BAD_TIMESTAMP),
        (orjson.dumps(valid(timestamp=True)), ev.BAD_TIMESTAMP),
        (orjson.dumps(_without("session_id")), ev.MISSING_IDENTITY),
        (orjson.dumps(valid(session_id=None)), ev.MISSING_IDENTITY),
        (orjson.dumps(valid(session_id=5)), ev.BAD_FIELD),
        (orjson.dumps(valid(properties=[1])), ev.BAD_PROPERTIES),
        (orjson.dumps(valid(properties="x")), ev.BAD_PROPERTIES),
    ],
)
def test_invalid_inputs_have_a_reason(payload: bytes, reason: str) -> None:
    result = DECODER.decode(payload)
    assert isinstance(result, Invalid)
    assert result.reason == reason
    assert result.reason in ev.INVALID_REASONS
    assert result.raw == payload
    assert result.detail


def test_format_timestamp_round_trips() -> None:
    assert ev.format_timestamp(T0 + 120) == "2026-01-05T08:00:00.120Z"
    assert ev.parse_timestamp(ev.format_timestamp(T0 + 7)) == T0 + 7
