"""The aggregate queries behind customer insights, one SQL text for both engines where it can be.

Every query is scoped to one customer's orders (index ``orders_customer_insights`` covers the order
columns they read), and the item and event queries also to that customer's child rows, which carry
the order's customer (``order_items_customer_insights``, ``order_events_customer_created``), so every
read is one contiguous index range per table. Each groups in the database; Python only folds the few
grouped rows. Money is grouped by currency too, so the caller can report the customer's reporting currency without a
second round trip. Buckets are UTC: PostgreSQL spells them with ``to_char``/``extract`` ``AT TIME
ZONE 'UTC'``, SQLite with ``strftime`` (which reads the ``+00:00`` text Piccolo stores). Medians use
``ROW_NUMBER``/``COUNT`` windows, which both engines run identically, and come back doubled as an
integer (the sum of the one or two middle values, times two over their count) so rounding stays exact.

"Paid" is SPEC's spending rule: payment succeeded, and the order neither CANCELLED nor REFUNDED.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from piccolo.query.functions.aggregate import Count, Max, Min, Sum

from models import Order
from models.enums import OrderStatus, PaymentStatus

__all__ = ["EPOCH", "PAID", "Dialect", "InsightQueries", "as_datetime"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""``since`` for all-time questions."""

PAID = (
    f"(o.payment_status = '{PaymentStatus.SUCCEEDED.value}'"
    f" AND o.status NOT IN ('{OrderStatus.CANCELLED.value}', '{OrderStatus.REFUNDED.value}'))"
)
_PAID_FLAG = f"CASE WHEN {PAID} THEN 1 ELSE 0 END"
_PAID_TOTAL = f"CASE WHEN {PAID} THEN o.total_cents ELSE 0 END"
_PAID_LINE = f"CASE WHEN {PAID} THEN i.unit_price_cents * i.quantity ELSE 0 END"


@dataclass(frozen=True)
class Dialect:
    """How one engine spells the UTC buckets of ``o.created_at``."""

    month: str
    day: str
    weekday: str
    """ISO weekday: 1 is Monday, 7 is Sunday."""
    hour: str

    @property
    def weekday_hour(self) -> str:
        """Weekday and hour in one bucket: ``weekday * 100 + hour``."""
        return f"({self.weekday} * 100 + {self.hour})"

    @classmethod
    def for_engine(cls, is_sqlite: bool) -> Dialect:
        """The dialect of SQLite or PostgreSQL."""
        if is_sqlite:
            return cls(
                month="strftime('%Y-%m', o.created_at)",
                day="strftime('%Y-%m-%d', o.created_at)",
                weekday="((CAST(strftime('%w', o.created_at) AS INTEGER) + 6) % 7 + 1)",
                hour="CAST(strftime('%H', o.created_at) AS INTEGER)",
            )
        utc = "o.created_at AT TIME ZONE 'UTC'"
        return cls(
            month=f"to_char({utc}, 'YYYY-MM')",
            day=f"to_char({utc}, 'YYYY-MM-DD')",
            weekday=f"CAST(extract(isodow FROM {utc}) AS INTEGER)",
            hour=f"CAST(extract(hour FROM {utc}) AS INTEGER)",
        )


