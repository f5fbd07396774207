"""Funnel progress and sequences of micro conversions."""

from __future__ import annotations

from streamfunnel import vocabulary as v
from streamfunnel.engine import FunnelEngine

from .builders import MINUTE, SECOND, T0, event, of_type, raw, rules, run


def pages(start: int, n: int = 6) -> list[dict[str, object]]:
    return [raw(v.PAGE_VIEW, start + i) for i in range(n)]


def test_default_sequence_matches_with_other_steps_between() -> None:
    docs = [
        *pages(T0),
        raw(v.BLOG_COMMENT, T0 + SECOND),
        raw(v.WISHLIST_ADD, T0 + 2 * SECOND),
        raw(v.VIDEO_COMPLETE, T0 + 3 * SECOND),
        raw(v.ADD_TO_CART, T0 + 4 * SECOND, product_id="p"),
    ]
    [seq, *rest] = of_type(run(docs), "sequence")
    assert seq["name"] == "browse_to_cart"
    assert seq["steps"] == ["multi_page_view", "wishlist_add", "add_to_cart"]
    assert seq["event_id"] == docs[-1]["event_id"]
    assert rest == []


def test_sequence_near_miss_wrong_order() -> None:
    docs = [
        raw(v.WISHLIST_ADD, T0),
        *pages(T0 + SECOND),
        raw(v.ADD_TO_CART, T0 + 2 * SECOND, product_id="p"),
    ]
    assert [s["name"] for s in of_type(run(docs), "sequence")] == []


def test_sequence_near_miss_missing_step() -> None:
    docs = [*pages(T0), raw(v.ADD_TO_CART, T0 + SECOND, product_id="p")]
    assert of_type(run(docs), "sequence") == []


def test_sequence_span_limit() -> None:
    config = rules(
        sequences=[
            {"name": "quick", "steps": ["wishlist_add", "add_to_cart"], "within_s": 60}
        ]
    )
    inside = [raw(v.WISHLIST_ADD, T0), raw(v.ADD_TO_CART, T0 + 60 * SECOND)]
    outside = [raw(v.WISHLIST_ADD, T0), raw(v.ADD_TO_CART, T0 + 61 * SECOND)]
    assert [s["name"] for s in of_type(run(inside, config), "sequence")] == ["quick"]
    assert of_type(run(outside, config), "sequence") == []


def test_sequence_can_end_in_the_macro_once() -> None:
    config = rules(
        sequences=[{"name": "cart_to_buy", "steps": ["add_to_cart", "purchase"]}]
    )
    docs = [
        raw(v.ADD_TO_CART, T0, product_id="p"),
        raw(v.PURCHASE, T0 + 1),
        raw(v.PURCHASE, T0 + 2),
    ]
    assert len(of_type(run(docs, config), "sequence")) == 1


def test_furthest_step_counts_reached_or_beyond() -> None:
    engine = FunnelEngine(rules())
    for doc in [raw(v.PAGE_VIEW, T0), raw(v.CHECKOUT_START, T0 + 1)]:
        engine.ingest(event(doc))
    engine.ingest(event(raw(v.PAGE_VIEW, T0, session="other")))
    engine.flush()
    reached = engine.tally.funnel_reached
    assert reached[("ecommerce", "visit")] == 2
    assert reached[("ecommerce", "add_to_cart")] == 1
    assert reached[("ecommerce", "checkout_start")] == 1
    assert ("ecommerce", "purchase") not in reached


def test_alert_reports_furthest_step_of_primary_funnel() -> None:
    config = rules(
        "saas",
        funnels=[
            {"name": "lead", "steps": ["visit", "form_start", "demo_request"]},
            {"name": "research", "steps": ["visit", "resource_download"]},
        ],
    )
    docs = [raw(v.RESOURCE_DOWNLOAD, T0), raw(v.FORM_START, T0 + 1, form_id="demo")]
    [alert] = of_type(run(docs, config), "abandonment")
    assert alert["funnel_step"] == "form_start"


def test_sessions_ended_by_outcome() -> None:
    engine = FunnelEngine(rules())
    docs = [
        raw(v.PAGE_VIEW, T0, session="bounce"),
        raw(v.PAGE_VIEW, T0, session="browse"),
        raw(v.PAGE_VIEW, T0 + 1, session="browse"),
        raw(v.ADD_TO_CART, T0, session="left", product_id="p"),
        raw(v.PURCHASE, T0, session="bought"),
    ]
    for doc in docs:
        engine.ingest(event(doc))
    engine.advance_to(T0 + 31 * MINUTE)
    ended = engine.tally.sessions_ended
    assert dict(ended) == {"bounced": 1, "other": 1, "abandoned": 1, "converted": 1}
    assert engine.sessions == {}
