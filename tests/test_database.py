"""Database.write(): SQLite writers of one process take turns; PostgreSQL connections survive being killed."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest

import app.platform.database
from app.main import create_app
from app.platform.database import Database
from app.platform.settings import Settings
from models.catalog import User
from tests.asgi import lifespan_running
from tests.services import POSTGRES_ADMIN_URL


@pytest.fixture
async def sqlite_db(sqlite_settings: Settings) -> AsyncIterator[Database]:
    """The started app's database on the suite's SQLite file."""
    application = create_app(sqlite_settings)
    async with lifespan_running(application):
        database: Database = application.state.runtime.database
        yield database


async def _insert_user(user_id: str) -> None:
    now = time.time()
    await User.raw(
        "INSERT INTO users (id, role, name, email, created_at, updated_at) VALUES ({}, 'customer', NULL, NULL, {}, {})",
        user_id,
        now,
        now,
    )


async def test_concurrent_writes_take_turns_and_all_commit(sqlite_db: Database) -> None:
    """40 writers at once: one inside at a time, none refused, every row there."""
    run = uuid.uuid4().hex[:8]
    active = peak = 0

    async def write(index: int) -> None:
        nonlocal active, peak
        async with sqlite_db.write():
            active += 1
            peak = max(peak, active)
            await _insert_user(f"u_turns_{run}_{index}")
            await asyncio.sleep(0)  # give the others every chance to barge in
            active -= 1

    await asyncio.gather(*(write(i) for i in range(40)))
    assert peak == 1
    rows = await User.count().where(User.id.like(f"u_turns_{run}_%"))
    assert rows == 40


async def test_a_write_inside_a_write_joins_it(sqlite_db: Database) -> None:
    """No deadlock on the lock; the inner write commits or rolls back with the outer one."""
    run = uuid.uuid4().hex[:8]
    async with sqlite_db.write():
        await _insert_user(f"u_outer_{run}")
        async with sqlite_db.write():
            await _insert_user(f"u_inner_{run}")
    assert await User.count().where(User.id.like(f"u_%_{run}")) == 2

    with pytest.raises(RuntimeError):
        async with sqlite_db.write():
            await _insert_user(f"u_outer2_{run}")
            async with sqlite_db.write():
                await _insert_user(f"u_inner2_{run}")
            raise RuntimeError("roll back")
    assert await User.count().where(User.id.like(f"u_%2_{run}")) == 0
    async with sqlite_db.write():  # the lock was released on the way out
        pass


async def test_a_writer_that_waits_past_the_busy_timeout_fails_like_sqlite(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer kept waiting past the busy timeout gets SQLite's 'database is locked'; the lock is free after."""
    monkeypatch.setattr(app.platform.database, "SQLITE_BUSY_TIMEOUT_SECONDS", 0.2)
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with sqlite_db.write():
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        async with sqlite_db.write():
            pass
    release.set()
    await holder
    async with sqlite_db.write():  # free again
        pass


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_concurrent_notification_creates_on_sqlite_all_succeed(
    client: httpx.AsyncClient, settings_token: Callable[..., str]
) -> None:
    """Through the API: 60 creates at once, none refused by a locked database."""
    user = f"u_burst_{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {settings_token('svc', 'service')}"}
    body = {"userId": user, "type": "ACCOUNT_UPDATED", "title": "t", "message": "m"}
    await client.get("/me", headers={"Authorization": f"Bearer {settings_token(user, 'customer')}"})
    responses = await asyncio.gather(*(client.post("/notifications", json=body, headers=headers) for _ in range(60)))
    assert [r.status_code for r in responses] == [201] * 60


# What asyncpg raises on a connection the server terminated, depending on when it notices.
_CONNECTION_LOST = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


async def test_connections_terminated_by_postgresql_go_back_to_the_pool(postgres_database: str) -> None:
    """Writes failing because PostgreSQL killed their connection (idle at BEGIN, or mid-body) never shrink the pool."""
    database = Database.from_url(postgres_database)  # no tables: nothing rebound
    await database.start(pool_size=2)
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    database_name = postgres_database.rsplit("/", 1)[1]
    try:
        for _ in range(3):  # each round leaked one of the two connections before the fix
            with pytest.raises(_CONNECTION_LOST):  # the body's own error, not the rollback's
                async with database.write() as transaction:
                    pid = await transaction.connection.fetchval("SELECT pg_backend_pid()")
                    await admin.execute("SELECT pg_terminate_backend($1)", pid)
                    await transaction.connection.execute("SELECT 1")
            # And the pool's idle connections killed under it: the next BEGIN fails on a dead one.
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                database_name,
            )
            with contextlib.suppress(*_CONNECTION_LOST):
                async with database.write() as transaction:
                    await transaction.connection.execute("SELECT 1")

        async def write() -> int:
            async with database.write() as transaction:
                return int(await transaction.connection.fetchval("SELECT 1"))

        # Both connections are free again: two writes hold one each at the same time.
        assert await asyncio.wait_for(asyncio.gather(write(), write()), 10) == [1, 1]
    finally:
        await admin.close()
        await asyncio.wait_for(database.stop(), 10)
