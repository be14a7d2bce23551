"""Initial schema, written per engine: Piccolo cannot express composite DESC indexes, partial
indexes or CHECK constraints, and SQLite accepts CHECK only inside CREATE TABLE.

Enum lists are frozen here on purpose: a migration is a snapshot, later ones alter it.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "initial schema: users, catalog, orders, tracking, payments, payouts, notifications"

ROLES = "'customer','vendor','admin','service'"
ORDER_STATUSES = "'PENDING','CONFIRMED','PROCESSING','SHIPPED','OUT_FOR_DELIVERY','DELIVERED','CANCELLED','REFUNDED'"
PAYMENT_STATUSES = "'PENDING','PROCESSING','SUCCEEDED','FAILED','REFUNDED'"
PAYOUT_STATUSES = "'PROCESSED','FAILED'"
EVENT_KINDS = "'CREATED','STATUS_CHANGED','LOCATION','ETA','PAYMENT','NOTE'"
NOTIFICATION_TYPES = (
    "'ORDER_CREATED','ORDER_STATUS_UPDATED','ORDER_CANCELLED','ORDER_DELIVERED','PAYMENT_SUCCEEDED',"
    "'PAYMENT_FAILED','PAYMENT_REFUNDED','PAYMENT_PROCESSING','PAYOUT_PROCESSED','PAYOUT_FAILED','ACCOUNT_UPDATED'"
)
PRIORITIES = "'LOW','MEDIUM','HIGH','URGENT'"
WEBHOOK_OUTCOMES = "'APPLIED','IGNORED'"


def tables(ts: str, json: str, boolean: str, false: str, bigserial: str, double: str) -> list[str]:
    """CREATE TABLE statements with the engine's spelling of a few types."""
    return [
        f"""CREATE TABLE users (
            id VARCHAR(64) PRIMARY KEY,
            role VARCHAR(16) NOT NULL CHECK (role IN ({ROLES})),
            name TEXT NULL,
            email TEXT NULL,
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL)""",
        f"""CREATE TABLE stores (
            id VARCHAR(40) PRIMARY KEY,
            owner_id VARCHAR(64) NOT NULL REFERENCES users (id),
            name TEXT NOT NULL,
            created_at {ts} NOT NULL)""",
        f"""CREATE TABLE products (
            id VARCHAR(40) PRIMARY KEY,
            store_id VARCHAR(40) NOT NULL REFERENCES stores (id),
            name TEXT NOT NULL,
            category VARCHAR(64) NOT NULL,
            price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
            currency VARCHAR(3) NOT NULL,
            created_at {ts} NOT NULL)""",
        f"""CREATE TABLE orders (
            id VARCHAR(40) PRIMARY KEY,
            customer_id VARCHAR(64) NOT NULL REFERENCES users (id),
            store_id VARCHAR(40) NOT NULL REFERENCES stores (id),
            status VARCHAR(24) NOT NULL CHECK (status IN ({ORDER_STATUSES})),
            payment_status VARCHAR(16) NOT NULL CHECK (payment_status IN ({PAYMENT_STATUSES})),
            subtotal_cents INTEGER NOT NULL CHECK (subtotal_cents >= 0),
            shipping_cents INTEGER NOT NULL CHECK (shipping_cents >= 0),
            total_cents INTEGER NOT NULL CHECK (total_cents >= 0),
            currency VARCHAR(3) NOT NULL,
            shipping_address {json} NOT NULL,
            current_lat {double} NULL,
            current_lng {double} NULL,
            current_location_at {ts} NULL,
            estimated_delivery_at {ts} NULL,
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL)""",
        f"""CREATE TABLE order_items (
            id VARCHAR(40) PRIMARY KEY,
            order_id VARCHAR(40) NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
            product_id VARCHAR(40) NOT NULL REFERENCES products (id),
            name TEXT NOT NULL,
            category VARCHAR(64) NOT NULL,
            unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
            quantity INTEGER NOT NULL CHECK (quantity > 0))""",
        f"""CREATE TABLE order_events (
            id {bigserial},
            order_id VARCHAR(40) NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
            kind VARCHAR(16) NOT NULL CHECK (kind IN ({EVENT_KINDS})),
            from_status VARCHAR(24) NULL CHECK (from_status IN ({ORDER_STATUSES})),
            to_status VARCHAR(24) NULL CHECK (to_status IN ({ORDER_STATUSES})),
            lat {double} NULL,
            lng {double} NULL,
            estimated_delivery_at {ts} NULL,
            note TEXT NULL,
            actor_id VARCHAR(64) NULL,
            created_at {ts} NOT NULL)""",
        f"""CREATE TABLE payments (
            id VARCHAR(40) PRIMARY KEY,
            order_id VARCHAR(40) NOT NULL UNIQUE REFERENCES orders (id) ON DELETE CASCADE,
            status VARCHAR(16) NOT NULL CHECK (status IN ({PAYMENT_STATUSES})),
            amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
            currency VARCHAR(3) NOT NULL,
            reason TEXT NULL,
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL)""",
        f"""CREATE TABLE payouts (
            id VARCHAR(64) PRIMARY KEY,
            vendor_id VARCHAR(64) NOT NULL REFERENCES users (id),
            status VARCHAR(16) NOT NULL CHECK (status IN ({PAYOUT_STATUSES})),
            amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
            currency VARCHAR(3) NOT NULL,
            reason TEXT NULL,
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL)""",
        f"""CREATE TABLE webhook_events (
            id VARCHAR(128) PRIMARY KEY,
            source VARCHAR(16) NOT NULL CHECK (source IN ('payments','payouts')),
            type VARCHAR(64) NOT NULL,
            outcome VARCHAR(16) NOT NULL CHECK (outcome IN ({WEBHOOK_OUTCOMES})),
            received_at {ts} NOT NULL)""",
        f"""CREATE TABLE notifications (
            id VARCHAR(40) PRIMARY KEY,
            user_id VARCHAR(64) NOT NULL REFERENCES users (id),
            type VARCHAR(32) NOT NULL CHECK (type IN ({NOTIFICATION_TYPES})),
            title TEXT NOT NULL,
            message TEXT NOT NULL,
            channels {json} NOT NULL,
            priority VARCHAR(8) NOT NULL CHECK (priority IN ({PRIORITIES})),
            metadata {json} NOT NULL,
            is_read {boolean} NOT NULL DEFAULT {false},
            scheduled_for {ts} NULL,
            sent_at {ts} NULL,
            claimed_by VARCHAR(64) NULL,
            claimed_until {ts} NULL,
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL)""",
    ]


