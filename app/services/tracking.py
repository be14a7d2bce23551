"""Live tracking: courier location pings in, the customer's tracking view out.

A ping is one short transaction: lock the order row, move the current location if the ping is
not older (by ``at``) than the current one, log it if its 30-second window of ``at`` time has no
location yet, and queue ``tracking.location`` (and ``tracking.eta``) for ``order:{id}``. Every ping
is published; none creates a notification or touches cached insights (locations are not part of
them). Windows are fixed (``at`` floored to 30 s), so a late ping can still fill a gap in the log.
A LOCATION entry's ``createdAt`` is its ``at``: the log is a trail in measurement order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from app.auth import Identity
from app.errors import Conflict, NotFound, ValidationFailed
from app.services.order_views import Location
from app.services.order_workflow import NORMAL_PATH, TERMINAL
from app.services.order_writes import OrderWriter, lock_order
from app.services.orders import may_manage
from app.timefmt import rfc3339
from models.enums import OrderEventKind, OrderStatus, Role
from models.orders import Order, OrderEvent

__all__ = [
    "LOG_WINDOW",
    "MAX_CLOCK_SKEW",
    "TRACKING_ENDED",
    "Ping",
    "TimelineStep",
    "TrackingEvent",
    "TrackingView",
    "record_ping",
    "tracking_view",
]

LOG_WINDOW = timedelta(seconds=30)
MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a ping's ``at`` may be (device clocks drift); beyond is a 422."""

TRACKING_ENDED = frozenset({OrderStatus.DELIVERED, *TERMINAL})
"""Statuses after which pings are refused (409): the parcel is no longer on its way."""

_LOGGED_IN_WINDOW = (
    "SELECT 1 AS logged FROM order_events WHERE order_id = {} AND kind = 'LOCATION'"
    " AND created_at >= {} AND created_at < {} LIMIT 1"
)


class Ping(msgspec.Struct, frozen=True, kw_only=True):
    """One location report of a courier app, times in UTC."""

    lat: float
    lng: float
    at: datetime
    estimated_delivery_at: datetime | None = None
    note: str | None = None


def _window(at: datetime) -> tuple[datetime, datetime]:
    seconds = LOG_WINDOW.total_seconds()
    start = datetime.fromtimestamp(at.timestamp() // seconds * seconds, UTC)
    return start, start + LOG_WINDOW


async def record_ping(writer: OrderWriter, identity: Identity, order_id: str, ping: Ping) -> bool:
    """Record and publish one ping; answers whether it became the current location.

    Raises:
        NotFound: absent, or not the caller's store.
        ValidationFailed: (422) ``at`` is more than :data:`MAX_CLOCK_SKEW` in the future.
        Conflict: (409) the order is delivered, cancelled or refunded: its tracking has ended.
    """
    async with writer.transaction() as changes:
        if ping.at > changes.now + MAX_CLOCK_SKEW:
            raise ValidationFailed([("at", "is in the future")])
        order = await lock_order(order_id, changes)
        if not may_manage(identity, order):
            raise NotFound(f"no order {order_id}")
        if order.status in TRACKING_ENDED:
            raise Conflict(f"order {order_id} is {order.status.value}: its tracking has ended")
        newest = order.current_location_at is None or ping.at >= order.current_location_at
        eta = ping.estimated_delivery_at
        if newest:
            await Order.raw(
                "UPDATE orders SET current_lat = {}, current_lng = {}, current_location_at = {},"
                " estimated_delivery_at = {}, updated_at = {} WHERE id = {}",
                ping.lat,
                ping.lng,
                ping.at,
                eta if eta is not None else order.estimated_delivery_at,
                changes.now,
                order_id,
            )
        actor = identity.user_id
        if not await OrderEvent.raw(_LOGGED_IN_WINDOW, order_id, *_window(ping.at)):
            changes.log(order_id, OrderEventKind.LOCATION, at=ping.at, lat=ping.lat, lng=ping.lng, actor_id=actor)
        if eta is not None and newest and eta != order.estimated_delivery_at:
            changes.log(order_id, OrderEventKind.ETA, estimated_delivery_at=eta, actor_id=actor)
        if ping.note:
            changes.log(order_id, OrderEventKind.NOTE, note=ping.note, lat=ping.lat, lng=ping.lng, actor_id=actor)
        at = rfc3339(ping.at)
        channel = (f"order:{order_id}",)
        changes.publish(channel, "tracking.location", {"orderId": order_id, "lat": ping.lat, "lng": ping.lng, "at": at})
        if eta is not None:
            data = {"orderId": order_id, "estimatedDeliveryAt": rfc3339(eta), "at": at}
            changes.publish(channel, "tracking.eta", data)
    return newest


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
