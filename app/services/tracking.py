"""Live tracking: courier location pings in, the customer's tracking view out.

A ping is the hottest write of the system (a fleet of couriers, one every few seconds each), so it
takes the shortest path that keeps SPEC's rules, not :class:`~app.services.order_writes.OrderWriter`'s
transaction with an outbox:

- **One statement on PostgreSQL.** It reads the order's status and store owner, moves the current
  location if the ping is not older (by ``at``) than the current one, and logs the LOCATION, in one
  round trip and one commit. The move locks the row for that statement only and decides on the locked
  (latest) version, so two racing pings can never move the location back. On SQLite the same steps
  run as a few statements inside one IMMEDIATE write transaction, which serializes writers.
- **The log is thinned to one LOCATION per 30 s of ``at``.** Windows are fixed (``at`` floored to
  30 s), so a late ping can still fill a gap; a LOCATION entry's ``createdAt`` is its ``at``. A ping
  that becomes current logs when the location it replaces is in an earlier window (read from the
  locked row, so racing pings log once); a late ping into a window without one logs under the row
  lock in a short transaction (rare: only out-of-order pings take it).
- **Published directly, not through the outbox.** ``tracking.location`` (and ``tracking.eta``) go to
  ``order:{id}`` through the publisher right after the database work, still appended to the channel's
  history so subscribers resume them. The trade-off: a ping whose publish fails (Redis away) is not
  retried; it is counted (``push_tracking_publish_failures_total``), logged, and superseded by the
  courier's next ping, while the current location is in the database for the REST tracking view. The
  ping itself succeeds: it was recorded.

No ping creates a notification or touches cached insights (locations are not part of them).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from app.platform.auth import Identity
from app.platform.database import Database
from app.platform.errors import Conflict, NotFound, ValidationFailed
from app.platform.timefmt import rfc3339, utc_now
from app.services.order_workflow import TERMINAL
from channels import ChannelsError, Publisher
from models.enums import OrderEventKind, OrderStatus, Role
from models.orders import Order, OrderEvent

__all__ = [
    "LOG_WINDOW",
    "MAX_CLOCK_SKEW",
    "TRACKING_ENDED",
    "Ping",
    "PingRecorder",
]

logger = logging.getLogger(__name__)

LOG_WINDOW = timedelta(seconds=30)
MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a ping's ``at`` may be (device clocks drift); beyond is a 422."""

TRACKING_ENDED = frozenset({OrderStatus.DELIVERED, *TERMINAL})
"""Statuses after which pings are refused (409): the parcel is no longer on its way."""

_ENDED = ", ".join(sorted(f"'{status.value}'" for status in TRACKING_ENDED))

_WINDOW_LOGGED = (
    "EXISTS (SELECT 1 FROM order_events WHERE order_id = {} AND kind = 'LOCATION'"
    " AND created_at >= {} AND created_at < {})"
)

# The conditional move: never back in time, never after tracking ended.
_MOVE = (
    "UPDATE orders SET current_lat = {}, current_lng = {}, current_location_at = {},"
    " estimated_delivery_at = COALESCE({}, estimated_delivery_at), updated_at = {}"
    f" WHERE id = {{}} AND status NOT IN ({_ENDED})"
    " AND (current_location_at IS NULL OR current_location_at <= {})"
)

