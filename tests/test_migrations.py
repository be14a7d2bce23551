"""Migrations apply from empty on both engines, and the schema's constraints hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from app.ops.migrations import apply_migrations
from app.platform.database import Database
from models import ALL_TABLES, Order, Store, User


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """The migrated database of the parametrized engine, started."""
    database = Database.from_url(database_url, ALL_TABLES)
    await database.start()
    yield database
    await database.stop()


async def test_migrations_are_idempotent(database_url: str) -> None:
    """A second migrate on an up-to-date database applies nothing and fails nothing."""
    assert await apply_migrations(database_url) == 0


async def test_every_table_exists(database: Database) -> None:
    """Every Piccolo table has its table in the migrated database."""
    for table in ALL_TABLES:
        assert await table.table_exists(), table._meta.tablename


async def _order_row(status: str, suffix: str) -> dict[str, object]:
    now = datetime.now(UTC)
    await User.raw(
        "INSERT INTO users (id, role, created_at, updated_at) VALUES ({}, 'vendor', {}, {}) ON CONFLICT DO NOTHING",
        f"v_{suffix}",
        now,
        now,
    )
    await Store.raw(
        "INSERT INTO stores (id, owner_id, name, created_at) VALUES ({}, {}, 'S', {}) ON CONFLICT DO NOTHING",
        f"st_{suffix}",
        f"v_{suffix}",
        now,
    )
    return {
        "id": f"ord_{suffix}_{status}",
        "customer": f"v_{suffix}",
        "store": f"st_{suffix}",
        "status": status,
        "payment_status": "PENDING",
        "subtotal_cents": 100,
        "shipping_cents": 0,
        "total_cents": 100,
        "currency": "USD",
        "shipping_address": "{}",
    }


async def test_status_outside_its_enum_is_refused(database: Database) -> None:
    """The database itself refuses an order status that is not one of OrderStatus."""
    suffix = database.engine.engine_type
    async with database.write():
        await Order.insert(Order(**await _order_row("PENDING", suffix)))
    bad = await _order_row("TELEPORTED", suffix)
    with pytest.raises(Exception, match=r"(?i)check"):
        async with database.write():
            await Order.insert(Order(**bad))
    assert await Order.count().where(Order.id == bad["id"]) == 0


async def test_unknown_role_is_refused(database: Database) -> None:
    """A user row with a role outside Role is refused by a CHECK constraint."""
    now = datetime.now(UTC)
    with pytest.raises(Exception, match=r"(?i)check"):
        async with database.write():
            await User.raw(
                "INSERT INTO users (id, role, created_at, updated_at) VALUES ('u_bad', 'wizard', {}, {})", now, now
            )
