"""How every order change is written: one transaction holding the change, its order events, the
notifications it implies and its outbox events; after commit, wake the outbox and drop the
customer's cached insights (SPEC "Every change writes an order event and the notifications it
implies in the same database transaction, then publishes").

Domain code takes a :class:`Changes` inside ``async with writer.transaction() as changes`` and adds
to it; :class:`OrderWriter` writes what was added before the commit and runs the after-commit
steps, so no write path can forget one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import msgspec

from app.platform.database import Database
from app.platform.errors import Conflict, NotFound
from app.platform.timefmt import rfc3339, utc_now
from app.services import notification_catalog as catalog
from app.services.insights_cache import InsightsCache
from app.services.notifications import NotificationDraft, write_notifications
from app.services.order_workflow import Actor, check_transition
from app.services.outbox import OutboxRelay, PendingEvent, write_events
from models.enums import DeliveryMedium, OrderEventKind, OrderStatus, PaymentStatus
from models.orders import Order, OrderEvent

__all__ = ["Changes", "LockedOrder", "OrderWriter", "change_status", "lock_order", "order_channels"]

_LOCK = (
    "SELECT o.id, o.customer_id, o.store_id, s.owner_id, o.status, o.payment_status, o.total_cents, o.currency,"
    " o.current_location_at, o.estimated_delivery_at"
    " FROM orders o JOIN stores s ON s.id = o.store_id WHERE o.id = {}"
)


class LockedOrder(msgspec.Struct, kw_only=True):
    """The facts of an order that write paths decide on, read under the order's row lock."""

    id: str
    customer_id: str
    store_id: str
    owner_id: str
    status: OrderStatus
    payment_status: PaymentStatus
    total_cents: int
    currency: str
    current_location_at: datetime | None
    estimated_delivery_at: datetime | None


def order_channels(order: LockedOrder) -> tuple[str, str, str]:
    """Where order.created and order.status_changed go: the customer, the store, the order."""
    return (f"user:{order.customer_id}", f"store:{order.store_id}", f"order:{order.id}")


class Changes:
    """What one transaction adds besides its own UPDATEs; written by :class:`OrderWriter` before commit."""

    def __init__(self, is_sqlite: bool) -> None:
        self.now = utc_now()
        self.is_sqlite = is_sqlite
        self.order_events: list[OrderEvent] = []
        self.notifications: list[NotificationDraft] = []
        self.events: list[PendingEvent] = []
        self.customers: set[str] = set()
        self.owners: dict[str, str] = {}
        """Order id -> customer id of the orders this transaction created or locked."""

    def own(self, order_id: str, customer_id: str) -> None:
        """Note whose order ``order_id`` is, so its events carry the customer (an immutable copy)."""
        self.owners[order_id] = customer_id

    def log(self, order_id: str, kind: OrderEventKind, *, at: datetime | None = None, **fields: Any) -> None:
        """Add an entry to the order's timeline (created now unless ``at`` says when it happened).

        The event carries the order's customer when this transaction created or locked the order;
        otherwise the database's trigger copies it from ``orders``.
        """
        event = OrderEvent(
            order=order_id, customer=self.owners.get(order_id), kind=kind.value, created_at=at or self.now, **fields
        )
        self.order_events.append(event)

    def publish(self, channels: tuple[str, ...], type_: str, data: dict[str, Any]) -> None:
        """Publish ``data`` on each channel after commit."""
        self.events.extend(PendingEvent(channel, type_, data) for channel in channels)


async def lock_order(order_id: str, changes: Changes) -> LockedOrder:
    """Read an order under a row lock (FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE transaction already
    serializes writers), so two concurrent changes cannot both start from the same status.

    Raises:
        NotFound: no such order.
    """
    rows = await Order.raw(_LOCK if changes.is_sqlite else _LOCK + " FOR UPDATE OF o", order_id)
    if not rows:
        raise NotFound(f"no order {order_id}")
    order = msgspec.convert(rows[0], LockedOrder, strict=False)
    changes.own(order.id, order.customer_id)
    return order


async def change_status(
    changes: Changes, order: LockedOrder, target: OrderStatus, actor: Actor, actor_id: str | None
) -> None:
    """Move a locked order to ``target`` if the table allows it, with its event, notifications and events.

    Raises:
        InvalidTransition: (409) the table refuses; ``allowed`` lists what ``actor`` may do instead.
    """
    check_transition(order.status, target, actor)
    updated = await Order.raw(
        # The WHERE on the old status is the guard of last resort: never two moves from one status.
        "UPDATE orders SET status = {}, updated_at = {} WHERE id = {} AND status = {} RETURNING id",
        target.value,
        changes.now,
        order.id,
        order.status.value,
    )
    if not updated:
        raise Conflict(f"order {order.id} changed concurrently; retry")
    source, order.status = order.status, target
    changes.log(
        order.id, OrderEventKind.STATUS_CHANGED, from_status=source.value, to_status=target.value, actor_id=actor_id
    )
    if target is OrderStatus.CANCELLED:
        changes.notifications.extend(catalog.order_cancelled(order.id, order.customer_id, order.owner_id))
    else:
        changes.notifications.extend(catalog.order_status_changed(order.id, order.customer_id, target))
    data = {
        "orderId": order.id,
        "storeId": order.store_id,
        "fromStatus": source.value,
        "toStatus": target.value,
        "at": rfc3339(changes.now),
    }
    changes.publish(order_channels(order), "order.status_changed", data)
    changes.customers.add(order.customer_id)


class OrderWriter:
    """Runs order changes: one write transaction, then wake the outbox and invalidate insights."""

    def __init__(
        self,
        database: Database,
        outbox: OutboxRelay,
        insights: InsightsCache,
        configured: frozenset[DeliveryMedium],
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.insights = insights
        self.configured = configured

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Changes]:
        """``async with writer.transaction() as changes:`` the body's writes and ``changes`` commit together."""
        changes = Changes(self.database.is_sqlite)
        async with self.database.write():
            yield changes
            if changes.order_events:
                await OrderEvent.insert(*changes.order_events)
            # Domain events go first so a client sees the order change before the bell rings for it.
            await write_events(changes.events)
            if changes.notifications:
                await write_notifications(changes.notifications, self.configured, changes.now)
        if changes.events or changes.notifications:
            self.outbox.wake()
        for customer_id in changes.customers:
            await self.insights.invalidate(customer_id)
