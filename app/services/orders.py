"""Orders: placing one, reading them scoped by role, moving them through the state machine.

Who sees what (SPEC "Identity and access"): a customer their own orders, a vendor the orders of
their stores, an admin all; anything else is 404, never 403, so ids cannot be probed.

Shipping rule: a flat :data:`SHIPPING_CENTS` per order, free from :data:`FREE_SHIPPING_FROM_CENTS`
of subtotal up. Every product of an order must belong to its store and share one currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from app.platform.auth import Identity
from app.platform.errors import NotFound, ValidationFailed
from app.platform.ids import new_id
from app.platform.pagination import CursorCodec, Page, check_limit
from app.platform.timefmt import rfc3339
from app.services import notification_catalog as catalog
from app.services.order_views import Address, OrderView, order_view
from app.services.order_workflow import Actor
from app.services.order_writes import LockedOrder, OrderWriter, change_status, lock_order
from models.catalog import Product, Store
from models.enums import OrderEventKind, OrderStatus, PaymentStatus, Role
from models.orders import Order, OrderItem

__all__ = [
    "FREE_SHIPPING_FROM_CENTS",
    "SHIPPING_CENTS",
    "OrderLine",
    "cancel_order",
    "get_order",
    "list_orders",
    "may_manage",
    "may_see",
    "place_order",
    "set_status",
    "shipping_for",
]

SHIPPING_CENTS = 499
FREE_SHIPPING_FROM_CENTS = 5000
MAX_ORDER_TOTAL_CENTS = 2**31 - 1
"""Order amounts are 32-bit columns: an order above this total is refused (400) rather than overflowing."""

_SELECT = "SELECT o.*, s.owner_id FROM orders o JOIN stores s ON s.id = o.store_id"


class OrderLine(msgspec.Struct, frozen=True):
    """One requested line: a product and how many."""

    product_id: str
    quantity: int


def shipping_for(subtotal_cents: int) -> int:
    """The shipping charge of an order with this subtotal."""
    return 0 if subtotal_cents >= FREE_SHIPPING_FROM_CENTS else SHIPPING_CENTS


def may_see(identity: Identity, customer_id: str, owner_id: str) -> bool:
    """Whether the caller may read an order of this customer in a store of this owner."""
    if identity.role is Role.CUSTOMER:
        return customer_id == identity.user_id
    if identity.role is Role.VENDOR:
        return owner_id == identity.user_id
    return identity.role is Role.ADMIN


def may_manage(identity: Identity, order: LockedOrder) -> bool:
    """Whether the caller may move or track an order: the store's vendor, an admin, a service."""
    if identity.role is Role.VENDOR:
        return order.owner_id == identity.user_id
    return identity.role in (Role.ADMIN, Role.SERVICE)


async def place_order(
    writer: OrderWriter, customer_id: str, store_id: str, lines: Sequence[OrderLine], address: Address
) -> OrderView:
    """Price and create an order (PENDING, payment PENDING) with its event, notifications and events.

    Raises:
        ValidationFailed: (422) an unknown store, a product of another store, a repeated product,
            or products in different currencies; the field is named (``items[2].productId``).
    """
    store = await Store.select(Store.id, Store.owner).where(Store.id == store_id).first()
    if store is None:
        raise ValidationFailed([("storeId", f"no store {store_id}")])
    products = {
        row["id"]: row for row in await Product.select().where(Product.id.is_in([line.product_id for line in lines]))
    }
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, line in enumerate(lines):
        product = products.get(line.product_id)
        if product is None or product["store_id"] != store_id:
            errors.append((f"items[{index}].productId", f"{line.product_id} is not a product of store {store_id}"))
        elif line.product_id in seen:
            errors.append((f"items[{index}].productId", "each product once; raise its quantity instead"))
        seen.add(line.product_id)
    if errors:
        raise ValidationFailed(errors)
    currencies = {products[line.product_id]["currency"] for line in lines}
    if len(currencies) > 1:
        raise ValidationFailed([("items", f"products in several currencies: {', '.join(sorted(currencies))}")])
    currency = currencies.pop()
    subtotal = sum(products[line.product_id]["price_cents"] * line.quantity for line in lines)
    shipping = shipping_for(subtotal)
    if subtotal + shipping > MAX_ORDER_TOTAL_CENTS:
        raise ValidationFailed([("items", f"the order total is over {MAX_ORDER_TOTAL_CENTS} minor units")], status=400)
    order_id = new_id("ord")
    async with writer.transaction() as changes:
        await Order.insert(
            Order(
                id=order_id,
                customer=customer_id,
                store=store_id,
                status=OrderStatus.PENDING.value,
                payment_status=PaymentStatus.PENDING.value,
                subtotal_cents=subtotal,
                shipping_cents=shipping,
                total_cents=subtotal + shipping,
                currency=currency,
                shipping_address=msgspec.json.encode(address).decode(),
                created_at=changes.now,
                updated_at=changes.now,
            )
        )
        await OrderItem.insert(
            *(
                OrderItem(
                    # Ids that sort in request order: items are listed ORDER BY id.
                    id=f"itm_{order_id.removeprefix('ord_')}_{index:02d}",
                    order=order_id,
                    customer=customer_id,
                    ordered_at=changes.now,
                    product=line.product_id,
                    name=products[line.product_id]["name"],
                    category=products[line.product_id]["category"],
                    unit_price_cents=products[line.product_id]["price_cents"],
                    quantity=line.quantity,
                )
                for index, line in enumerate(lines)
            )
        )
        changes.own(order_id, customer_id)
        changes.log(order_id, OrderEventKind.CREATED, to_status=OrderStatus.PENDING.value, actor_id=customer_id)
        changes.notifications.extend(
            catalog.order_placed(order_id, customer_id, store["owner_id"], subtotal + shipping, currency)
        )
        data = {
            "orderId": order_id,
            "storeId": store_id,
            "customerId": customer_id,
            "status": OrderStatus.PENDING.value,
            "totalCents": subtotal + shipping,
            "currency": currency,
            "createdAt": rfc3339(changes.now),
        }
        channels = (f"user:{customer_id}", f"store:{store_id}", f"order:{order_id}")
        changes.publish(channels, "order.created", data)
        changes.customers.add(customer_id)
    return await _view(order_id)


