"""The line every kind of output record prints as, and what counts as malformed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streamfunnel.subscription import RecordError, format_record, render

SESSION = "s-1:1767600000000"


def abandonment(kind: str, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "abandonment",
        "kind": kind,
        "alert_id": "a1",
        "session_id": SESSION,
        "session_key": "s-1",
        "anonymous_id": "a-1",
        "user_id": "u1",
        "last_event_at": "2026-01-05T08:01:00.000Z",
        "detected_at": "2026-01-05T08:31:00.000Z",
        "cart": {
            "items": [
                {"item_id": "p1", "quantity": 1, "price": 30.0},
                {"item_id": "p2", "quantity": 2, "price": 6.0},
            ],
            "value": 42.0,
            "currency": "EUR",
        },
        "micro_conversions": ["add_to_cart", "checkout_start"],
        "funnel_step": "checkout_start",
        "intent_score": 65.0,
    }
    record.update(changes)
    return record


def conversion(kind: str, name: str, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": kind,
        "name": name,
        "session_id": SESSION,
        "session_key": "s-1",
        "anonymous_id": "a-1",
        "event_id": "e-9",
        "at": "2026-01-05T08:00:05.250Z",
    }
    record.update(changes)
    return record


@pytest.mark.parametrize(
    ("record", "line"),
    [
        (
            abandonment("cart"),
            f"08:31:00 CART abandoned     session={SESSION} user=u1 "
            "value=EUR 42.00 items=3 step=checkout_start intent=65 "
            "micro=add_to_cart,checkout_start",
        ),
        (
            abandonment(
                "checkout",
                user_id=None,
                intent_score=62.25,
                cart={
                    "items": [{"item_id": "p", "quantity": 1, "price": 5}],
                    "value": 5,
                    "currency": None,
                },
            ),
            f"08:31:00 CHECKOUT abandoned session={SESSION} anon=a-1 value=5.00 "
            "items=1 step=checkout_start intent=62.2 micro=add_to_cart,checkout_start",
        ),
        (
            abandonment(
                "form",
                form_id="contact",
                detected_at="2026-01-05T08:01:40.000Z",
                cart={"items": [], "value": 0.0, "currency": None},
                micro_conversions=[],
                funnel_step="visit",
                intent_score=10,
            ),
            f"08:01:40 FORM abandoned     form=contact session={SESSION} user=u1 "
            "step=visit intent=10 micro=-",
        ),
        (
            conversion("macro_conversion", "purchase", user_id="u1"),
            f"08:00:05 MACRO purchase     session={SESSION} user=u1",
        ),
        (
            conversion("micro_conversion", "add_to_cart"),
            f"08:00:05 MICRO add_to_cart  session={SESSION} anon=a-1",
        ),
        (
            conversion(
                "sequence",
                "browse_to_cart",
                steps=["multi_page_view", "add_to_cart", "checkout_start"],
            ),
            "08:00:05 SEQUENCE browse_to_cart "
            "(multi_page_view \u2192 add_to_cart \u2192 checkout_start) "
            f"session={SESSION} anon=a-1",
        ),
    ],
)
def test_every_record_type_reads_as_one_line(record: dict[str, Any], line: str) -> None:
    assert format_record(record) == line
    assert render(orjson.dumps(record), as_json=False) == line


def test_json_lines_are_the_record_compact() -> None:
    record = abandonment("cart")
    pretty = orjson.dumps(record, option=orjson.OPT_INDENT_2)
    rendered = render(pretty, as_json=True)
    assert "\n" not in rendered
    assert orjson.loads(rendered) == record


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "no value"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "a JSON list, not an object"),
        (b'{"type": "hello"}', "unknown record type 'hello'"),
        (b'{"name": "x"}', "no type"),
        (orjson.dumps(abandonment("cart", session_id=None)), "session_id is missing"),
        (orjson.dumps(abandonment("cart", intent_score="high")), "intent_score is"),
        (orjson.dumps(abandonment("cart", cart=[])), "cart is not an object"),
        (orjson.dumps(conversion("sequence", "s")), "steps is not a list"),
        (orjson.dumps(conversion("micro_conversion", "m", at="soon")), "at is"),
    ],
)
def test_malformed_records_name_what_is_wrong(value: bytes | None, reason: str) -> None:
    with pytest.raises(RecordError) as caught:
        render(value, as_json=False)
    assert caught.value.reason.startswith(reason)


def test_json_output_still_refuses_what_is_not_a_json_object() -> None:
    with pytest.raises(RecordError):
        render(b"plain text", as_json=True)
    assert render(b'{"type": "other"}', as_json=True) == '{"type":"other"}'
