"""Industry presets: the macro conversion, funnels and sequences each one starts with.

The micro conversions are the same for every industry; the preset decides which
event is the macro conversion, and that event type then stops counting toward
any micro conversion (on a content site a newsletter signup is the goal, not an
opt-in on the way to it).
"""

from __future__ import annotations

from typing import Final

from streamfunnel import vocabulary as v
from streamfunnel.rules import (
    VISIT,
    Condition,
    Funnel,
    MicroConversion,
    Rules,
    Sequence,
)

# GA4 reports video progress at 10/25/50/75/90 %; 75 % is where "watched" starts.
VIDEO_WATCHED_PERCENT: Final = 75.0
# The average session views about 5 pages; the 6th marks an engaged visitor.
MULTI_PAGE_VIEWS: Final = 6
# Sessions end after 30 minutes without events, as in GA4.
SESSION_TIMEOUT_S: Final = 1800.0
ALLOWED_LATENESS_S: Final = 60.0
SEQUENCE_WITHIN_S: Final = 1800.0

DEFAULT_MICRO: Final[tuple[MicroConversion, ...]] = (
    MicroConversion(
        "email_optin",
        (
            Condition(v.EMAIL_OPTIN),
            Condition(v.SMS_OPTIN),
            Condition(v.NEWSLETTER_SIGNUP),
        ),
    ),
    MicroConversion("form_start", (Condition(v.FORM_START),)),
    MicroConversion("account_created", (Condition(v.ACCOUNT_CREATED),)),
    MicroConversion("resource_download", (Condition(v.RESOURCE_DOWNLOAD),)),
    MicroConversion("blog_comment", (Condition(v.BLOG_COMMENT),)),
    MicroConversion(
        "video_watched",
        (
            Condition(v.VIDEO_COMPLETE),
            Condition(
                v.VIDEO_PROGRESS,
                property="video_percent",
                at_least=VIDEO_WATCHED_PERCENT,
            ),
            Condition(
                v.VIDEO_PROGRESS, property="percent", at_least=VIDEO_WATCHED_PERCENT
            ),
        ),
    ),
    MicroConversion(
        "multi_page_view", (Condition(v.PAGE_VIEW, count=MULTI_PAGE_VIEWS),)
    ),
    MicroConversion("wishlist_add", (Condition(v.WISHLIST_ADD),)),
    MicroConversion("add_to_cart", (Condition(v.ADD_TO_CART),)),
    MicroConversion("checkout_start", (Condition(v.CHECKOUT_START),)),
)

# Points per micro conversion reached; the score is their sum, capped at 100.
# Steps closer to money weigh more: a started checkout says more than a comment.
DEFAULT_INTENT_WEIGHTS: Final[dict[str, float]] = {
    "email_optin": 15,
    "form_start": 10,
    "account_created": 20,
    "resource_download": 10,
    "blog_comment": 5,
    "video_watched": 5,
    "multi_page_view": 5,
    "wishlist_add": 10,
    "add_to_cart": 20,
    "checkout_start": 30,
}

MACRO_TYPES: Final[dict[str, str]] = {
    "ecommerce": v.PURCHASE,
    "saas": v.DEMO_REQUEST,
    "content": v.NEWSLETTER_SIGNUP,
    "affiliate": v.SPONSORED_LINK_CLICK,
    "freemium": v.ACCOUNT_CREATED,
}

FUNNEL_STEPS: Final[dict[str, tuple[str, ...]]] = {
    "ecommerce": (VISIT, "add_to_cart", "checkout_start", v.PURCHASE),
    "saas": (VISIT, "resource_download", "form_start", v.DEMO_REQUEST),
    "content": (VISIT, "multi_page_view", "video_watched", v.NEWSLETTER_SIGNUP),
    "affiliate": (VISIT, "multi_page_view", v.SPONSORED_LINK_CLICK),
    "freemium": (VISIT, "form_start", v.ACCOUNT_CREATED),
}

SEQUENCES: Final[dict[str, tuple[tuple[str, tuple[str, ...]], ...]]] = {
    "ecommerce": (
        ("browse_to_cart", ("multi_page_view", "wishlist_add", "add_to_cart")),
        ("cart_to_checkout", ("add_to_cart", "checkout_start")),
    ),
    "saas": (("research_to_form", ("resource_download", "form_start")),),
    "content": (("engaged_reader", ("multi_page_view", "video_watched")),),
    "affiliate": (("engaged_browser", ("multi_page_view", "video_watched")),),
    "freemium": (("form_to_optin", ("form_start", "email_optin")),),
}


def preset(industry: str) -> Rules:
    """The default rules for one industry; raises KeyError for an unknown name."""
    macro = MACRO_TYPES[industry]
    return Rules(
        industry=industry,
        macro_name=macro,
        macro_types=frozenset({macro}),
        micro=DEFAULT_MICRO,
        funnels=(Funnel(industry, FUNNEL_STEPS[industry]),),
        sequences=tuple(
            Sequence(name, steps, SEQUENCE_WITHIN_S)
            for name, steps in SEQUENCES[industry]
        ),
        intent_weights=dict(DEFAULT_INTENT_WEIGHTS),
        session_timeout_s=SESSION_TIMEOUT_S,
        allowed_lateness_s=ALLOWED_LATENESS_S,
    )