# PostgreSQL, one statement: read what authorization needs; lock the row and move it if allowed,
# returning the location and ETA it had (the locked, latest version: newest wins even when pings
# race); log a LOCATION when that previous location is in an earlier window. Late pings (not moved)
# only say whether their window is logged.
_PING_POSTGRES = (
    "WITH target AS (SELECT o.status, o.customer_id, s.owner_id"
    " FROM orders o JOIN stores s ON s.id = o.store_id WHERE o.id = {}),"
    " moved AS (UPDATE orders o SET current_lat = {}, current_lng = {}, current_location_at = {},"
    " estimated_delivery_at = COALESCE({}, o.estimated_delivery_at), updated_at = {}"
    " FROM (SELECT id, current_location_at, estimated_delivery_at FROM orders WHERE id = {} FOR UPDATE) old"
    f" WHERE o.id = old.id AND o.status NOT IN ({_ENDED})"
    " AND (old.current_location_at IS NULL OR old.current_location_at <= {})"
    " AND EXISTS (SELECT 1 FROM target WHERE {}::varchar IS NULL OR owner_id = {})"
    " RETURNING true AS moved, old.current_location_at AS previous_at, old.estimated_delivery_at AS previous_eta),"
    " logged AS (INSERT INTO order_events (order_id, customer_id, kind, lat, lng, actor_id, created_at)"
    " SELECT {}, target.customer_id, 'LOCATION', {}, {}, {}::varchar, {} FROM moved, target"
    " WHERE moved.previous_at IS NULL OR moved.previous_at < {} RETURNING 1)"
    " SELECT target.status, target.customer_id, target.owner_id, moved.previous_eta AS estimated_delivery_at,"
    " moved.moved IS NOT NULL AS moved,"
    f" moved.moved IS NOT NULL OR {_WINDOW_LOGGED} AS logged"
    " FROM target LEFT JOIN moved ON true"
)

# SQLite: the IMMEDIATE write transaction serializes writers, so read, then move.
_READ_SQLITE = (
    "SELECT o.status, o.customer_id, o.estimated_delivery_at, s.owner_id, o.current_location_at,"
    f" {_WINDOW_LOGGED} AS logged FROM orders o JOIN stores s ON s.id = o.store_id WHERE o.id = {{}}"
)

# Checked again under the row lock (PostgreSQL) or the write transaction (SQLite): logs once per window.
_LOG_LOCATION = (
    "INSERT INTO order_events (order_id, customer_id, kind, lat, lng, actor_id, created_at)"
    f" SELECT {{}}, {{}}, 'LOCATION', {{}}, {{}}, {{}}, {{}} WHERE NOT {_WINDOW_LOGGED}"
)


class Ping(msgspec.Struct, frozen=True, kw_only=True):
    """One location report of a courier app, times in UTC."""

    lat: float
    lng: float
    at: datetime
    estimated_delivery_at: datetime | None = None
    note: str | None = None


class _Target(msgspec.Struct, kw_only=True):
    """The order as the ping found it, and what the ping did to it."""

    status: OrderStatus
    customer_id: str
    owner_id: str
    estimated_delivery_at: datetime | None
    logged: bool
    moved: bool = False
    current_location_at: datetime | None = None


