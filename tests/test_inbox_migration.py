"""The inbox migration on a database an older release left: read rows get read_at and seen_at, in batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from piccolo.querystring import QueryString

from app.database import engine_from_url
from app.migrations import apply_migrations
from tests.services import POSTGRES_ADMIN_URL, postgres_url, reachable, unavailable, unique_name

PREVIOUS = "2026-12-03T01:00:00:000000"
INBOX = "2026-12-04T00:00:00:000000"  # later migrations are not this test's
ROWS = 250  # read every third: 84 read, 166 unread


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, unmigrated database of this test's own, once per engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    if not reachable("127.0.0.1", 5432):
        unavailable("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = unique_name("push_test_inbox_mig")
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    yield postgres_url(name)
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def old_database(empty_database: str) -> AsyncIterator[Any]:
    """An engine on ``empty_database`` migrated up to the release before the inbox, seeded with notifications."""
    await apply_migrations(empty_database, up_to=PREVIOUS)
    engine = engine_from_url(empty_database)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await engine.run_querystring(
        QueryString(
            "INSERT INTO users (id, role, created_at, updated_at) VALUES ({}, {}, {}, {})",
            "u_mig",
            "customer",
            start,
            start,
        )
    )
    for n in range(ROWS):
        at = start + timedelta(minutes=n)
        await engine.run_querystring(
            QueryString(
                "INSERT INTO notifications (id, user_id, type, title, message, channels, priority, metadata, is_read,"
                " sent_at, created_at, updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                f"ntf_mig_{n:05d}", "u_mig", "ACCOUNT_UPDATED", "t", "m", '["IN_APP"]', "LOW", "{}", n % 3 == 0,
                at, at, at + timedelta(seconds=30),
            )
        )  # fmt: skip
    yield engine


async def test_migration_backfills_read_rows_only(old_database: Any, empty_database: str) -> None:
    """Applied to rows of the old schema, read rows get read_at = seen_at = updated_at; unread ones stay null."""
    assert await apply_migrations(empty_database, up_to=INBOX) == 1
    rows = await old_database.run_querystring(
        QueryString("SELECT id, is_read, seen_at, read_at, archived_at, updated_at FROM notifications ORDER BY id")
    )
    assert len(rows) == ROWS
    for row in rows:
        if row["is_read"]:
            assert row["read_at"] is not None and row["read_at"] == row["seen_at"] == row["updated_at"], row
        else:
            assert row["read_at"] is None and row["seen_at"] is None, row
        assert row["archived_at"] is None
    assert sum(1 for row in rows if row["is_read"]) == 84


async def test_backfill_runs_in_batches_and_again_harmlessly(old_database: Any, empty_database: str) -> None:
    """The backfill walks primary-key batches; run again (an interrupted migration) it changes nothing."""
    from models.piccolo_migrations.models_2026_12_04t00_00_00_000000 import add_columns, backfill, create_indexes

    await add_columns(old_database)
    await add_columns(old_database)  # idempotent
    assert await backfill(old_database, batch=100) == 3
    filled = await old_database.run_querystring(
        QueryString("SELECT count(*) AS n FROM notifications WHERE read_at IS NOT NULL")
    )
    assert filled[0]["n"] == 84
    await old_database.run_querystring(
        QueryString("UPDATE notifications SET read_at = {} WHERE is_read = true", datetime(2030, 1, 1, tzinfo=UTC))
    )
    await backfill(old_database, batch=100)  # only rows not filled yet are touched
    kept = await old_database.run_querystring(
        QueryString("SELECT count(*) AS n FROM notifications WHERE read_at >= {}", datetime(2030, 1, 1, tzinfo=UTC))
    )
    assert kept[0]["n"] == 84
    await create_indexes(old_database)
    await create_indexes(old_database)
    # the columns and indexes already there: still succeeds
    assert await apply_migrations(empty_database, up_to=INBOX) == 1
