"""Notifications delivered reliably: the transactional outbox, per-channel delivery records,
idempotent creates, and the indexes behind the bell's hot queries.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-26T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "outbox, notification deliveries, idempotency keys, unread index"

CHANNELS = "'IN_APP','EMAIL','SMS','PUSH'"
DELIVERY_STATUSES = "'PENDING','SENT','FAILED','SKIPPED'"


def statements(ts: str, json: str, bigserial: str) -> list[str]:
    """DDL with the engine's spelling of a few types."""
    return [
        # Written in the same transaction as the change it announces; the relay publishes it after commit.
        f"""CREATE TABLE outbox (
            id {bigserial},
            channel VARCHAR(80) NOT NULL,
            type VARCHAR(64) NOT NULL,
            data {json} NULL,
            created_at {ts} NOT NULL,
            sent_at {ts} NULL,
            attempts INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL",
        "CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL",
        f"""CREATE TABLE notification_deliveries (
            id {bigserial},
            notification_id VARCHAR(40) NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
            channel VARCHAR(8) NOT NULL CHECK (channel IN ({CHANNELS})),
            status VARCHAR(8) NOT NULL CHECK (status IN ({DELIVERY_STATUSES})),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NULL,
            next_attempt_at {ts} NULL,
            sent_at {ts} NULL,
            created_at {ts} NOT NULL,
            updated_at {ts} NOT NULL,
            UNIQUE (notification_id, channel))""",
        "CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE status = 'PENDING'",
        "ALTER TABLE notifications ADD COLUMN idempotency_key VARCHAR(128) NULL",
        "CREATE UNIQUE INDEX notifications_idempotency ON notifications (user_id, idempotency_key)"
        " WHERE idempotency_key IS NOT NULL",
        # The bell's count: an index of exactly the rows it counts.
        "CREATE INDEX notifications_unread ON notifications (user_id) WHERE is_read = false AND sent_at IS NOT NULL",
        # Delivery of scheduled notifications flips sent_at under a row lock; the lease columns are not needed.
        "ALTER TABLE notifications DROP COLUMN claimed_until",
    ]


SQLITE = statements(ts="TIMESTAMPTZ", json="JSON", bigserial="INTEGER PRIMARY KEY AUTOINCREMENT")
POSTGRES = statements(ts="TIMESTAMPTZ", json="JSON", bigserial="BIGSERIAL PRIMARY KEY")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def apply() -> None:
        engine = engine_finder()
        assert engine is not None  # piccolo_conf always defines DB
        for statement in SQLITE if engine.engine_type == "sqlite" else POSTGRES:
            await engine.run_ddl(statement)

    manager.add_raw(apply)
    return manager
