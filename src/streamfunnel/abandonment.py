"""Deciding abandonment when a session ends, and scoring how much it mattered.

A session that ends with a checkout started since its last purchase abandoned the
checkout; otherwise one that ends with items in the cart abandoned the cart.
Each form started and never submitted is a form abandonment of its own, so one
session can raise a checkout alert and form alerts together.
"""

from __future__ import annotations

from typing import Final

from streamfunnel.sessions import SessionState

CART: Final = "cart"
CHECKOUT: Final = "checkout"
FORM: Final = "form"
KINDS: Final[tuple[str, ...]] = (CART, CHECKOUT, FORM)


def abandonments(session: SessionState) -> list[tuple[str, str | None]]:
    """(kind, form id) for every abandonment the ended session represents."""
    found: list[tuple[str, str | None]] = []
    if session.checkout_open:
        found.append((CHECKOUT, None))
    elif session.cart:
        found.append((CART, None))
    found.extend((FORM, form_id) for form_id in session.open_forms)
    return found


def intent_score(
    session: SessionState, weights: dict[str, float], maximum: float
) -> float:
    """The summed weights of the micro conversions reached, capped at ``maximum``."""
    total = sum(weights.get(name, 0.0) for name in session.micro)
    return round(min(total, maximum), 2)
