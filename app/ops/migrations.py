"""Running Piccolo's migrations programmatically against the configured database."""

from __future__ import annotations

import contextlib
import io

from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager

from app.platform.database import enable_wal, engine_from_url, sqlite_path

__all__ = ["apply_migrations"]


async def apply_migrations(database_url: str, up_to: str | None = None) -> int:
    """Apply every migration not yet applied (or those up to and including ``up_to``); answers how many ran.

    ``up_to`` (a migration's ``ID``) lets a test build a database as an older release left it.

    Piccolo finds its engine through ``piccolo_conf.DB``; it is pointed at ``database_url``
    first so tests and tools can migrate any database from one process.

    Raises:
        RuntimeError: when a migration fails (the message says which).
    """
    from piccolo.apps.migrations.tables import Migration

    import piccolo_conf

    engine = engine_from_url(database_url)
    piccolo_conf.DB = engine
    Migration._meta.db = engine
    if database_url.startswith("sqlite"):
        enable_wal(sqlite_path(database_url))
    before = len(await Migration.get_migrations_which_ran(app_name="models")) if await Migration.table_exists() else 0
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        result = await ForwardsMigrationManager(app_name="models", migration_id=up_to or "all").run()
    if not result.success:
        raise RuntimeError(f"migration failed: {result.message}\n{output.getvalue()}")
    return len(await Migration.get_migrations_which_ran(app_name="models")) - before
