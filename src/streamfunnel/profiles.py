"""Site profiles: how visitors of each industry's site behave, in shares.

The numbers are industry figures (page views, bounce rates, the 69.82 % average
cart abandonment) turned into the chances ``visitors.SessionBuilder`` draws
from. ``simulation.DOCUMENTED_RANGES`` holds what they add up to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# What sessions that add to cart do in the end: the industry average of 69.82 %
# leave without buying, some of them from an open checkout; the few who empty
# the cart first leave nothing to abandon. Some remove one item along the way.
CART_ABANDONMENT_SHARE: Final = 0.6982
CART_PURCHASE_SHARE: Final = 0.29
CART_CHECKOUT_LEFT_SHARE: Final = 0.21
CART_EMPTIED_SHARE: Final = 1.0 - CART_ABANDONMENT_SHARE - CART_PURCHASE_SHARE
CART_REMOVAL_SHARE: Final = 0.15
# Share of started forms that are submitted, and of started goal forms (demo,
# signup) that end in the macro conversion.
FORM_SUBMIT_SHARE: Final = 0.4
GOAL_FORM_COMPLETION: Final = 0.5
# (percent, share of the video since the previous one, chance to get there):
# 0.7 * 0.75 * 0.8 takes 42 % of starters past 75 %, where "watched" begins.
VIDEO_MILESTONES: Final = (
    (25, 0.25, 0.7),
    (50, 0.25, 0.75),
    (75, 0.25, 0.8),
    (90, 0.15, 0.85),
)
VIDEO_COMPLETE_AFTER: Final = (0.10, 0.9)


@dataclass(frozen=True)
class TrafficProfile:
    """How visitors of one kind of site behave. Shares are of all sessions."""

    host: str
    sections: tuple[str, ...]
    form_ids: tuple[str, ...]
    page_views_mean: float
    bounce_share: float
    macro_share: float
    cart_share: float
    wishlist_share: float
    optin_share: float
    form_share: float
    signup_share: float
    download_share: float
    comment_share: float
    video_share: float


# One row per site, so the industries read side by side. Non-ecommerce sites sell
# too (merchandise, self-serve plans, upgrades), just less often.
# fmt: off
PROFILES: Final[dict[str, TrafficProfile]] = {
    "ecommerce": TrafficProfile(
        host="shop.example", sections=("/product", "/category", "/search", "/sale"),
        form_ids=("contact", "returns", "back_in_stock"),
        page_views_mean=5.0, bounce_share=0.45, macro_share=0.02,
        # A purchase needs a cart, so the cart share follows from the macro share.
        cart_share=0.02 / CART_PURCHASE_SHARE, wishlist_share=0.03,
        optin_share=0.03, form_share=0.02, signup_share=0.015,
        download_share=0.005, comment_share=0.004, video_share=0.03,
    ),
    "saas": TrafficProfile(
        host="app.example",
        sections=("/features", "/pricing", "/docs", "/blog", "/customers"),
        form_ids=("contact_sales", "trial", "newsletter_footer"),
        page_views_mean=2.0, bounce_share=0.55, macro_share=0.02,
        cart_share=0.04, wishlist_share=0.004,
        optin_share=0.02, form_share=0.04, signup_share=0.015,
        download_share=0.06, comment_share=0.004, video_share=0.04,
    ),
    "content": TrafficProfile(
        host="news.example", sections=("/articles", "/topics", "/videos", "/authors"),
        form_ids=("contact", "tip", "survey"),
        page_views_mean=5.2, bounce_share=0.5, macro_share=0.02,
        cart_share=0.04, wishlist_share=0.005,
        optin_share=0.02, form_share=0.01, signup_share=0.01,
        download_share=0.02, comment_share=0.015, video_share=0.12,
    ),
    "affiliate": TrafficProfile(
        host="reviews.example", sections=("/reviews", "/best", "/deals", "/compare"),
        form_ids=("contact", "deal_alert"),
        page_views_mean=4.6, bounce_share=0.5, macro_share=0.022,
        cart_share=0.04, wishlist_share=0.01,
        optin_share=0.015, form_share=0.008, signup_share=0.005,
        download_share=0.01, comment_share=0.008, video_share=0.05,
    ),
    "freemium": TrafficProfile(
        host="tool.example", sections=("/features", "/templates", "/pricing", "/blog"),
        form_ids=("contact", "feedback"),
        page_views_mean=4.4, bounce_share=0.45, macro_share=0.02,
        # Accounts are the goal here, created through the signup form.
        cart_share=0.04, wishlist_share=0.004,
        optin_share=0.03, form_share=0.03, signup_share=0.0,
        download_share=0.02, comment_share=0.005, video_share=0.04,
    ),
}
# fmt: on