async def _items_of(order_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {order_id: [] for order_id in order_ids}
    if order_ids:
        rows = await OrderItem.raw(
            f"SELECT * FROM order_items WHERE order_id IN ({', '.join('{}' for _ in order_ids)}) ORDER BY id",
            *order_ids,
        )
        for row in rows:
            grouped[row["order_id"]].append(row)
    return grouped


async def _view(order_id: str) -> OrderView:
    rows = await Order.raw(_SELECT + " WHERE o.id = {}", order_id)
    if not rows:
        raise NotFound(f"no order {order_id}")
    return order_view(rows[0], (await _items_of([order_id]))[order_id])


async def get_order(identity: Identity, order_id: str) -> OrderView:
    """One order with its items, if the caller may see it.

    Raises:
        NotFound: absent or not the caller's.
    """
    rows = await Order.raw(_SELECT + " WHERE o.id = {}", order_id)
    if not rows or not may_see(identity, rows[0]["customer_id"], rows[0]["owner_id"]):
        raise NotFound(f"no order {order_id}")
    return order_view(rows[0], (await _items_of([order_id]))[order_id])


async def list_orders(
    identity: Identity,
    cursors: CursorCodec,
    *,
    status: OrderStatus | None = None,
    store_id: str | None = None,
    customer_id: str | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> Page[OrderView]:
    """The orders the caller may see, newest first, keyset-paginated on ``(createdAt, id)``.

    A customer's filters narrow their own orders, a vendor's their own stores': a filter can never widen.
    """
    limit = check_limit(limit)
    sql = [_SELECT, "WHERE 1 = 1"]
    args: list[Any] = []
    if identity.role is Role.CUSTOMER:
        sql.append("AND o.customer_id = {}")
        args.append(identity.user_id)
    elif identity.role is Role.VENDOR:
        sql.append("AND s.owner_id = {}")
        args.append(identity.user_id)
    for column, value in (("o.status", status), ("o.store_id", store_id), ("o.customer_id", customer_id)):
        if value is not None:
            sql.append(f"AND {column} = {{}}")
            args.append(str(value))
    if cursor is not None:
        created_at, last_id = cursors.decode(cursor, 2)
        sql.append("AND (o.created_at, o.id) < ({}, {})")
        args.extend([datetime.fromisoformat(str(created_at)), str(last_id)])
    sql.append("ORDER BY o.created_at DESC, o.id DESC LIMIT {}")
    args.append(limit + 1)
    rows = await Order.raw(" ".join(sql), *args)
    page = rows[:limit]
    items = await _items_of([row["id"] for row in page])
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = cursors.encode([last["created_at"].isoformat(), last["id"]])
    return Page(items=[order_view(row, items[row["id"]]) for row in page], next_cursor=next_cursor)


async def set_status(writer: OrderWriter, identity: Identity, order_id: str, target: OrderStatus) -> OrderView:
    """``PATCH /orders/{id}/status``: the store's vendor, an admin or a service moves the order.

    Raises:
        NotFound: absent or not the caller's store.
        InvalidTransition: (409) the table refuses (REFUNDED included: only a refund sets it).
    """
    async with writer.transaction() as changes:
        order = await lock_order(order_id, changes)
        if not may_manage(identity, order):
            raise NotFound(f"no order {order_id}")
        await change_status(changes, order, target, Actor.STAFF, identity.user_id)
    return await _view(order_id)


async def cancel_order(writer: OrderWriter, identity: Identity, order_id: str) -> OrderView:
    """``POST /orders/{id}/cancel``: the customer cancels while the order is not yet shipped.

    Raises:
        NotFound: absent or not the caller's.
        InvalidTransition: (409) already shipped, delivered, cancelled or refunded.
    """
    async with writer.transaction() as changes:
        order = await lock_order(order_id, changes)
        if order.customer_id != identity.user_id:
            raise NotFound(f"no order {order_id}")
        await change_status(changes, order, OrderStatus.CANCELLED, Actor.CUSTOMER, identity.user_id)
    return await _view(order_id)
