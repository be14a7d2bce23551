"""Payment and payout amounts in 64-bit columns: a provider may report more than 2^31 - 1 minor units.

A marketplace's payouts are sums over many orders, and 2^31 - 1 cents is only about 21 million of a
currency. SQLite's INTEGER is already 64-bit; on PostgreSQL ``ALTER COLUMN ... TYPE bigint`` rewrites
both tables under an exclusive lock (payments has one row per paid order: seconds at a million rows).
The webhook structs bound amounts to 2^53 - 1, the largest integer a JavaScript client reads exactly.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-03T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "payments.amount_cents and payouts.amount_cents as BIGINT"

POSTGRES = [
    "ALTER TABLE payments ALTER COLUMN amount_cents TYPE BIGINT",
    "ALTER TABLE payouts ALTER COLUMN amount_cents TYPE BIGINT",
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def apply() -> None:
        engine = engine_finder()
        assert engine is not None  # piccolo_conf always defines DB
        if engine.engine_type == "postgres":
            for statement in POSTGRES:
                await engine.run_ddl(statement)

    manager.add_raw(apply)
    return manager
