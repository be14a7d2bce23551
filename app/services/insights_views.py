"""The JSON of customer insights (SPEC "Customer experience"): camelCase msgspec Structs.

Money is integer minor units of ``currency``, the customer's reporting currency (see
:mod:`app.services.insights`); a store or product line carries its own ``currency``. Times are
RFC 3339 UTC, days ``YYYY-MM-DD``, months ``YYYY-MM``, shares and rates fractions from 0 to 1.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "Analytics",
    "CategoryShare",
    "CurrencyTotal",
    "CustomerInsights",
    "Dashboard",
    "DayTrend",
    "HourPattern",
    "MonthTrend",
    "OrderActivity",
    "Preferences",
    "ProductRank",
    "SpendingPattern",
    "SpendingPatterns",
    "StoreRank",
    "WeekdayPattern",
]


class _View(msgspec.Struct, frozen=True, rename="camel"):
    pass


class MonthTrend(_View, frozen=True):
    """One calendar month (UTC): every order placed in it, and what was paid."""

    month: str
    orders: int
    spent_cents: int


class StoreRank(_View, frozen=True):
    """A store the customer ordered from, ranked by orders, then paid cents, then id."""

    rank: int
    store_id: str
    name: str
    orders: int
    spent_cents: int
    currency: str
    last_order_at: str | None


class OrderActivity(_View, frozen=True, omit_defaults=True):
    """One entry of an order's timeline; ``fromStatus``/``toStatus`` only on status entries."""

    id: str
    order_id: str
    kind: str
    at: str | None
    from_status: str | None = None
    to_status: str | None = None


class CurrencyTotal(_View, frozen=True):
    """Orders and paid cents in one currency (a customer may buy from stores in several)."""

    currency: str
    orders: int
    paid_orders: int
    spent_cents: int


class Dashboard(_View, frozen=True):
    """``GET /customer/dashboard``."""

    customer_id: str
    currency: str | None
    total_orders: int
    paid_orders: int
    total_spent_cents: int
    average_order_value_cents: int
    status_breakdown: dict[str, int]
    monthly_trends: list[MonthTrend]
    favorite_stores: list[StoreRank]
    recent_activity: list[OrderActivity]
    by_currency: list[CurrencyTotal]


class DayTrend(_View, frozen=True):
    """One UTC day of the analytics window."""

    date: str
    orders: int
    spent_cents: int


class WeekdayPattern(_View, frozen=True):
    """Orders of one UTC weekday (1 Monday .. 7 Sunday); average and median of its paid orders."""

    weekday: int
    name: str
    orders: int
    paid_orders: int
    spent_cents: int
    average_order_value_cents: int
    median_order_value_cents: int


class HourPattern(_View, frozen=True):
    """Orders of one UTC hour of day (0..23); average and median of its paid orders."""

    hour: int
    orders: int
    paid_orders: int
    spent_cents: int
    average_order_value_cents: int
    median_order_value_cents: int


class SpendingPatterns(_View, frozen=True):
    """Every weekday (7 entries) and every hour (24 entries), zeros where nothing was ordered."""

    by_weekday: list[WeekdayPattern]
    by_hour: list[HourPattern]


class CategoryShare(_View, frozen=True):
    """A product category: orders containing it, items, paid line cents and their share of all paid line cents."""

    category: str
    orders: int
    items: int
    spent_cents: int
    share: float


class Analytics(_View, frozen=True):
    """``GET /customer/analytics?days=N``: the N UTC days ending today."""

    customer_id: str
    days: int
    start_date: str
    end_date: str
    currency: str | None
    order_trends: list[DayTrend]
    spending_patterns: SpendingPatterns
    category_breakdown: list[CategoryShare]


class ProductRank(_View, frozen=True):
    """A product the customer ordered, ranked by orders containing it, then quantity, paid cents, id."""

    rank: int
    product_id: str
    name: str
    category: str
    orders: int
    quantity: int
    spent_cents: int
    currency: str
    last_ordered_at: str | None


class SpendingPattern(_View, frozen=True):
    """All-time shape of the customer's spending, in the reporting currency."""

    currency: str | None
    paid_orders: int
    average_order_value_cents: int
    median_order_value_cents: int
    busiest_weekday: str | None
    busiest_hour: int | None
    top_category: str | None


class CustomerInsights(_View, frozen=True):
    """First and last order, cadence, and loyalty to stores."""

    first_order_at: str | None
    last_order_at: str | None
    total_orders: int
    orders_per_month: float
    stores_ordered_from: int
    repeat_store_rate: float


class Preferences(_View, frozen=True):
    """``GET /customer/preferences``."""

    customer_id: str
    currency: str | None
    favorite_products: list[ProductRank]
    preferred_stores: list[StoreRank]
    spending_pattern: SpendingPattern
    insights: CustomerInsights