INDEXES = [
    "CREATE INDEX stores_owner ON stores (owner_id)",
    "CREATE INDEX products_store ON products (store_id)",
    # Keyset pagination, newest first, for each way orders are listed.
    "CREATE INDEX orders_customer_created ON orders (customer_id, created_at DESC, id DESC)",
    "CREATE INDEX orders_store_created ON orders (store_id, created_at DESC, id DESC)",
    "CREATE INDEX orders_created ON orders (created_at DESC, id DESC)",
    "CREATE INDEX order_items_order ON order_items (order_id)",
    "CREATE INDEX order_events_order ON order_events (order_id, created_at, id)",
    "CREATE INDEX payouts_vendor ON payouts (vendor_id)",
    "CREATE INDEX notifications_user_created ON notifications (user_id, created_at DESC, id DESC)",
    "CREATE INDEX notifications_user_read ON notifications (user_id, is_read)",
    "CREATE INDEX notifications_type ON notifications (type)",
    "CREATE INDEX notifications_priority ON notifications (priority)",
    # The scheduler looks only at what is not yet delivered: a small partial index.
    "CREATE INDEX notifications_due ON notifications (scheduled_for) WHERE sent_at IS NULL",
]

SQLITE = [
    *tables(
        ts="TIMESTAMPTZ",
        json="JSON",
        boolean="BOOLEAN",
        false="0",
        bigserial="INTEGER PRIMARY KEY AUTOINCREMENT",
        double="DOUBLE PRECISION",
    ),
    *INDEXES,
]

POSTGRES = [
    *tables(
        ts="TIMESTAMPTZ",
        json="JSON",
        boolean="BOOLEAN",
        false="FALSE",
        bigserial="BIGSERIAL PRIMARY KEY",
        double="DOUBLE PRECISION",
    ),
    *INDEXES,
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def create_schema() -> None:
        engine = engine_finder()
        assert engine is not None  # piccolo_conf always defines DB
        for statement in SQLITE if engine.engine_type == "sqlite" else POSTGRES:
            await engine.run_ddl(statement)

    manager.add_raw(create_schema)
    return manager
