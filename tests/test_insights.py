"""Customer insights figures on both engines, from a hand-built set of orders with a pinned clock.

The set (customer ``cus_<run>``, "now" 2026-01-15 12:00 UTC), totals in cents:

| # | created (UTC)    | store   | status     | payment   | total | cur | items                          |
|---|------------------|---------|------------|-----------|-------|-----|--------------------------------|
| 1 | 2025-12-30 10:00 | alpha   | DELIVERED  | SUCCEEDED | 1000  | USD | book_a 2x300, toy_a 1x300      |
| 2 | 2026-01-02 10:30 | alpha   | DELIVERED  | SUCCEEDED | 2001  | USD | book_b 1x2001                  |
| 3 | 2026-01-03 23:10 | beta    | CONFIRMED  | SUCCEEDED | 500   | USD | toy_a 5x100                    |
| 4 | 2026-01-05 10:05 | beta    | CANCELLED  | FAILED    | 9999  | USD | book_a 1x9999                  |
| 5 | 2026-01-06 10:00 | alpha   | REFUNDED   | REFUNDED  | 7777  | USD | toy_b 1x7777                   |
| 6 | 2026-01-07 09:00 | gamma   | DELIVERED  | SUCCEEDED | 3000  | EUR | garden 1x3000                  |
| 7 | 2026-01-10 10:00 | beta    | PENDING    | PENDING   | 400   | USD | book_a 1x400                   |
| 8 | 2025-02-10 08:00 | alpha   | DELIVERED  | SUCCEEDED | 1500  | USD | book_b 1x1500                  |
| 9 | 2025-01-20 10:00 | beta    | DELIVERED  | SUCCEEDED | 797   | USD | toy_a 1x797                    |
|10 | 2025-06-15 14:00 | beta    | DELIVERED  | SUCCEEDED | 1     | USD | toy_b 1x1                      |

Paid USD orders: 1, 2, 3, 8, 9, 10 = 5799 cents over 6 orders: 966.5, so 967 half up (not 966).
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from litestar import Litestar

from app.runtime import Runtime
from app.services.insights import CustomerInsightsService
from models import Order, OrderEvent, OrderItem, Product, Store, User

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    """A UTC time from ``YYYY-MM-DD HH:MM``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Shop:
    """Inserts users, stores, products, orders, items and events directly, with ids unique to one test."""

    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def id(self, name: str) -> str:
        """This run's id for ``name``."""
        return f"{name}_{self.run}"

    async def user(self, name: str, role: str = "customer") -> str:
        user_id = self.id(name)
        await User.insert(User(id=user_id, role=role, created_at=NOW, updated_at=NOW))
        return user_id

    async def store(self, name: str, title: str | None = None) -> str:
        owner = await self.user(f"own_{name}", "vendor")
        store_id = self.id(f"sto_{name}")
        await Store.insert(Store(id=store_id, owner=owner, name=title or name.title(), created_at=NOW))
        return store_id

    async def product(self, name: str, store: str, category: str, currency: str = "USD") -> str:
        product_id = self.id(f"prd_{name}")
        await Product.insert(
            Product(id=product_id, store=store, name=name, category=category, price_cents=1, currency=currency)
        )
        return product_id

    async def order(
        self,
        customer: str,
        store: str,
        created: str,
        status: str,
        payment: str,
        total: int,
        items: list[tuple[str, str, int, int]],
        currency: str = "USD",
    ) -> str:
        """One order; ``items`` are (product id, category, quantity, unit price)."""
        order_id = self.id(f"ord{next(self.counter):03d}")
        created_at = at(created)
        address = {"name": "N", "line1": "1 Main St", "city": "C", "postalCode": "1", "country": "US"}
        await Order.insert(
            Order(
                id=order_id,
                customer=customer,
                store=store,
                status=status,
                payment_status=payment,
                subtotal_cents=total,
                shipping_cents=0,
                total_cents=total,
                currency=currency,
                shipping_address=address,
                created_at=created_at,
                updated_at=created_at,
            )
        )
        for number, (product, category, quantity, price) in enumerate(items):
            await OrderItem.insert(
                OrderItem(
                    id=f"{order_id}_{number}",
                    order=order_id,
                    product=product,
                    name=product,
                    category=category,
                    unit_price_cents=price,
                    quantity=quantity,
                )
            )
        return order_id

    async def event(self, order_id: str, created: str, kind: str = "NOTE", to_status: str | None = None) -> None:
        await OrderEvent.insert(OrderEvent(order=order_id, kind=kind, to_status=to_status, created_at=at(created)))


