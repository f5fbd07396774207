"""Cart, checkout and form abandonment, decided when a session ends."""

from __future__ import annotations

from typing import Any

from streamfunnel import vocabulary as v
from streamfunnel.records import alert_id

from .builders import MINUTE, SECOND, T0, names, of_type, raw, rules, run


def cart_add(at: int, item: str = "sku1", qty: int = 1, price: float = 10.0) -> Any:
    return raw(
        v.ADD_TO_CART, at, items=[{"item_id": item, "quantity": qty, "price": price}]
    )


def test_full_cart_at_session_end_is_cart_abandonment() -> None:
    records = run([raw(v.PAGE_VIEW, T0), cart_add(T0 + SECOND, qty=2)])
    [alert] = of_type(records, "abandonment")
    assert alert["kind"] == "cart"
    assert alert["cart"] == {
        "items": [{"item_id": "sku1", "quantity": 2, "price": 10.0}],
        "value": 20.0,
        "currency": None,
    }
    assert alert["last_event_at"] == "2026-01-05T08:00:01.000Z"
    assert alert["detected_at"] == "2026-01-05T08:30:01.000Z"
    assert alert["funnel_step"] == "add_to_cart"
    assert alert["micro_conversions"] == ["add_to_cart"]
    assert alert["intent_score"] == 20
    assert alert["session_id"] == f"s1:{T0}"
    assert alert["alert_id"] == alert_id(f"s1:{T0}", "cart", None)


def test_segment_cart_lines_and_currency() -> None:
    docs = [
        raw(v.ADD_TO_CART, T0, product_id="p1", price=2.5, quantity=4, currency="EUR"),
        raw(v.ADD_TO_CART, T0 + 1, product_id="p2", price="1"),
    ]
    [alert] = of_type(run(docs), "abandonment")
    assert alert["cart"]["value"] == 11.0
    assert alert["cart"]["currency"] == "EUR"
    assert [i["item_id"] for i in alert["cart"]["items"]] == ["p1", "p2"]


def test_removing_everything_leaves_no_cart_abandonment() -> None:
    docs = [
        cart_add(T0, qty=2),
        raw(v.REMOVE_FROM_CART, T0 + 1, items=[{"item_id": "sku1", "quantity": 1}]),
    ]
    [alert] = of_type(run(docs), "abandonment")
    assert alert["cart"]["items"][0]["quantity"] == 1
    docs.append(raw(v.REMOVE_FROM_CART, T0 + 2, product_id="sku1"))
    assert of_type(run(docs), "abandonment") == []


def test_purchase_empties_cart() -> None:
    docs = [cart_add(T0), raw(v.PURCHASE, T0 + SECOND)]
    assert of_type(run(docs), "abandonment") == []


def test_purchase_arriving_before_its_add_to_cart_still_settles_the_cart() -> None:
    add = cart_add(T0 + 2 * SECOND)
    purchase = raw(v.PURCHASE, T0 + 5 * SECOND)
    records = run([raw(v.PAGE_VIEW, T0), purchase, add])
    assert of_type(records, "abandonment") == []
    assert names(records, "macro_conversion") == ["purchase"]


def test_checkout_started_and_not_purchased_is_checkout_abandonment() -> None:
    docs = [cart_add(T0), raw(v.CHECKOUT_START, T0 + SECOND)]
    [alert] = of_type(run(docs), "abandonment")
    assert alert["kind"] == "checkout"
    assert alert["funnel_step"] == "checkout_start"
    assert alert["cart"]["value"] == 10.0


def test_checkout_after_a_purchase_counts_again() -> None:
    docs = [
        raw(v.CHECKOUT_START, T0),
        raw(v.PURCHASE, T0 + 1),
        cart_add(T0 + 2),
        raw(v.CHECKOUT_START, T0 + 3),
    ]
    assert names(run(docs), "abandonment") == ["checkout"]


