"""The demo-data seeder: counts, determinism, consistency and re-runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from itertools import groupby, pairwise
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import app.ops.seeding
from app.ops.seed_data import zipf_cum_weights
from app.ops.seeding import SeedPlan, run_seed
from app.platform.database import sqlite_path
from models.enums import NotificationPriority, NotificationType, OrderEventKind, OrderStatus, PaymentStatus
from tests.services import POSTGRES_ADMIN_URL, postgres_url, reachable, unavailable, unique_name

PLAN = SeedPlan.sized(orders=300, notifications=60, seed=7, until=datetime(2026, 1, 15, 12, tzinfo=UTC))


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_database(engine: str, directory: Path) -> AsyncIterator[str]:
    """An empty database of ``engine``: a new SQLite file, or a PostgreSQL database dropped afterwards."""
    name = unique_name("seed_test")
    if engine == "sqlite":
        yield f"sqlite:///{directory / name}.sqlite3"
        return
    if not reachable("127.0.0.1", 5432):
        unavailable("PostgreSQL is not reachable at 127.0.0.1:5432")
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def query(url: str, sql: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` as dicts, read with the plain driver, not the code under test."""
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url)) as connection:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(sql)]
    connection = await asyncpg.connect(url)
    try:
        return [dict(row) for row in await connection.fetch(sql)]
    finally:
        await connection.close()


async def scalar(url: str, sql: str) -> Any:
    """The first column of the first row of ``sql``."""
    return next(iter((await query(url, sql))[0].values()))


async def fingerprint(url: str) -> str:
    """A digest of every order, item and tracking event, independent of event ids."""
    digest = hashlib.sha256()
    for sql in (
        "SELECT id, customer_id, store_id, status, payment_status, total_cents FROM orders ORDER BY id",
        "SELECT id, order_id, product_id, unit_price_cents, quantity FROM order_items ORDER BY id",
        "SELECT order_id, kind, to_status, created_at FROM order_events ORDER BY order_id, created_at, kind",
        "SELECT id, user_id, type, priority, created_at FROM notifications ORDER BY id",
    ):
        for row in await query(url, sql):
            digest.update(repr(tuple(row.values())).encode())
    return digest.hexdigest()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A fresh database of each engine, seeded once with PLAN."""
    async with fresh_database(request.param, tmp_path_factory.mktemp("seed")) as url:
        summary = await run_seed(url, PLAN, show_progress=False)
        assert "300 orders" in summary
        yield url


async def test_counts_follow_the_plan(seeded: str) -> None:
    """The plan's orders, customers, stores and notifications are written, plus the demo set."""
    assert await scalar(seeded, "SELECT count(*) FROM orders") == PLAN.orders
    assert await scalar(seeded, "SELECT count(*) FROM notifications") == PLAN.notifications
    assert await scalar(seeded, "SELECT count(*) FROM stores") == PLAN.stores + 1
    assert await scalar(seeded, "SELECT count(*) FROM users WHERE role = 'customer'") == PLAN.customers + 1
    assert await scalar(seeded, "SELECT count(*) FROM users WHERE role = 'vendor'") == PLAN.stores + 1
    per_store = await query(seeded, "SELECT count(*) AS n FROM products GROUP BY store_id")
    assert all(3 <= row["n"] <= 20 for row in per_store)
    per_order = await query(seeded, "SELECT count(*) AS n FROM order_items GROUP BY order_id")
    assert len(per_order) == PLAN.orders
    assert all(1 <= row["n"] <= 5 for row in per_order)


async def test_demo_users_exist(seeded: str) -> None:
    """customer_demo, vendor_demo (owning store_demo, which has products) and admin_demo exist."""
    roles = await query(seeded, "SELECT id, role FROM users WHERE id LIKE '%_demo' ORDER BY id")
    assert roles == [
        {"id": "admin_demo", "role": "admin"},
        {"id": "customer_demo", "role": "customer"},
        {"id": "vendor_demo", "role": "vendor"},
    ]
    assert await scalar(seeded, "SELECT owner_id FROM stores WHERE id = 'store_demo'") == "vendor_demo"
    assert await scalar(seeded, "SELECT count(*) FROM products WHERE store_id = 'store_demo'") >= 3


async def test_totals_add_up(seeded: str) -> None:
    """total = subtotal + shipping = the items' sum + shipping, prices within 199..19999 cents."""
    wrong = """SELECT count(*) FROM orders o
        WHERE o.total_cents <> o.subtotal_cents + o.shipping_cents
           OR o.subtotal_cents <> (
               SELECT sum(unit_price_cents * quantity) FROM order_items i WHERE i.order_id = o.id)"""
    assert await scalar(seeded, wrong) == 0
    prices = await query(seeded, "SELECT min(price_cents) AS low, max(price_cents) AS high FROM products")
    assert prices[0]["low"] >= 199 and prices[0]["high"] <= 19999


