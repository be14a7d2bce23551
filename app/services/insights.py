"""Customer insights (SPEC "Customer experience"): dashboard, analytics windows and preferences.

The figures are aggregated in the database (:mod:`app.services.insights_sql`); this module folds
the grouped rows into the views of :mod:`app.services.insights_views` and caches each encoded
answer per customer through :class:`~app.services.insights_cache.InsightsCache` (version read
before computing, stored only if still current).

Rules, where SPEC leaves room:

- ``orders`` counts every order (any status, any currency); money (``spentCents``, averages,
  medians) counts paid orders only: payment SUCCEEDED and neither CANCELLED nor REFUNDED.
- The reporting ``currency`` is the one most of the customer's orders are in (ties: the
  alphabetically first); money of orders in other currencies is not converted or mixed in, and
  the dashboard's ``byCurrency`` lists every currency's own totals. ``null`` when there are no orders.
- Averages and medians round half up to whole minor units; with no paid orders they are 0.
- Every bucket is UTC. Cache entries carry the UTC day, so windows move at midnight.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import msgspec

from app.platform.database import Database
from app.platform.errors import ValidationFailed
from app.platform.timefmt import rfc3339, utc_now
from app.services.insights_cache import InsightsCache
from app.services.insights_sql import EPOCH, InsightQueries, as_datetime
from app.services.insights_views import (
    Analytics,
    CategoryShare,
    CurrencyTotal,
    CustomerInsights,
    Dashboard,
    DayTrend,
    HourPattern,
    MonthTrend,
    OrderActivity,
    Preferences,
    ProductRank,
    SpendingPattern,
    SpendingPatterns,
    StoreRank,
    WeekdayPattern,
)
from models.enums import OrderStatus, PaymentStatus

__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "CustomerInsightsService", "check_days", "half_up", "is_paid"]

DEFAULT_DAYS = 30
MAX_DAYS = 365
FAVORITE_STORES = 5
PREFERRED_STORES = 10
FAVORITE_PRODUCTS = 10
RECENT_EVENTS = 10
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_UNPAID_STATUSES = frozenset({OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value})
_encoder = msgspec.json.Encoder()


def is_paid(status: str, payment_status: str) -> bool:
    """SPEC's spending rule, as :data:`app.services.insights_sql.PAID` says it in SQL."""
    return payment_status == PaymentStatus.SUCCEEDED.value and status not in _UNPAID_STATUSES


def half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up to an integer (non-negative numerator); 0 over 0 is 0."""
    return (2 * numerator + denominator) // (2 * denominator) if denominator else 0


def _fraction(numerator: float, denominator: float, places: str = "0.0001") -> float:
    if not denominator:
        return 0.0
    return float((Decimal(numerator) / Decimal(denominator)).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def check_days(days: int) -> int:
    """The analytics window, validated.

    Raises:
        ValidationFailed: (400) naming ``days`` unless it is 1..365.
    """
    if not 1 <= days <= MAX_DAYS:
        raise ValidationFailed([("days", f"must be an integer from 1 to {MAX_DAYS}, got {days}")], status=400)
    return days


class _Summary(msgspec.Struct):
    """The customer's all-time figures, folded from the (status, payment status, currency) groups."""

    total_orders: int = 0
    currency: str | None = None
    paid_orders: int = 0
    spent: int = 0
    status_breakdown: dict[str, int] = msgspec.field(default_factory=dict)
    by_currency: list[CurrencyTotal] = msgspec.field(default_factory=list)
    first_at: datetime | None = None
    last_at: datetime | None = None


