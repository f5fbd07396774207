"""Micro and macro conversions, once per session, under each preset."""

from __future__ import annotations

from typing import Any

import pytest

from streamfunnel import vocabulary as v

from .builders import MINUTE, SECOND, T0, names, raw, rules, run


def micro(docs: list[dict[str, object]], industry: str = "ecommerce") -> list[str]:
    return names(run(docs, rules(industry)), "micro_conversion")


@pytest.mark.parametrize(
    ("type_", "name"),
    [
        (v.EMAIL_OPTIN, "email_optin"),
        (v.SMS_OPTIN, "email_optin"),
        (v.NEWSLETTER_SIGNUP, "email_optin"),
        (v.FORM_START, "form_start"),
        (v.ACCOUNT_CREATED, "account_created"),
        (v.RESOURCE_DOWNLOAD, "resource_download"),
        (v.BLOG_COMMENT, "blog_comment"),
        (v.VIDEO_COMPLETE, "video_watched"),
        (v.WISHLIST_ADD, "wishlist_add"),
        (v.ADD_TO_CART, "add_to_cart"),
        (v.CHECKOUT_START, "checkout_start"),
    ],
)
def test_each_micro_conversion(type_: str, name: str) -> None:
    assert micro([raw(type_, T0)]) == [name]


def test_micro_conversion_is_emitted_once_per_session() -> None:
    docs = [raw(v.EMAIL_OPTIN, T0), raw(v.SMS_OPTIN, T0 + SECOND)]
    docs.append(raw(v.EMAIL_OPTIN, T0 + 2 * SECOND))
    assert micro(docs) == ["email_optin"]


def test_micro_conversion_fires_again_in_a_new_session() -> None:
    docs = [raw(v.WISHLIST_ADD, T0), raw(v.WISHLIST_ADD, T0 + 31 * MINUTE)]
    assert micro(docs) == ["wishlist_add", "wishlist_add"]


def test_sixth_page_view_is_multi_page_view() -> None:
    docs = [raw(v.PAGE_VIEW, T0 + i * SECOND) for i in range(7)]
    records = run(docs)
    hits = [r for r in records if r["type"] == "micro_conversion"]
    assert [r["name"] for r in hits] == ["multi_page_view"]
    assert hits[0]["event_id"] == docs[5]["event_id"]
    assert micro(docs[:5]) == []


@pytest.mark.parametrize(
    ("props", "watched"),
    [
        ({"video_percent": 75}, True),
        ({"video_percent": 90}, True),
        ({"video_percent": 50}, False),
        ({"percent": 75}, True),
        ({"percent": "80"}, True),
        ({"percent": "lots"}, False),
        ({}, False),
    ],
)
def test_video_progress_threshold(props: dict[str, Any], watched: bool) -> None:
    assert micro([raw(v.VIDEO_PROGRESS, T0, **props)]) == (
        ["video_watched"] if watched else []
    )


def test_video_start_is_not_watched() -> None:
    assert micro([raw(v.VIDEO_START, T0)]) == []


@pytest.mark.parametrize(
    ("industry", "macro_type"),
    [
        ("ecommerce", v.PURCHASE),
        ("saas", v.DEMO_REQUEST),
        ("content", v.NEWSLETTER_SIGNUP),
        ("affiliate", v.SPONSORED_LINK_CLICK),
        ("freemium", v.ACCOUNT_CREATED),
    ],
)
def test_preset_macro_and_no_double_count(industry: str, macro_type: str) -> None:
    docs = [raw(macro_type, T0), raw(macro_type, T0 + SECOND)]
    records = run(docs, rules(industry))
    assert names(records, "macro_conversion") == [macro_type, macro_type]
    assert names(records, "micro_conversion") == []


def test_content_newsletter_is_macro_but_email_optin_still_micro() -> None:
    docs = [raw(v.NEWSLETTER_SIGNUP, T0), raw(v.EMAIL_OPTIN, T0 + SECOND)]
    records = run(docs, rules("content"))
    assert names(records, "macro_conversion") == [v.NEWSLETTER_SIGNUP]
    assert names(records, "micro_conversion") == ["email_optin"]


def test_other_presets_count_purchase_only_as_cart_settlement() -> None:
    docs = [raw(v.ADD_TO_CART, T0, product_id="p", price=3), raw(v.PURCHASE, T0 + 1)]
    records = run(docs, rules("saas"))
    assert names(records, "macro_conversion") == []
    assert names(records, "abandonment") == []


def test_unknown_types_are_counted_and_ignored() -> None:
    records = run([raw("Coupon Applied", T0)])
    assert records == []


def test_configured_micro_with_custom_type_and_condition() -> None:
    config = rules(
        aliases={"Coupon Applied": "coupon"},
        micro={
            "coupon_used": {
                "conditions": [{"type": "coupon", "property": "code", "equals": "X"}]
            }
        },
    )
    docs = [raw("Coupon Applied", T0, code="Y"), raw("coupon", T0 + 1, code="X")]
    assert names(run(docs, config), "micro_conversion") == ["coupon_used"]


def test_configured_count_and_disabled_micro() -> None:
    config = rules(
        micro={
            "multi_page_view": {"conditions": [{"type": "page_view", "count": 2}]},
            "blog_comment": {"enabled": False},
        }
    )
    docs = [raw(v.PAGE_VIEW, T0), raw(v.PAGE_VIEW, T0 + 1), raw(v.BLOG_COMMENT, T0 + 2)]
    assert names(run(docs, config), "micro_conversion") == ["multi_page_view"]
