"""Cart lines: reading GA4 and Segment cart events, and the cart a session holds.

GA4 sends ``properties.items`` (a list of lines); Segment sends one product at the
top of ``properties``. Both become (item id, quantity, price) lines here, so the
rest of the engine knows one cart shape.
"""

from __future__ import annotations

from typing import Any, final

CartLine = tuple[str, float, float]


def _number(value: object, default: float) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _line(source: dict[str, Any], id_keys: tuple[str, ...]) -> CartLine | None:
    item_id: object = None
    for name in id_keys:
        item_id = source.get(name)
        if item_id is not None:
            break
    if isinstance(item_id, bool) or not isinstance(item_id, str | int) or item_id == "":
        return None
    quantity = _number(source.get("quantity"), 1.0)
    price = _number(source.get("price"), 0.0)
    if quantity is None or price is None or quantity <= 0 or price < 0:
        return None
    return (str(item_id), quantity, price)


def cart_lines(properties: dict[str, Any]) -> tuple[list[CartLine], int]:
    """The lines an add/remove/purchase event names, and how many were unusable."""
    items = properties.get("items")
    if isinstance(items, list):
        lines: list[CartLine] = []
        bad = 0
        for item in items:
            line = (
                _line(item, ("item_id", "product_id"))
                if isinstance(item, dict)
                else None
            )
            if line is None:
                bad += 1
            else:
                lines.append(line)
        return lines, bad
    single = _line(properties, ("product_id", "item_id", "sku"))
    if single is None:
        return [], 1
    return [single], 0


@final
class Cart:
    """What a session has in its cart: item id -> [quantity, unit price]."""

    __slots__ = ("currency", "lines")

    def __init__(self) -> None:
        self.lines: dict[str, list[float]] = {}
        self.currency: str | None = None

    def __bool__(self) -> bool:
        return bool(self.lines)

    def add(self, lines: list[CartLine]) -> None:
        for item_id, quantity, price in lines:
            held = self.lines.get(item_id)
            if held is None:
                self.lines[item_id] = [quantity, price]
            else:
                held[0] += quantity
                held[1] = price

    def remove(self, lines: list[CartLine]) -> None:
        for item_id, quantity, _price in lines:
            held = self.lines.get(item_id)
            if held is None:
                continue
            held[0] -= quantity
            if held[0] <= 0:
                del self.lines[item_id]

    def clear(self) -> None:
        self.lines.clear()

    def value(self) -> float:
        return round(float(sum(q * p for q, p in self.lines.values())), 2)

    def to_record(self) -> dict[str, Any]:
        return {
            "items": [
                {"item_id": item_id, "quantity": _plain(q), "price": p}
                for item_id, (q, p) in self.lines.items()
            ],
            "value": self.value(),
            "currency": self.currency,
        }


def _plain(quantity: float) -> float | int:
    # Quantities are counts in practice; print 2, not 2.0.
    return int(quantity) if quantity.is_integer() else quantity