def _summarise(rows: Iterable[dict[str, Any]]) -> _Summary:
    summary = _Summary(status_breakdown={status.value: 0 for status in OrderStatus})
    orders: dict[str, int] = defaultdict(int)
    paid: dict[str, int] = defaultdict(int)
    spent: dict[str, int] = defaultdict(int)
    for row in rows:
        count, currency = int(row["orders"]), str(row["currency"])
        summary.total_orders += count
        summary.status_breakdown[row["status"]] = summary.status_breakdown.get(row["status"], 0) + count
        orders[currency] += count
        if is_paid(row["status"], row["payment_status"]):
            paid[currency] += count
            spent[currency] += int(row["total"] or 0)
        first, last = as_datetime(row["first_at"]), as_datetime(row["last_at"])
        if first is not None and (summary.first_at is None or first < summary.first_at):
            summary.first_at = first
        if last is not None and (summary.last_at is None or last > summary.last_at):
            summary.last_at = last
    if orders:
        summary.currency = min(orders, key=lambda code: (-orders[code], code))
        summary.paid_orders, summary.spent = paid[summary.currency], spent[summary.currency]
    summary.by_currency = [
        CurrencyTotal(currency=code, orders=orders[code], paid_orders=paid[code], spent_cents=spent[code])
        for code in sorted(orders, key=lambda code: (-orders[code], code))
    ]
    return summary


def _fold(rows: Iterable[dict[str, Any]], currency: str | None) -> dict[Any, dict[str, int]]:
    """Per bucket: orders of every currency; paid orders, paid cents and median of the reporting currency."""
    folded: dict[Any, dict[str, int]] = defaultdict(lambda: {"orders": 0, "paid": 0, "spent": 0, "median2": 0})
    for row in rows:
        bucket = folded[row["bucket"]]
        bucket["orders"] += int(row["orders"])
        if row["currency"] == currency:
            bucket["paid"] += int(row["paid_orders"] or 0)
            bucket["spent"] += int(row["spent"] or 0)
            bucket["median2"] = int(row.get("median2") or 0)
    return folded


def _store_ranks(rows: list[dict[str, Any]]) -> list[StoreRank]:
    return [
        StoreRank(
            rank=rank,
            store_id=row["store_id"],
            name=row["name"],
            orders=int(row["orders"]),
            spent_cents=int(row["spent"] or 0),
            currency=row["currency"],
            last_order_at=rfc3339(as_datetime(row["last_order_at"])),
        )
        for rank, row in enumerate(rows, start=1)
    ]


