"""The customer's tracking view of one order: status, payment, current location, ETA, the whole logged
timeline oldest first, and when each status of the normal path was reached (SPEC
``GET /customer/orders/{orderId}/tracking``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.platform.auth import Identity
from app.platform.errors import NotFound, ValidationFailed
from app.platform.timefmt import rfc3339
from app.services.order_views import Location
from app.services.order_workflow import NORMAL_PATH
from models.enums import Role
from models.orders import Order, OrderEvent

__all__ = ["TimelineStep", "TrackingEvent", "TrackingView", "tracking_view"]


class TrackingEvent(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """One entry of the order's logged timeline; fields that do not apply are omitted."""

    id: str
    kind: str
    created_at: str
    from_status: str | None = None
    to_status: str | None = None
    lat: float | None = None
    lng: float | None = None
    estimated_delivery_at: str | None = None
    note: str | None = None


class TimelineStep(msgspec.Struct, frozen=True, rename="camel"):
    """A status of the normal path and when it was reached (null until then)."""

    status: str
    at: str | None


class TrackingView(msgspec.Struct, frozen=True, rename="camel"):
    """``GET /customer/orders/{orderId}/tracking``."""

    order_id: str
    status: str
    payment_status: str
    current_location: Location | None
    estimated_delivery_at: str | None
    events: list[TrackingEvent]
    timeline: list[TimelineStep]


def _event(row: dict[str, Any]) -> TrackingEvent:
    return TrackingEvent(
        id=str(row["id"]),
        kind=row["kind"],
        created_at=rfc3339(row["created_at"]) or "",
        from_status=row["from_status"],
        to_status=row["to_status"],
        lat=row["lat"],
        lng=row["lng"],
        estimated_delivery_at=rfc3339(row["estimated_delivery_at"]),
        note=row["note"],
    )


async def tracking_view(identity: Identity, order_id: str, customer_id: str | None) -> TrackingView:
    """The tracking of one order: the customer's own, or any customer's named by an admin.

    Raises:
        ValidationFailed: (400) an admin did not name the customer.
        NotFound: absent, or not that customer's.
    """
    if identity.role is Role.ADMIN and customer_id is None:
        raise ValidationFailed([("customerId", "an admin names the customer: ?customerId=...")], status=400)
    owner = identity.user_id if identity.role is Role.CUSTOMER else customer_id
    order = await Order.select().where(Order.id == order_id).first()
    if order is None or order["customer_id"] != owner:
        raise NotFound(f"no order {order_id}")
    rows = await OrderEvent.raw("SELECT * FROM order_events WHERE order_id = {} ORDER BY created_at, id", order_id)
    reached: dict[str, str | None] = {}
    for row in rows:
        if row["to_status"] is not None and row["kind"] in ("CREATED", "STATUS_CHANGED"):
            reached.setdefault(row["to_status"], rfc3339(row["created_at"]))
    location = None
    if order["current_location_at"] is not None:
        location = Location(order["current_lat"], order["current_lng"], rfc3339(order["current_location_at"]) or "")
    return TrackingView(
        order_id=order_id,
        status=order["status"],
        payment_status=order["payment_status"],
        current_location=location,
        estimated_delivery_at=rfc3339(order["estimated_delivery_at"]),
        events=[_event(row) for row in rows],
        timeline=[TimelineStep(status.value, reached.get(status.value)) for status in NORMAL_PATH],
    )
