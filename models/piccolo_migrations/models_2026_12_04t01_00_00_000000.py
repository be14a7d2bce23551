"""Preferences and escalation (SPEC "Preferences, per user"): a preferences table, a notification's
``escalate_after_seconds`` and a delivery's ``skip_reason``.

Only additions: a new table and two nullable columns without a default, a catalog change on
PostgreSQL that takes no long lock however many notifications there are. A delivery's lifecycle
``status`` (and the partial index the dispatcher's claim reads) stays as it is; SPEC's outcome is
derived from ``status`` and ``skip_reason``, and a SKIPPED row written before this migration has no
reason, which reads as ``skipped_unconfigured`` (the only reason there was). Idempotent like the
inbox migration, so an interrupted run is simply run again.
"""

from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-04T01:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "preferences: notification_preferences; escalate_after_seconds on notifications; skip_reason"

SKIP_REASONS = "'preference','seen','unconfigured'"  # frozen here: a migration is a snapshot
PREFERENCES = """CREATE TABLE IF NOT EXISTS notification_preferences (
    user_id VARCHAR(64) PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    preferences JSON NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL)"""
COLUMNS = {
    "notifications": (
        "escalate_after_seconds",
        "INTEGER NULL CHECK (escalate_after_seconds BETWEEN 1 AND 86400)",
    ),
    "notification_deliveries": ("skip_reason", f"VARCHAR(16) NULL CHECK (skip_reason IN ({SKIP_REASONS}))"),
}


async def add_column(engine: Any, table: str, column: str, definition: str) -> None:
    """Add one nullable column unless it is there already."""
    if engine.engine_type == "postgres":
        await engine.run_ddl(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {definition}")
        return
    present = {row["name"] for row in await engine.run_ddl(f"PRAGMA table_info({table})")}
    if column not in present:
        await engine.run_ddl(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="models", description=DESCRIPTION)

    async def apply() -> None:
        engine = engine_finder()
        assert engine is not None  # piccolo_conf always defines DB
        await engine.run_ddl(PREFERENCES)
        for table, (column, definition) in COLUMNS.items():
            await add_column(engine, table, column, definition)

    manager.add_raw(apply)
    return manager