def _months(now: datetime, count: int) -> list[str]:
    months, year, month = [], now.year, now.month
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class CustomerInsightsService:
    """Computes and caches one customer's insights.

    Args:
        database: the engine the tables are bound to (its dialect picks the SQL spelling).
        cache: where encoded answers are kept per customer.
        clock: "now", UTC; tests pin it.
    """

    def __init__(self, database: Database, cache: InsightsCache, clock: Callable[[], datetime] = utc_now) -> None:
        self.queries = InsightQueries(database.is_sqlite)
        self.cache = cache
        self.clock = clock

    async def _cached(self, customer_id: str, kind: str, compute: Callable[[], Awaitable[msgspec.Struct]]) -> bytes:
        cached = await self.cache.get(customer_id, kind)
        if cached is not None:
            return cached
        version = await self.cache.version(customer_id)
        encoded = _encoder.encode(await compute())
        await self.cache.put(customer_id, kind, encoded, version)
        return encoded

    async def dashboard_json(self, customer_id: str) -> bytes:
        """The encoded dashboard, from cache when current."""
        now = self.clock()
        return await self._cached(customer_id, f"dashboard:{now.date()}", lambda: self.dashboard(customer_id, now))

    async def analytics_json(self, customer_id: str, days: int) -> bytes:
        """The encoded analytics of the last ``days`` days, from cache when current."""
        now, days = self.clock(), check_days(days)
        kind = f"analytics:{days}:{now.date()}"
        return await self._cached(customer_id, kind, lambda: self.analytics(customer_id, days, now))

    async def preferences_json(self, customer_id: str) -> bytes:
        """The encoded preferences, from cache when current."""
        now = self.clock()
        return await self._cached(customer_id, f"preferences:{now.date()}", lambda: self.preferences(customer_id, now))

    async def dashboard(self, customer_id: str, now: datetime) -> Dashboard:
        """Totals, the last 12 months (this one included), favourite stores, recent activity, statuses."""
        months = _months(now, 12)
        since = datetime(int(months[0][:4]), int(months[0][5:]), 1, tzinfo=UTC)
        q = self.queries
        summary_rows, month_rows, store_rows, event_rows = await asyncio.gather(
            q.summary(customer_id),
            q.periods(customer_id, "month", since),
            q.stores(customer_id, FAVORITE_STORES),
            q.recent_events(customer_id, RECENT_EVENTS),
        )
        summary = _summarise(summary_rows)
        by_month = _fold(month_rows, summary.currency)
        return Dashboard(
            customer_id=customer_id,
            currency=summary.currency,
            total_orders=summary.total_orders,
            paid_orders=summary.paid_orders,
            total_spent_cents=summary.spent,
            average_order_value_cents=half_up(summary.spent, summary.paid_orders),
            status_breakdown=summary.status_breakdown,
            monthly_trends=[
                MonthTrend(month=month, orders=by_month[month]["orders"], spent_cents=by_month[month]["spent"])
                for month in months
            ],
            favorite_stores=_store_ranks(store_rows),
            recent_activity=[
                OrderActivity(
                    id=str(row["id"]),
                    order_id=row["order_id"],
                    kind=row["kind"],
                    at=rfc3339(as_datetime(row["created_at"])),
                    from_status=row["from_status"],
                    to_status=row["to_status"],
                )
                for row in event_rows
            ],
            by_currency=summary.by_currency,
        )

    async def analytics(self, customer_id: str, days: int, now: datetime) -> Analytics:
        """Per-day trends, weekday and hour patterns, and category shares of the ``days`` UTC days ending today."""
        today = now.date()
        dates = [(today - timedelta(days=offset)).isoformat() for offset in range(days - 1, -1, -1)]
        since = _midnight(today - timedelta(days=days - 1))
        q = self.queries
        summary_rows, day_rows, weekday_rows, hour_rows, category_rows = await asyncio.gather(
            q.summary(customer_id),
            q.periods(customer_id, "day", since),
            q.patterns(customer_id, "weekday", since),
            q.patterns(customer_id, "hour", since),
            q.categories(customer_id, since),
        )
        currency = _summarise(summary_rows).currency
        by_day = _fold(day_rows, currency)
        by_weekday, by_hour = _fold(weekday_rows, currency), _fold(hour_rows, currency)
        return Analytics(
            customer_id=customer_id,
            days=days,
            start_date=dates[0],
            end_date=dates[-1],
            currency=currency,
            order_trends=[
                DayTrend(date=day, orders=by_day[day]["orders"], spent_cents=by_day[day]["spent"]) for day in dates
            ],
            spending_patterns=SpendingPatterns(
                by_weekday=[
                    WeekdayPattern(weekday=number, name=WEEKDAYS[number - 1], **_pattern(by_weekday[number]))
                    for number in range(1, 8)
                ],
                by_hour=[HourPattern(hour=hour, **_pattern(by_hour[hour])) for hour in range(24)],
            ),
            category_breakdown=_categories(category_rows, currency),
        )

    async def preferences(self, customer_id: str, now: datetime) -> Preferences:
        """Favourite products, preferred stores, the all-time spending pattern and loyalty insights."""
        q = self.queries
        summary_rows, store_rows, product_rows, overall_rows, hourly_rows, category_rows = await asyncio.gather(
            q.summary(customer_id),
            q.stores(customer_id, PREFERRED_STORES),
            q.products(customer_id, FAVORITE_PRODUCTS),
            q.patterns(customer_id, None, EPOCH),
            q.periods(customer_id, "weekday_hour", EPOCH),
            q.categories(customer_id, EPOCH),
        )
        summary = _summarise(summary_rows)
        overall = _fold(overall_rows, summary.currency)[0]
        weekdays, hours = (
            _orders_by(hourly_rows, lambda bucket: bucket // 100),
            _orders_by(hourly_rows, lambda b: b % 100),
        )
        categories = _categories(category_rows, summary.currency)
        stores = int(store_rows[0]["stores"]) if store_rows else 0
        repeat_stores = int(store_rows[0]["repeat_stores"] or 0) if store_rows else 0
        first = summary.first_at
        months_active = (now.year * 12 + now.month) - (first.year * 12 + first.month) + 1 if first else 0
        return Preferences(
            customer_id=customer_id,
            currency=summary.currency,
            favorite_products=[
                ProductRank(
                    rank=rank,
                    product_id=row["product_id"],
                    name=row["name"],
                    category=row["category"],
                    orders=int(row["orders"]),
                    quantity=int(row["quantity"]),
                    spent_cents=int(row["spent"] or 0),
                    currency=row["currency"],
                    last_ordered_at=rfc3339(as_datetime(row["last_ordered_at"])),
                )
                for rank, row in enumerate(product_rows, start=1)
            ],
            preferred_stores=_store_ranks(store_rows),
            spending_pattern=SpendingPattern(
                currency=summary.currency,
                paid_orders=overall["paid"],
                average_order_value_cents=half_up(overall["spent"], overall["paid"]),
                median_order_value_cents=(overall["median2"] + 1) // 2,
                busiest_weekday=WEEKDAYS[_busiest(weekdays) - 1] if weekdays else None,
                busiest_hour=_busiest(hours) if hours else None,
                top_category=categories[0].category if categories else None,
            ),
            insights=CustomerInsights(
                first_order_at=rfc3339(first),
                last_order_at=rfc3339(summary.last_at),
                total_orders=summary.total_orders,
                orders_per_month=_fraction(summary.total_orders, max(months_active, 1), "0.01"),
                stores_ordered_from=stores,
                repeat_store_rate=_fraction(repeat_stores, stores),
            ),
        )


def _pattern(bucket: dict[str, int]) -> dict[str, int]:
    return {
        "orders": bucket["orders"],
        "paid_orders": bucket["paid"],
        "spent_cents": bucket["spent"],
        "average_order_value_cents": half_up(bucket["spent"], bucket["paid"]),
        "median_order_value_cents": (bucket["median2"] + 1) // 2,
    }


def _orders_by(rows: Iterable[dict[str, Any]], key: Callable[[int], int]) -> dict[int, int]:
    """Orders (every currency) per ``key`` of the bucket."""
    counts: dict[int, int] = defaultdict(int)
    for row in rows:
        counts[key(int(row["bucket"]))] += int(row["orders"])
    return counts


def _busiest(counts: dict[int, int]) -> int:
    """The bucket with the most orders; ties: the lowest bucket."""
    return min(counts, key=lambda bucket: (-counts[bucket], bucket))


def _categories(rows: Iterable[dict[str, Any]], currency: str | None) -> list[CategoryShare]:
    """Categories by paid cents (reporting currency), then orders, then name; shares of the paid total."""
    folded: dict[str, dict[str, int]] = defaultdict(lambda: {"orders": 0, "items": 0, "spent": 0})
    for row in rows:
        category = folded[row["category"]]
        category["orders"] += int(row["orders"])
        category["items"] += int(row["items"] or 0)
        if row["currency"] == currency:
            category["spent"] += int(row["spent"] or 0)
    total = sum(category["spent"] for category in folded.values())
    ranked = sorted(folded, key=lambda name: (-folded[name]["spent"], -folded[name]["orders"], name))
    return [
        CategoryShare(
            category=name,
            orders=folded[name]["orders"],
            items=folded[name]["items"],
            spent_cents=folded[name]["spent"],
            share=_fraction(folded[name]["spent"], total),
        )
        for name in ranked
    ]