async def test_statuses_are_valid_and_payments_consistent(seeded: str) -> None:
    """Every status is an enum value; the payment status, and the payment row, agree with the order's."""
    statuses = await query(seeded, "SELECT DISTINCT status, payment_status FROM orders")
    allowed = {
        OrderStatus.PENDING: {"PENDING", "PROCESSING", "FAILED"},
        OrderStatus.CANCELLED: {"FAILED", "PENDING"},
        OrderStatus.REFUNDED: {"REFUNDED"},
    }
    for row in statuses:
        assert row["payment_status"] in allowed.get(OrderStatus(row["status"]), {PaymentStatus.SUCCEEDED}), row
    assert {row["status"] for row in statuses} >= {"DELIVERED", "CANCELLED"}
    mismatched = """SELECT count(*) FROM orders o LEFT JOIN payments p ON p.order_id = o.id
        WHERE CASE WHEN p.id IS NULL THEN o.payment_status <> 'PENDING'
                   ELSE p.status <> o.payment_status OR p.amount_cents <> o.total_cents END"""
    assert await scalar(seeded, mismatched) == 0
    address = json.loads(await scalar(seeded, "SELECT shipping_address FROM orders LIMIT 1"))
    assert set(address) == {"name", "line1", "city", "postalCode", "country"}


async def test_timelines_lead_to_the_current_status(seeded: str) -> None:
    """Each order's events start with CREATED and walk, in time order, to the order's status."""
    status = {row["id"]: row["status"] for row in await query(seeded, "SELECT id, status FROM orders")}
    events = await query(seeded, "SELECT * FROM order_events ORDER BY order_id, created_at, id")
    for order_id, rows in groupby(events, key=lambda row: row["order_id"]):
        timeline = [row for row in rows if row["kind"] != OrderEventKind.LOCATION]
        assert (timeline[0]["kind"], timeline[0]["to_status"]) == ("CREATED", "PENDING")
        for before, after in pairwise(timeline):
            assert after["kind"] == "STATUS_CHANGED" and after["from_status"] == before["to_status"]
            assert after["created_at"] >= before["created_at"]
        assert timeline[-1]["to_status"] == status.pop(order_id)
    assert not status, "orders without events"


async def test_notifications_are_valid_and_visible(seeded: str) -> None:
    """Notification types and priorities are enum values, all are sent, channels and metadata are JSON."""
    for row in await query(seeded, "SELECT * FROM notifications"):
        NotificationType(row["type"])
        NotificationPriority(row["priority"])
        assert row["sent_at"] is not None and row["scheduled_for"] is None
        assert json.loads(row["channels"])[0] == "IN_APP"
        assert isinstance(json.loads(row["metadata"]), dict)


async def test_a_few_customers_are_heavy(seeded: str) -> None:
    """The heaviest customer has several times the mean number of orders (a Zipf-like spread)."""
    per_customer = await query(seeded, "SELECT count(*) AS n FROM orders GROUP BY customer_id ORDER BY n DESC")
    mean = PLAN.orders / len(per_customer)
    assert per_customer[0]["n"] >= 3 * mean


def test_heaviest_customer_gets_about_one_percent_at_scale() -> None:
    """With the default sizing of 1,000,000 orders, the top customer's weight is over 1% (10,000 orders)."""
    plan = SeedPlan.sized(orders=1_000_000)
    weights = zipf_cum_weights(plan.customers + 1, 0.012)
    assert 0.011 < weights[0] / weights[-1] < 0.013


async def test_same_seed_writes_the_same_rows(seeded: str, tmp_path: Path) -> None:
    """Seeding the same plan into another fresh database gives identical orders, items, events, notifications."""
    engine = "sqlite" if seeded.startswith("sqlite") else "postgres"
    async with fresh_database(engine, tmp_path) as other:
        await run_seed(other, PLAN, show_progress=False)
        assert await fingerprint(other) == await fingerprint(seeded)
        changed = SeedPlan.sized(orders=300, notifications=60, seed=8, until=PLAN.until)
        async with fresh_database(engine, tmp_path) as third:
            await run_seed(third, changed, show_progress=False)
            assert await fingerprint(third) != await fingerprint(seeded)


async def test_rerun_writes_nothing(seeded: str) -> None:
    """Seeding the same plan again answers "already seeded" and changes nothing."""
    before = await fingerprint(seeded)
    summary = await run_seed(seeded, PLAN, show_progress=False)
    assert summary.startswith("already seeded")
    assert await fingerprint(seeded) == before


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
async def test_interrupted_seed_resumes(engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After losing its last chunk, a re-run writes just that chunk back; another seed then adds beside it."""
    monkeypatch.setattr(app.ops.seeding, "ORDER_CHUNK", 100)
    async with fresh_database(engine, tmp_path) as url:
        await run_seed(url, PLAN, show_progress=False)
        complete = await fingerprint(url)
        last_kept = f"ord_{PLAN.tag}_000000199"
        for table in ("order_items", "order_events", "payments"):
            await query(url, f"DELETE FROM {table} WHERE order_id > '{last_kept}'")
        await query(url, f"DELETE FROM orders WHERE id > '{last_kept}'")
        assert await scalar(url, "SELECT count(*) FROM orders") == 200
        summary = await run_seed(url, PLAN, show_progress=False)
        assert "wrote 0 users" in summary and " 100 orders" in summary, summary
        assert await fingerprint(url) == complete
        other = SeedPlan.sized(orders=50, seed=8, until=PLAN.until)
        await run_seed(url, other, show_progress=False)
        assert await scalar(url, "SELECT count(*) FROM orders") == PLAN.orders + 50
        assert await scalar(url, "SELECT count(*) FROM users WHERE id = 'customer_demo'") == 1