async def build_customer(shop: Shop) -> tuple[str, list[str]]:
    """The customer of the module docstring's table; answers their id and order ids."""
    customer = await shop.user("cus")
    alpha, beta, gamma = [await shop.store(name) for name in ("alpha", "beta", "gamma")]
    book_a = await shop.product("book_a", alpha, "Books")
    book_b = await shop.product("book_b", alpha, "Books")
    toy_a = await shop.product("toy_a", beta, "Toys")
    toy_b = await shop.product("toy_b", beta, "Toys")
    garden = await shop.product("garden", gamma, "Garden", "EUR")
    first_items = [(book_a, "Books", 2, 300), (toy_a, "Toys", 1, 300)]
    rows: list[tuple[Any, ...]] = [
        (alpha, "2025-12-30 10:00", "DELIVERED", "SUCCEEDED", 1000, first_items),
        (alpha, "2026-01-02 10:30", "DELIVERED", "SUCCEEDED", 2001, [(book_b, "Books", 1, 2001)]),
        (beta, "2026-01-03 23:10", "CONFIRMED", "SUCCEEDED", 500, [(toy_a, "Toys", 5, 100)]),
        (beta, "2026-01-05 10:05", "CANCELLED", "FAILED", 9999, [(book_a, "Books", 1, 9999)]),
        (alpha, "2026-01-06 10:00", "REFUNDED", "REFUNDED", 7777, [(toy_b, "Toys", 1, 7777)]),
        (gamma, "2026-01-07 09:00", "DELIVERED", "SUCCEEDED", 3000, [(garden, "Garden", 1, 3000)], "EUR"),
        (beta, "2026-01-10 10:00", "PENDING", "PENDING", 400, [(book_a, "Books", 1, 400)]),
        (alpha, "2025-02-10 08:00", "DELIVERED", "SUCCEEDED", 1500, [(book_b, "Books", 1, 1500)]),
        (beta, "2025-01-20 10:00", "DELIVERED", "SUCCEEDED", 797, [(toy_a, "Toys", 1, 797)]),
        (beta, "2025-06-15 14:00", "DELIVERED", "SUCCEEDED", 1, [(toy_b, "Toys", 1, 1)]),
    ]  # fmt: skip
    orders = [await shop.order(customer, *row) for row in rows]
    return customer, orders


def service(app: Litestar) -> CustomerInsightsService:
    """The insights service on the app's database, clock pinned to NOW."""
    runtime: Runtime = app.state["runtime"]
    return CustomerInsightsService(runtime.database, runtime.insights_cache, clock=lambda: NOW)


async def test_dashboard_figures(client: httpx.AsyncClient, app: Litestar) -> None:
    """Totals count every order, spending only paid ones; average rounds half up; months cross the year."""
    shop = Shop()
    customer, _ = await build_customer(shop)
    board = await service(app).dashboard(customer, NOW)
    assert (board.total_orders, board.paid_orders, board.total_spent_cents) == (10, 6, 5799)
    assert board.average_order_value_cents == 967 and board.currency == "USD"
    assert board.status_breakdown == {
        "PENDING": 1, "CONFIRMED": 1, "PROCESSING": 0, "SHIPPED": 0, "OUT_FOR_DELIVERY": 0,
        "DELIVERED": 6, "CANCELLED": 1, "REFUNDED": 1,
    }  # fmt: skip
    months = {trend.month: (trend.orders, trend.spent_cents) for trend in board.monthly_trends}
    assert min(months) == "2025-02" and max(months) == "2026-01" and len(months) == 12
    assert months["2025-02"] == (1, 1500) and months["2025-06"] == (1, 1)
    assert months["2025-12"] == (1, 1000) and months["2026-01"] == (6, 2501)
    assert sum(orders for orders, _ in months.values()) == 9  # the 2025-01 order is older than 12 months
    assert [(s.store_id, s.orders, s.spent_cents, s.currency) for s in board.favorite_stores] == [
        (shop.id("sto_beta"), 5, 1298, "USD"),
        (shop.id("sto_alpha"), 4, 4501, "USD"),
        (shop.id("sto_gamma"), 1, 3000, "EUR"),
    ]
    assert (
        board.favorite_stores[0].name == "Beta" and board.favorite_stores[0].last_order_at == "2026-01-10T10:00:00.000Z"
    )
    assert [(c.currency, c.orders, c.paid_orders, c.spent_cents) for c in board.by_currency] == [
        ("USD", 9, 6, 5799),
        ("EUR", 1, 1, 3000),
    ]


