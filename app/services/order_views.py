"""Orders as REST shows them (SPEC "JSON": camelCase, string ids, RFC 3339 UTC, money in minor units)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec

from app.platform.timefmt import rfc3339

__all__ = ["Address", "Location", "OrderItemView", "OrderView", "order_view"]

_Line = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Address(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel", omit_defaults=True):
    """A shipping address; ``line2`` is optional and omitted when absent."""

    name: _Line
    line1: _Line
    city: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    postal_code: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    country: Annotated[str, msgspec.Meta(min_length=2, max_length=56)]
    line2: _Line | None = None


class Location(msgspec.Struct, frozen=True, rename="camel"):
    """Where an order was, and when that was measured."""

    lat: float
    lng: float
    at: str


class OrderItemView(msgspec.Struct, frozen=True, rename="camel"):
    """One line of an order, priced as it was when ordered."""

    id: str
    product_id: str
    name: str
    category: str
    unit_price_cents: int
    quantity: int
    line_total_cents: int


class OrderView(msgspec.Struct, frozen=True, rename="camel"):
    """An order with its items, payment status and shipping information."""

    id: str
    customer_id: str
    store_id: str
    status: str
    payment_status: str
    subtotal_cents: int
    shipping_cents: int
    total_cents: int
    currency: str
    shipping_address: Address
    items: list[OrderItemView]
    current_location: Location | None
    estimated_delivery_at: str | None
    created_at: str
    updated_at: str


def _json(value: Any) -> Any:
    """JSON columns arrive as text from some drivers and decoded from others."""
    return msgspec.json.decode(value) if isinstance(value, str | bytes) else value


def order_view(row: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> OrderView:
    """The view of an ``orders`` row (raw column names) and its ``order_items`` rows."""
    location = None
    if row["current_location_at"] is not None:
        location = Location(row["current_lat"], row["current_lng"], rfc3339(row["current_location_at"]) or "")
    return OrderView(
        id=row["id"],
        customer_id=row["customer_id"],
        store_id=row["store_id"],
        status=row["status"],
        payment_status=row["payment_status"],
        subtotal_cents=row["subtotal_cents"],
        shipping_cents=row["shipping_cents"],
        total_cents=row["total_cents"],
        currency=row["currency"],
        shipping_address=msgspec.convert(_json(row["shipping_address"]), Address),
        items=[
            OrderItemView(
                id=item["id"],
                product_id=item["product_id"],
                name=item["name"],
                category=item["category"],
                unit_price_cents=item["unit_price_cents"],
                quantity=item["quantity"],
                line_total_cents=item["unit_price_cents"] * item["quantity"],
            )
            for item in items
        ],
        current_location=location,
        estimated_delivery_at=rfc3339(row["estimated_delivery_at"]),
        created_at=rfc3339(row["created_at"]) or "",
        updated_at=rfc3339(row["updated_at"]) or "",
    )
