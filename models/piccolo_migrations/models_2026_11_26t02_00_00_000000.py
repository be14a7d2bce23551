"""Covering indexes for customer insights: every aggregate of one customer's orders reads an index only.

``orders_customer_insights`` holds every order column the insights read, led by the customer and
the creation time (for windows); ``order_items_order_insights`` holds the item columns the category
and product aggregates read. The same key lists work on both engines (SQLite has no INCLUDE; a key
suffix covers just as well). See docs/performance.md, "Insights".
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "covering indexes for customer insights"

STATEMENTS = [
    "CREATE INDEX orders_customer_insights ON orders"
    " (customer_id, created_at, status, payment_status, currency, total_cents, store_id, id)",
    "CREATE INDEX order_items_order_insights ON order_items"
    " (order_id, category, product_id, quantity, unit_price_cents)",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def apply() -> None:
        engine = engine_finder()
        assert engine is not None  # piccolo_conf always defines DB
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(apply)
    return manager