def as_datetime(value: Any) -> datetime | None:
    """A timestamp from either driver: asyncpg gives datetimes, SQLite aggregates give Piccolo's text."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class InsightQueries:
    """The queries, bound to one engine's dialect; each answers plain rows (dicts)."""

    def __init__(self, is_sqlite: bool) -> None:
        self.dialect = Dialect.for_engine(is_sqlite)

    async def summary(self, customer_id: str) -> list[dict[str, Any]]:
        """Per (status, payment status, currency): orders, total cents, first and last order time."""
        rows: list[dict[str, Any]] = await (
            Order.select(
                Order.status,
                Order.payment_status,
                Order.currency,
                Count(alias="orders"),
                Sum(Order.total_cents, alias="total"),
                Min(Order.created_at, alias="first_at"),
                Max(Order.created_at, alias="last_at"),
            )
            .where(Order.customer == customer_id)
            .group_by(Order.status, Order.payment_status, Order.currency)
        )
        return rows

    async def periods(self, customer_id: str, bucket: str, since: datetime) -> list[dict[str, Any]]:
        """Per (bucket, currency) from ``since``: orders, paid orders, paid cents. ``bucket`` is a dialect field."""
        expression = getattr(self.dialect, bucket)
        sql = f"""
            SELECT {expression} AS bucket, o.currency AS currency, COUNT(*) AS orders,
                   SUM({_PAID_FLAG}) AS paid_orders, SUM({_PAID_TOTAL}) AS spent
            FROM orders o
            WHERE o.customer_id = {{}} AND o.created_at >= {{}}
            GROUP BY 1, 2"""
        rows: list[dict[str, Any]] = await Order.raw(sql, customer_id, since)
        return rows

    async def patterns(self, customer_id: str, bucket: str | None, since: datetime) -> list[dict[str, Any]]:
        """Per (bucket, currency): orders, paid orders, paid cents and twice the median paid order value.

        ``bucket`` is ``weekday``, ``hour`` or None (one bucket, 0, for all orders).
        """
        expression = "0" if bucket is None else getattr(self.dialect, bucket)
        sql = f"""
            WITH base AS (
                SELECT {expression} AS bucket, o.currency AS currency, o.total_cents AS total, {_PAID_FLAG} AS paid
                FROM orders o
                WHERE o.customer_id = {{}} AND o.created_at >= {{}}),
            ranked AS (
                SELECT bucket, currency, total,
                       ROW_NUMBER() OVER (PARTITION BY bucket, currency ORDER BY total) AS position,
                       COUNT(*) OVER (PARTITION BY bucket, currency) AS paid_count
                FROM base WHERE paid = 1),
            medians AS (
                SELECT bucket, currency, SUM(total) * 2 / COUNT(*) AS median2
                FROM ranked
                WHERE position IN ((paid_count + 1) / 2, (paid_count + 2) / 2)
                GROUP BY bucket, currency),
            totals AS (
                SELECT bucket, currency, COUNT(*) AS orders, SUM(paid) AS paid_orders,
                       SUM(CASE WHEN paid = 1 THEN total ELSE 0 END) AS spent
                FROM base GROUP BY bucket, currency)
            SELECT t.bucket AS bucket, t.currency AS currency, t.orders AS orders, t.paid_orders AS paid_orders,
                   t.spent AS spent, m.median2 AS median2
            FROM totals t LEFT JOIN medians m ON m.bucket = t.bucket AND m.currency = t.currency"""
        rows: list[dict[str, Any]] = await Order.raw(sql, customer_id, since)
        return rows

    async def stores(self, customer_id: str, limit: int) -> list[dict[str, Any]]:
        """The top ``limit`` stores by orders (then paid cents, then id), with how many stores and repeat stores.

        A store trades in one currency, so its paid cents are summed as they are.
        """
        sql = f"""
            WITH per_store AS (
                SELECT o.store_id AS store_id, COUNT(*) AS orders, SUM({_PAID_TOTAL}) AS spent,
                       MAX(o.currency) AS currency, MAX(o.created_at) AS last_order_at
                FROM orders o
                WHERE o.customer_id = {{}}
                GROUP BY o.store_id),
            ranked AS (
                SELECT p.store_id, p.orders, p.spent, p.currency, p.last_order_at,
                       COUNT(*) OVER () AS stores,
                       SUM(CASE WHEN p.orders >= 2 THEN 1 ELSE 0 END) OVER () AS repeat_stores
                FROM per_store p
                ORDER BY p.orders DESC, p.spent DESC, p.store_id
                LIMIT {{}})
            SELECT r.store_id AS store_id, s.name AS name, r.orders AS orders, r.spent AS spent,
                   r.currency AS currency, r.last_order_at AS last_order_at, r.stores AS stores,
                   r.repeat_stores AS repeat_stores
            FROM ranked r JOIN stores s ON s.id = r.store_id
            ORDER BY r.orders DESC, r.spent DESC, r.store_id"""
        rows: list[dict[str, Any]] = await Order.raw(sql, customer_id, limit)
        return rows

    async def recent_events(self, customer_id: str, limit: int) -> list[dict[str, Any]]:
        """The latest ``limit`` events of the customer's orders, newest first (ties: the later id).

        Reads the first ``limit`` entries of the customer's range of ``order_events_customer_created``.
        """
        sql = """
            SELECT e.id AS id, e.order_id AS order_id, e.kind AS kind, e.from_status AS from_status,
                   e.to_status AS to_status, e.created_at AS created_at
            FROM order_events e
            WHERE e.customer_id = {}
            ORDER BY e.created_at DESC, e.id DESC
            LIMIT {}"""
        rows: list[dict[str, Any]] = await Order.raw(sql, customer_id, limit)
        return rows

    async def categories(self, customer_id: str, since: datetime) -> list[dict[str, Any]]:
        """Per (category, currency) from ``since``: orders containing it, items, paid line cents.

        Both sides are filtered by the customer (and the window), so each is one index range and they
        hash-join on the order id instead of probing the items once per order.
        """
        sql = f"""
            SELECT i.category AS category, o.currency AS currency, COUNT(DISTINCT o.id) AS orders,
                   SUM(i.quantity) AS items, SUM({_PAID_LINE}) AS spent
            FROM order_items i JOIN orders o ON o.id = i.order_id
            WHERE i.customer_id = {{}} AND i.ordered_at >= {{}} AND o.customer_id = {{}} AND o.created_at >= {{}}
            GROUP BY i.category, o.currency"""
        rows: list[dict[str, Any]] = await Order.raw(sql, customer_id, since, customer_id, since)
        return rows

    async def products(self, customer_id: str, limit: int) -> list[dict[str, Any]]:
        """The top ``limit`` products by orders containing them (then quantity, paid cents, id).

        Joined like :meth:`categories`: the customer's items with the customer's orders.
        """
        sql = f"""
            WITH per_product AS (
                SELECT i.product_id AS product_id, COUNT(DISTINCT o.id) AS orders, SUM(i.quantity) AS quantity,
                       SUM({_PAID_LINE}) AS spent, MAX(o.currency) AS currency,
                       MAX(o.created_at) AS last_ordered_at
                FROM order_items i JOIN orders o ON o.id = i.order_id
                WHERE i.customer_id = {{}} AND o.customer_id = {{}}
                GROUP BY i.product_id
                ORDER BY 2 DESC, 3 DESC, 4 DESC, 1
                LIMIT {{}})
            SELECT pp.product_id AS product_id, p.name AS name, p.category AS category, pp.orders AS orders,
                   pp.quantity AS quantity, pp.spent AS spent, pp.currency AS currency,
                   pp.last_ordered_at AS last_ordered_at
            FROM per_product pp JOIN products p ON p.id = pp.product_id
            ORDER BY pp.orders DESC, pp.quantity DESC, pp.spent DESC, pp.product_id"""
        rows: list[dict[str, Any]] = await Order.raw(sql, customer_id, customer_id, limit)
        return rows