def test_form_abandonment_once_per_unsubmitted_form() -> None:
    docs = [
        raw(v.FORM_START, T0, form_id="contact"),
        raw(v.FORM_START, T0 + 1, form_id="contact"),
        raw(v.FORM_START, T0 + 2, form_id="quote"),
        raw(v.FORM_START, T0 + 3, form_id="newsletter"),
        raw(v.FORM_SUBMIT, T0 + 4, form_id="newsletter"),
    ]
    alerts = of_type(run(docs), "abandonment")
    assert [(a["kind"], a["form_id"]) for a in alerts] == [
        ("form", "contact"),
        ("form", "quote"),
    ]
    assert len({a["alert_id"] for a in alerts}) == 2


def test_form_and_checkout_abandonment_together() -> None:
    docs = [raw(v.FORM_START, T0, form_id="f"), raw(v.CHECKOUT_START, T0 + 1)]
    assert names(run(docs), "abandonment") == ["checkout", "form"]


def test_session_timeout_is_configurable_and_starts_a_new_session() -> None:
    config = rules(session={"timeout_s": 60})
    docs = [cart_add(T0), raw(v.PAGE_VIEW, T0 + 61 * SECOND)]
    records = run(docs, config)
    [alert] = of_type(records, "abandonment")
    assert alert["detected_at"] == "2026-01-05T08:01:00.000Z"
    # 59 s later is still the same session, so the cart is still there at its end.
    docs = [cart_add(T0), raw(v.PAGE_VIEW, T0 + 59 * SECOND)]
    [alert] = of_type(run(docs, config), "abandonment")
    assert alert["last_event_at"] == "2026-01-05T08:00:59.000Z"


def test_gap_of_exactly_the_timeout_starts_a_new_session() -> None:
    docs = [raw(v.WISHLIST_ADD, T0), raw(v.WISHLIST_ADD, T0 + 30 * MINUTE)]
    sessions = {r["session_id"] for r in run(docs)}
    assert sessions == {f"s1:{T0}", f"s1:{T0 + 30 * MINUTE}"}


def test_alert_ids_are_deterministic_and_distinct_per_session() -> None:
    docs = [cart_add(T0, item="a"), cart_add(T0 + 40 * MINUTE, item="b")]
    first = [a["alert_id"] for a in of_type(run(docs), "abandonment")]
    again = [a["alert_id"] for a in of_type(run(docs), "abandonment")]
    assert first == again
    assert len(set(first)) == 2


def test_identity_fields_are_carried() -> None:
    docs = [
        {**raw(v.PAGE_VIEW, T0, session=None), "anonymous_id": "anon"},
        {**cart_add(T0 + 1, item="x"), "anonymous_id": "anon", "user_id": "u7"},
    ]
    del docs[1]["session_id"]
    [alert] = of_type(run(docs), "abandonment")
    assert alert["session_key"] == "anon"
    assert alert["anonymous_id"] == "anon"
    assert alert["user_id"] == "u7"


def test_contact_only_with_include_contact_and_from_optin_events() -> None:
    docs = [
        raw(v.EMAIL_OPTIN, T0, email="a@example.com"),
        raw(v.PAGE_VIEW, T0 + 1, email="b@example.com"),
        cart_add(T0 + 2),
    ]
    [alert] = of_type(run(docs), "abandonment")
    assert "email" not in alert
    [alert] = of_type(run(docs, rules(include_contact=True)), "abandonment")
    assert alert["email"] == "a@example.com"


def test_intent_score_sums_weights_and_is_capped() -> None:
    docs = [
        raw(v.EMAIL_OPTIN, T0),
        raw(v.ACCOUNT_CREATED, T0 + 1),
        raw(v.WISHLIST_ADD, T0 + 2),
        cart_add(T0 + 3),
        raw(v.CHECKOUT_START, T0 + 4),
    ]
    [alert] = of_type(run(docs), "abandonment")
    assert alert["intent_score"] == 95
    docs.append(raw(v.FORM_START, T0 + 5, form_id="f"))
    alerts = of_type(run(docs), "abandonment")
    assert {a["intent_score"] for a in alerts} == {100}
    custom = rules(intent={"weights": {"add_to_cart": 1, "checkout_start": 2}})
    [alert] = of_type(run(docs[3:5], custom), "abandonment")
    assert alert["intent_score"] == 3