async def test_favorite_stores_ties_and_recent_activity(client: httpx.AsyncClient, app: Litestar) -> None:
    """Store ties go to more paid cents, then the smaller id; recent activity is the 10 newest events, ties by id."""
    shop = Shop()
    customer = await shop.user("cus")
    stores = {name: await shop.store(name) for name in ("b", "a", "c", "d", "e", "f")}
    product = await shop.product("thing", stores["a"], "Misc")
    line = [(product, "Misc", 1, 100)]
    for name, total in (("b", 100), ("a", 100), ("c", 200), ("d", 100), ("e", 100), ("f", 50)):
        await shop.order(customer, stores[name], "2026-01-01 10:00", "DELIVERED", "SUCCEEDED", total, line)
    first = await shop.order(customer, stores["f"], "2026-01-02 10:00", "CANCELLED", "FAILED", 100, line)
    board = await service(app).dashboard(customer, NOW)
    assert [store.store_id for store in board.favorite_stores] == [
        stores["f"], stores["c"], stores["a"], stores["b"], stores["d"]
    ]  # fmt: skip
    for minute in range(12):
        await shop.event(first, f"2026-01-03 10:{minute:02d}", to_status="CANCELLED" if minute == 11 else None)
    await shop.event(first, "2026-01-03 10:11")  # same time as the newest: the later id wins
    board = await service(app).dashboard(customer, NOW)
    activity = board.recent_activity
    assert len(activity) == 10 and all(item.order_id == first for item in activity)
    assert [item.at for item in activity[:3]] == ["2026-01-03T10:11:00.000Z"] * 2 + ["2026-01-03T10:10:00.000Z"]
    assert activity[0].to_status is None and activity[1].to_status == "CANCELLED"
    assert int(activity[0].id) > int(activity[1].id)
    assert activity[-1].at == "2026-01-03T10:03:00.000Z"


