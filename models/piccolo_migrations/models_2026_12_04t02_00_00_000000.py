"""``users.inbox_version``: bumped in the transaction of every change to a user's notification counts.

It is the ETag of ``GET /notifications/counts``, so a poll that still holds it is answered 304
after one primary-key read instead of three counts. A constant default makes ``ADD COLUMN``
instant on PostgreSQL 11+ (no table rewrite) and on SQLite.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-04T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "users.inbox_version"

STATEMENTS = ["ALTER TABLE users ADD COLUMN inbox_version BIGINT NOT NULL DEFAULT 0"]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def apply() -> None:
        engine = engine_finder()
        assert engine is not None  # piccolo_conf always defines DB
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(apply)
    return manager