def _window(at: datetime) -> tuple[datetime, datetime]:
    seconds = LOG_WINDOW.total_seconds()
    start = datetime.fromtimestamp(at.timestamp() // seconds * seconds, UTC)
    return start, start + LOG_WINDOW


class PingRecorder:
    """Records courier pings on this process's database and publishes them live.

    Args:
        database: Where orders and their events live.
        publisher: The relay's publisher (``tracking.*`` on ``order:{id}``, with history).
    """

    def __init__(self, database: Database, publisher: Publisher) -> None:
        self.database = database
        self.publisher = publisher
        self.publish_failures = 0
        """Tracking events that could not be published (the ping was recorded all the same)."""

    async def record(self, identity: Identity, order_id: str, ping: Ping) -> bool:
        """Record and publish one ping; answers whether it became the current location.

        Raises:
            NotFound: absent, or not the caller's store.
            ValidationFailed: (422) ``at`` is more than :data:`MAX_CLOCK_SKEW` in the future.
            Conflict: (409) the order is delivered, cancelled or refunded: its tracking has ended.
        """
        now = utc_now()
        if ping.at > now + MAX_CLOCK_SKEW:
            raise ValidationFailed([("at", "is in the future")])
        # A vendor may track the orders of its own stores; admins and services any order.
        vendor = identity.user_id if identity.role is Role.VENDOR else None
        if self.database.is_sqlite:
            async with self.database.write():
                target = await self._move_sqlite(order_id, ping, now, vendor)
                await self._log(target, order_id, ping, identity.user_id, now)
        else:
            target = await self._move_postgres(order_id, ping, now, vendor, identity.user_id)
            if self._to_log(target, ping):
                async with self.database.write():
                    if not target.logged:
                        # A late ping into a window without a LOCATION: re-checked under the row lock.
                        await Order.raw("SELECT 1 FROM orders WHERE id = {} FOR UPDATE", order_id)
                    await self._log(target, order_id, ping, identity.user_id, now)
        await self._publish(order_id, ping)
        return target.moved

    async def _move_postgres(self, order_id: str, ping: Ping, now: datetime, vendor: str | None, actor: str) -> _Target:
        window_start, window_end = _window(ping.at)
        rows = await Order.raw(
            _PING_POSTGRES,
            order_id,
            *(ping.lat, ping.lng, ping.at, ping.estimated_delivery_at, now, order_id, ping.at, vendor, vendor),
            *(order_id, ping.lat, ping.lng, actor, ping.at, window_start),
            *(order_id, window_start, window_end),
        )
        return _authorized(rows, order_id, vendor)

    async def _move_sqlite(self, order_id: str, ping: Ping, now: datetime, vendor: str | None) -> _Target:
        rows = await Order.raw(_READ_SQLITE, order_id, *_window(ping.at), order_id)
        target = _authorized(rows, order_id, vendor)
        if target.current_location_at is None or ping.at >= target.current_location_at:
            eta = ping.estimated_delivery_at
            await Order.raw(_MOVE, ping.lat, ping.lng, ping.at, eta, now, order_id, ping.at)
            target.moved = True
        return target

    @staticmethod
    def _to_log(target: _Target, ping: Ping) -> bool:
        return not target.logged or ping.note is not None or _eta_changed(target, ping)

    async def _log(self, target: _Target, order_id: str, ping: Ping, actor: str, now: datetime) -> None:
        """The ping's order events: LOCATION if its window has none, ETA when it changed, NOTE when given."""
        if not target.logged:
            location = (order_id, target.customer_id, ping.lat, ping.lng, actor, ping.at)
            await OrderEvent.raw(_LOG_LOCATION, *location, order_id, *_window(ping.at))
        fields: list[dict[str, Any]] = []
        if _eta_changed(target, ping):
            fields.append({"kind": OrderEventKind.ETA.value, "estimated_delivery_at": ping.estimated_delivery_at})
        if ping.note:
            fields.append({"kind": OrderEventKind.NOTE.value, "note": ping.note, "lat": ping.lat, "lng": ping.lng})
        if fields:
            await OrderEvent.insert(
                *(
                    OrderEvent(order=order_id, customer=target.customer_id, actor_id=actor, created_at=now, **more)
                    for more in fields
                )
            )

    async def _publish(self, order_id: str, ping: Ping) -> None:
        """``tracking.location`` (and ``tracking.eta``) on ``order:{id}``; a failure is counted, not raised."""
        at = rfc3339(ping.at)
        events: list[tuple[str, dict[str, Any]]] = [
            ("tracking.location", {"orderId": order_id, "lat": ping.lat, "lng": ping.lng, "at": at})
        ]
        if ping.estimated_delivery_at is not None:
            eta = rfc3339(ping.estimated_delivery_at)
            events.append(("tracking.eta", {"orderId": order_id, "estimatedDeliveryAt": eta, "at": at}))
        for type_, data in events:
            try:
                await self.publisher.publish(f"order:{order_id}", type_, data)
            except ChannelsError as exc:
                # The location is in the database and the courier's next ping supersedes this one.
                self.publish_failures += 1
                logger.warning("%s of order %s not published: %s", type_, order_id, exc)


def _authorized(rows: list[dict[str, Any]], order_id: str, vendor: str | None) -> _Target:
    """The order a ping found, if the caller may track it and its tracking has not ended.

    Raises:
        NotFound: absent, or not the vendor's store.
        Conflict: (409) tracking has ended.
    """
    if not rows:
        raise NotFound(f"no order {order_id}")
    target = msgspec.convert(rows[0], _Target, strict=False)
    if vendor is not None and target.owner_id != vendor:
        raise NotFound(f"no order {order_id}")
    if target.status in TRACKING_ENDED:
        raise Conflict(f"order {order_id} is {target.status.value}: its tracking has ended")
    return target


def _eta_changed(target: _Target, ping: Ping) -> bool:
    """An ETA is logged when a ping that became current changes it (an older ping's ETA is not stored)."""
    eta = ping.estimated_delivery_at
    return eta is not None and target.moved and eta != target.estimated_delivery_at
