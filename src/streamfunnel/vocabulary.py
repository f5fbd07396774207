"""Canonical clickstream event types and the GA4 and Segment names that map to them.

Events may arrive under any of three spellings. Everything downstream of decoding
sees only the canonical name, so rules, metrics labels and records stay the same
whichever analytics tool produced the events.
"""

from __future__ import annotations

from typing import Final

PAGE_VIEW: Final = "page_view"
EMAIL_OPTIN: Final = "email_optin"
SMS_OPTIN: Final = "sms_optin"
NEWSLETTER_SIGNUP: Final = "newsletter_signup"
FORM_START: Final = "form_start"
FORM_SUBMIT: Final = "form_submit"
ACCOUNT_CREATED: Final = "account_created"
RESOURCE_DOWNLOAD: Final = "resource_download"
BLOG_COMMENT: Final = "blog_comment"
VIDEO_START: Final = "video_start"
VIDEO_PROGRESS: Final = "video_progress"
VIDEO_COMPLETE: Final = "video_complete"
WISHLIST_ADD: Final = "wishlist_add"
ADD_TO_CART: Final = "add_to_cart"
REMOVE_FROM_CART: Final = "remove_from_cart"
CHECKOUT_START: Final = "checkout_start"
PURCHASE: Final = "purchase"
DEMO_REQUEST: Final = "demo_request"
SPONSORED_LINK_CLICK: Final = "sponsored_link_click"

CANONICAL_TYPES: Final[tuple[str, ...]] = (
    PAGE_VIEW,
    EMAIL_OPTIN,
    SMS_OPTIN,
    NEWSLETTER_SIGNUP,
    FORM_START,
    FORM_SUBMIT,
    ACCOUNT_CREATED,
    RESOURCE_DOWNLOAD,
    BLOG_COMMENT,
    VIDEO_START,
    VIDEO_PROGRESS,
    VIDEO_COMPLETE,
    WISHLIST_ADD,
    ADD_TO_CART,
    REMOVE_FROM_CART,
    CHECKOUT_START,
    PURCHASE,
    DEMO_REQUEST,
    SPONSORED_LINK_CLICK,
)

# The label used for every type that is neither canonical nor mapped by an alias.
# Metrics count such events under this one name so label sets stay bounded.
OTHER: Final = "other"

GA4_ALIASES: Final[dict[str, str]] = {
    "page_view": PAGE_VIEW,
    "form_start": FORM_START,
    "form_submit": FORM_SUBMIT,
    "sign_up": ACCOUNT_CREATED,
    "file_download": RESOURCE_DOWNLOAD,
    "video_start": VIDEO_START,
    "video_progress": VIDEO_PROGRESS,
    "video_complete": VIDEO_COMPLETE,
    "add_to_wishlist": WISHLIST_ADD,
    "add_to_cart": ADD_TO_CART,
    "remove_from_cart": REMOVE_FROM_CART,
    "begin_checkout": CHECKOUT_START,
    "purchase": PURCHASE,
}

SEGMENT_ALIASES: Final[dict[str, str]] = {
    "Page Viewed": PAGE_VIEW,
    "Signed Up": ACCOUNT_CREATED,
    "Product Added to Wishlist": WISHLIST_ADD,
    "Product Added": ADD_TO_CART,
    "Product Removed": REMOVE_FROM_CART,
    "Checkout Started": CHECKOUT_START,
    "Order Completed": PURCHASE,
}


def default_aliases() -> dict[str, str]:
    """Every accepted spelling mapped to its canonical type, canonical ones too."""
    aliases = {name: name for name in CANONICAL_TYPES}
    aliases.update(GA4_ALIASES)
    aliases.update(SEGMENT_ALIASES)
    return aliases