async def test_analytics_figures(client: httpx.AsyncClient, app: Litestar) -> None:
    """Every day of the window, weekday and hour buckets with averages and even/odd medians, category shares."""
    customer, _ = await build_customer(Shop())
    month = await service(app).analytics(customer, 30, NOW)
    assert (month.start_date, month.end_date, len(month.order_trends)) == ("2025-12-17", "2026-01-15", 30)
    days = {trend.date: (trend.orders, trend.spent_cents) for trend in month.order_trends if trend.orders}
    assert days == {
        "2025-12-30": (1, 1000), "2026-01-02": (1, 2001), "2026-01-03": (1, 500), "2026-01-05": (1, 0),
        "2026-01-06": (1, 0), "2026-01-07": (1, 0), "2026-01-10": (1, 0),
    }  # fmt: skip
    hours = {h.hour: h for h in month.spending_patterns.by_hour}
    assert len(hours) == 24 and (hours[10].orders, hours[10].paid_orders) == (5, 2)
    assert (hours[10].average_order_value_cents, hours[10].median_order_value_cents) == (1501, 1501)  # 1500.5
    assert (hours[23].orders, hours[23].median_order_value_cents, hours[9].paid_orders) == (1, 500, 0)
    weekdays = {w.name: (w.weekday, w.orders, w.paid_orders, w.spent_cents) for w in month.spending_patterns.by_weekday}
    assert weekdays["Tuesday"] == (2, 2, 1, 1000) and weekdays["Saturday"] == (6, 2, 1, 500)
    assert weekdays["Friday"] == (5, 1, 1, 2001) and weekdays["Sunday"] == (7, 0, 0, 0)
    categories = [(c.category, c.orders, c.items, c.spent_cents, c.share) for c in month.category_breakdown]
    assert categories == [("Books", 4, 5, 2601, 0.7648), ("Toys", 3, 7, 800, 0.2352), ("Garden", 1, 1, 0, 0.0)]
    assert abs(sum(c.share for c in month.category_breakdown) - 1) < 1e-3
    year = await service(app).analytics(customer, 365, NOW)
    hours = {h.hour: h for h in year.spending_patterns.by_hour}
    assert (hours[10].paid_orders, hours[10].median_order_value_cents, hours[10].average_order_value_cents) == (
        3, 1000, 1266
    )  # fmt: skip
    mondays = year.spending_patterns.by_weekday[0]
    assert (mondays.name, mondays.orders, mondays.paid_orders, mondays.median_order_value_cents) == (
        "Monday", 3, 2, 1149
    )  # (797 + 1500) / 2 = 1148.5  # fmt: skip
    assert sum(trend.orders for trend in year.order_trends) == 10 and len(year.order_trends) == 365


async def test_preferences_figures(client: httpx.AsyncClient, app: Litestar) -> None:
    """Products ranked by orders, quantity, cents; stores with last order; all-time median; loyalty figures."""
    shop = Shop()
    customer, _ = await build_customer(shop)
    preferences = await service(app).preferences(customer, NOW)
    products = [(p.product_id, p.orders, p.quantity, p.spent_cents) for p in preferences.favorite_products]
    assert products == [
        (shop.id("prd_toy_a"), 3, 7, 1597),
        (shop.id("prd_book_a"), 3, 4, 600),
        (shop.id("prd_book_b"), 2, 2, 3501),
        (shop.id("prd_toy_b"), 2, 2, 1),
        (shop.id("prd_garden"), 1, 1, 3000),
    ]
    assert preferences.favorite_products[0].last_ordered_at == "2026-01-03T23:10:00.000Z"
    assert [s.rank for s in preferences.preferred_stores] == [1, 2, 3]
    assert preferences.preferred_stores[1].last_order_at == "2026-01-06T10:00:00.000Z"
    pattern = preferences.spending_pattern
    assert (pattern.paid_orders, pattern.average_order_value_cents, pattern.median_order_value_cents) == (6, 967, 899)
    assert (pattern.busiest_weekday, pattern.busiest_hour, pattern.top_category) == ("Monday", 10, "Books")
    insights = preferences.insights
    assert (insights.first_order_at, insights.last_order_at) == ("2025-01-20T10:00:00.000Z", "2026-01-10T10:00:00.000Z")
    assert (insights.total_orders, insights.orders_per_month) == (10, 0.77)  # 10 orders over 13 months
    assert (insights.stores_ordered_from, insights.repeat_store_rate) == (3, 0.6667)


async def test_no_orders_is_all_zeros(client: httpx.AsyncClient, app: Litestar) -> None:
    """A customer without orders gets zeros, full calendars and no currency rather than an error."""
    customer = await Shop().user("cus")
    board = await service(app).dashboard(customer, NOW)
    assert (board.total_orders, board.total_spent_cents, board.average_order_value_cents, board.currency) == (
        0, 0, 0, None
    )  # fmt: skip
    assert len(board.monthly_trends) == 12 and board.favorite_stores == [] and board.recent_activity == []
    analytics = await service(app).analytics(customer, 7, NOW)
    assert len(analytics.order_trends) == 7 and analytics.category_breakdown == []
    preferences = await service(app).preferences(customer, NOW)
    assert preferences.insights.first_order_at is None and preferences.spending_pattern.busiest_hour is None
