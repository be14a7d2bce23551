"""The order's owner on its items and events, so one customer's child rows are one index range.

Customer insights used to start from the customer's orders and probe ``order_items`` and
``order_events`` once per order: 12,000 random probes into indexes larger than PostgreSQL's buffer
pool for the heaviest customers. An order's customer and creation time never change, so they are
copied onto the child rows (``order_items.customer_id``, ``order_items.ordered_at``,
``order_events.customer_id``) and indexed with the customer first:

- ``order_items_customer_insights (customer_id, ordered_at, order_id, category, product_id, quantity,
  unit_price_cents)`` covers the category and product aggregates, which hash-join it with the
  customer's range of ``orders_customer_insights`` on ``order_id``. It replaces
  ``order_items_order_insights`` (used only by those aggregates); ``order_items_order (order_id)``
  stays for the order views and the cascade.
- ``order_events_customer_created (customer_id, created_at DESC, id DESC)`` answers the latest
  events of a customer by reading the first entries of its range.

The write paths set the columns (the seeder, :mod:`app.services.orders`,
:mod:`app.services.order_writes`). A trigger fills them from ``orders`` whenever an INSERT leaves
them NULL, so a writer that does not know them (an older process during a rolling deploy, a
fixture, a manual INSERT) cannot break the copy: on PostgreSQL a ``BEFORE INSERT`` trigger whose
``WHEN`` clause skips the function when the columns are given, so the columns are ``NOT NULL``; on
SQLite an ``AFTER INSERT`` trigger (SQLite cannot assign ``NEW``), so they stay nullable there
(``ALTER TABLE ADD COLUMN ... NOT NULL`` also needs a default on SQLite).

The backfill rewrites every item and event row once; on the 1M-order benchmark database (1.9M items,
5.8M events) see docs/performance.md, "Insights", for how long it took. Run ``VACUUM ANALYZE`` on
PostgreSQL afterwards so the new indexes answer index-only.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "customer_id (and the order's created_at) on order_items and order_events, indexed for insights"

INDEXES = [
    "CREATE INDEX order_items_customer_insights ON order_items"
    " (customer_id, ordered_at, order_id, category, product_id, quantity, unit_price_cents)",
    "CREATE INDEX order_events_customer_created ON order_events (customer_id, created_at DESC, id DESC)",
    "DROP INDEX order_items_order_insights",
]

POSTGRES = [
    "ALTER TABLE order_items ADD COLUMN customer_id VARCHAR(64) NULL, ADD COLUMN ordered_at TIMESTAMPTZ NULL",
    "ALTER TABLE order_events ADD COLUMN customer_id VARCHAR(64) NULL",
    "UPDATE order_items i SET customer_id = o.customer_id, ordered_at = o.created_at FROM orders o"
    " WHERE o.id = i.order_id",
    "UPDATE order_events e SET customer_id = o.customer_id FROM orders o WHERE o.id = e.order_id",
    "ALTER TABLE order_items ALTER COLUMN customer_id SET NOT NULL, ALTER COLUMN ordered_at SET NOT NULL",
    "ALTER TABLE order_events ALTER COLUMN customer_id SET NOT NULL",
    """CREATE FUNCTION order_items_owner() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        SELECT o.customer_id, o.created_at INTO NEW.customer_id, NEW.ordered_at FROM orders o WHERE o.id = NEW.order_id;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER order_items_owner BEFORE INSERT ON order_items FOR EACH ROW
    WHEN (NEW.customer_id IS NULL OR NEW.ordered_at IS NULL) EXECUTE FUNCTION order_items_owner()""",
    """CREATE FUNCTION order_events_owner() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        SELECT o.customer_id INTO NEW.customer_id FROM orders o WHERE o.id = NEW.order_id;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER order_events_owner BEFORE INSERT ON order_events FOR EACH ROW
    WHEN (NEW.customer_id IS NULL) EXECUTE FUNCTION order_events_owner()""",
    *INDEXES,
]

SQLITE = [
    "ALTER TABLE order_items ADD COLUMN customer_id VARCHAR(64) NULL",
    "ALTER TABLE order_items ADD COLUMN ordered_at TIMESTAMPTZ NULL",
    "ALTER TABLE order_events ADD COLUMN customer_id VARCHAR(64) NULL",
    "UPDATE order_items SET (customer_id, ordered_at) ="
    " (SELECT o.customer_id, o.created_at FROM orders o WHERE o.id = order_items.order_id)",
    "UPDATE order_events SET customer_id = (SELECT o.customer_id FROM orders o WHERE o.id = order_events.order_id)",
    """CREATE TRIGGER order_items_owner AFTER INSERT ON order_items
    WHEN NEW.customer_id IS NULL OR NEW.ordered_at IS NULL
    BEGIN
        UPDATE order_items SET (customer_id, ordered_at) =
            (SELECT o.customer_id, o.created_at FROM orders o WHERE o.id = NEW.order_id)
        WHERE id = NEW.id;
    END""",
    """CREATE TRIGGER order_events_owner AFTER INSERT ON order_events
    WHEN NEW.customer_id IS NULL
    BEGIN
        UPDATE order_events SET customer_id = (SELECT o.customer_id FROM orders o WHERE o.id = NEW.order_id)
        WHERE id = NEW.id;
    END""",
    *INDEXES,
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def apply() -> None:
        engine = engine_finder()
        assert engine is not None  # piccolo_conf always defines DB
        for statement in SQLITE if engine.engine_type == "sqlite" else POSTGRES:
            await engine.run_ddl(statement)

    manager.add_raw(apply)
    return manager
