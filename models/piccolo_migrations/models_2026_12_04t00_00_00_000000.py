"""The inbox (SPEC "The inbox"): ``seen_at``, ``read_at`` and ``archived_at`` on notifications.

Written for a table of millions of rows that keeps taking writes, so nothing holds a long lock:

- the columns are added nullable and without a default (instant on PostgreSQL: a catalog change);
- ``read_at`` and ``seen_at`` of the rows already read are backfilled from ``updated_at`` (the time
  ``mark_read`` last wrote) in batches of :data:`BATCH` rows by primary-key range, each its own
  short transaction (the migration runs outside one: ``wrap_in_transaction=False``);
- the indexes are built ``CONCURRENTLY`` on PostgreSQL (writes go on meanwhile).

Every step is idempotent (``IF NOT EXISTS``, the columns looked up on SQLite, the backfill only
touches rows not yet filled), so a migration interrupted half-way is simply run again.

Indexes: ``notifications_inbox`` is the default list's keyset (the not-archived visible rows of a
user, ``created_at DESC, id DESC`` as ``Inbox.list`` orders; archived lists keep
``notifications_user_created``); ``notifications_inbox_unseen`` and ``notifications_inbox_unread``
hold exactly the rows ``GET /notifications/counts`` counts (total counts ``notifications_inbox``).
"""

from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-12-04T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "inbox: seen_at, read_at, archived_at on notifications, backfilled in batches; inbox indexes"

BATCH = 10_000
COLUMNS = ("seen_at", "read_at", "archived_at")
VISIBLE = "archived_at IS NULL AND sent_at IS NOT NULL"
INDEXES = {
    "notifications_inbox": f"(user_id, created_at DESC, id DESC) WHERE {VISIBLE}",
    "notifications_inbox_unseen": f"(user_id) WHERE seen_at IS NULL AND {VISIBLE}",
    "notifications_inbox_unread": f"(user_id) WHERE is_read = false AND {VISIBLE}",
}
# The end of the next batch of primary keys after the last one; NULL when none is left.
NEXT_BATCH_END = "SELECT max(id) AS last FROM (SELECT id FROM notifications WHERE id > {} ORDER BY id LIMIT {}) AS batch"
BACKFILL = (
    "UPDATE notifications SET read_at = updated_at, seen_at = COALESCE(seen_at, updated_at)"
    " WHERE id > {} AND id <= {} AND is_read = true AND read_at IS NULL"
)


async def add_columns(engine: Any) -> None:
    """Add the three nullable columns (those not there yet)."""
    if engine.engine_type == "postgres":
        adds = ", ".join(f"ADD COLUMN IF NOT EXISTS {column} TIMESTAMPTZ NULL" for column in COLUMNS)
        await engine.run_ddl(f"ALTER TABLE notifications {adds}")
        return
    present = {row["name"] for row in await engine.run_ddl("PRAGMA table_info(notifications)")}
    for column in COLUMNS:
        if column not in present:
            await engine.run_ddl(f"ALTER TABLE notifications ADD COLUMN {column} TIMESTAMPTZ NULL")


async def backfill(engine: Any, batch: int = BATCH) -> int:
    """Set ``read_at`` (and ``seen_at`` when unset) of the read rows, one primary-key range per statement.

    Returns:
        How many batches ran.
    """
    last, batches = "", 0
    while True:
        rows = await engine.run_querystring(QueryString(NEXT_BATCH_END, last, batch))
        end = rows[0]["last"] if rows else None
        if end is None:
            return batches
        await engine.run_querystring(QueryString(BACKFILL, last, end))
        last, batches = end, batches + 1


async def create_indexes(engine: Any) -> None:
    """The inbox's keyset and count indexes; concurrently on PostgreSQL."""
    concurrently = " CONCURRENTLY" if engine.engine_type == "postgres" else ""
    for name, definition in INDEXES.items():
        await engine.run_ddl(f"CREATE INDEX{concurrently} IF NOT EXISTS {name} ON notifications {definition}")


async def forwards() -> MigrationManager:
    manager = MigrationManager(
        migration_id=ID, app_name="models", description=DESCRIPTION, wrap_in_transaction=False
    )

    async def apply() -> None:
        engine = engine_finder()
        assert engine is not None  # piccolo_conf always defines DB
        await add_columns(engine)
        await backfill(engine)
        await create_indexes(engine)

    manager.add_raw(apply)
    return manager
