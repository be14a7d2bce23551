"""Orders and everything that happens to them: items, the tracking timeline, payments, payouts."""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    BigInt,
    BigSerial,
    DoublePrecision,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from models.catalog import Product, Store, User

__all__ = ["Order", "OrderEvent", "OrderItem", "Payment", "Payout", "WebhookEvent"]


class Order(Table, tablename="orders"):
    """A customer's order from one store, with its live tracking state."""

    id = Varchar(length=40, primary_key=True)
    customer = ForeignKey(references=User, db_column_name="customer_id")
    store = ForeignKey(references=Store, db_column_name="store_id")
    status = Varchar(length=24)
    payment_status = Varchar(length=16)
    subtotal_cents = Integer()
    shipping_cents = Integer()
    total_cents = Integer()
    currency = Varchar(length=3)
    shipping_address = JSON()
    current_lat = DoublePrecision(null=True, default=None)
    current_lng = DoublePrecision(null=True, default=None)
    current_location_at = Timestamptz(null=True, default=None)
    estimated_delivery_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class OrderItem(Table, tablename="order_items"):
    """One line of an order, with the product's name, category and price as they were when ordered.

    ``customer`` and ``ordered_at`` copy the order's (immutable) customer and creation time, so one
    customer's items are one index range for insights; a trigger fills them when an INSERT leaves
    them NULL (migration ``2026-11-26T03:00:00``).
    """

    id = Varchar(length=40, primary_key=True)
    order = ForeignKey(references=Order, db_column_name="order_id")
    customer = ForeignKey(references=User, db_column_name="customer_id", null=True, default=None)
    ordered_at = Timestamptz(null=True, default=None)
    product = ForeignKey(references=Product, db_column_name="product_id")
    name = Text()
    category = Varchar(length=64)
    unit_price_cents = Integer()
    quantity = Integer()


class OrderEvent(Table, tablename="order_events"):
    """One entry of an order's tracking timeline.

    ``customer`` copies the order's customer, so one customer's events are one index range; a
    trigger fills it when an INSERT leaves it NULL (migration ``2026-11-26T03:00:00``).
    """

    id = BigSerial(primary_key=True)
    order = ForeignKey(references=Order, db_column_name="order_id")
    customer = ForeignKey(references=User, db_column_name="customer_id", null=True, default=None)
    kind = Varchar(length=16)
    from_status = Varchar(length=24, null=True, default=None)
    to_status = Varchar(length=24, null=True, default=None)
    lat = DoublePrecision(null=True, default=None)
    lng = DoublePrecision(null=True, default=None)
    estimated_delivery_at = Timestamptz(null=True, default=None)
    note = Text(null=True, default=None)
    actor_id = Varchar(length=64, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class Payment(Table, tablename="payments"):
    """The payment of one order, as the provider's webhooks report it."""

    id = Varchar(length=40, primary_key=True)
    order = ForeignKey(references=Order, db_column_name="order_id", unique=True)
    status = Varchar(length=16)
    amount_cents = BigInt()
    currency = Varchar(length=3)
    reason = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class Payout(Table, tablename="payouts"):
    """Money paid out to a vendor, keyed by the provider's payout id."""

    id = Varchar(length=64, primary_key=True)
    vendor = ForeignKey(references=User, db_column_name="vendor_id")
    status = Varchar(length=16)
    amount_cents = BigInt()
    currency = Varchar(length=3)
    reason = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class WebhookEvent(Table, tablename="webhook_events"):
    """A provider event id that has taken effect: each takes effect once, forever."""

    id = Varchar(length=128, primary_key=True)
    source = Varchar(length=16)
    type = Varchar(length=64)
    outcome = Varchar(length=16)
    received_at = Timestamptz(default=TimestamptzNow())
