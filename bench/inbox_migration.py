"""The inbox migration (``seen_at``, ``read_at``, ``archived_at``) on a seeded PostgreSQL table, under writes.

``python -m bench.inbox_migration`` seeds ``--notifications`` (default 1,000,000) into a database
of its own (``bench_inbox_migration``, recreated), takes the inbox back out (drops its indexes and
columns and forgets the migration: the seeder writes the new columns, so this is how the table of
the release before looks), then applies the migration while a writer marks random notifications
read one at a time, as users would. It prints how long the migration took, how many rows it
backfilled, and the writer's latency during it: the longest wait is the longest lock it met.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from app.ops.migrations import apply_migrations

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
NAME = "bench_inbox_migration"
MIGRATION = "2026-12-04T00:00:00:000000"
UNDO = [
    "DROP INDEX IF EXISTS notifications_inbox",
    "DROP INDEX IF EXISTS notifications_inbox_unseen",
    "DROP INDEX IF EXISTS notifications_inbox_unread",
    "ALTER TABLE notifications DROP COLUMN seen_at, DROP COLUMN read_at, DROP COLUMN archived_at",
    f"DELETE FROM migration WHERE name = '{MIGRATION}'",
    "VACUUM (ANALYZE) notifications",
]


def _url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def _recreate() -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{NAME}"')
    finally:
        await admin.close()


def _seed(notifications: int) -> None:
    env = {**os.environ, "DATABASE_URL": _url(NAME)}
    command = [sys.executable, "-m", "app", "seed", "--orders", "100000", "--customers", "10000", "--quiet"]
    subprocess.run([*command, "--notifications", str(notifications)], cwd=ROOT, env=env, check=True)


async def _writer(ids: list[str], stop: asyncio.Event, latencies: list[float]) -> None:
    """Mark random notifications read, one short transaction each, until ``stop``."""
    connection = await asyncpg.connect(_url(NAME))
    rng = random.Random(16)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            await connection.execute(
                "UPDATE notifications SET is_read = true, updated_at = now() WHERE id = $1", rng.choice(ids)
            )
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)
    finally:
        await connection.close()


async def main(notifications: int, skip_seed: bool) -> None:
    """Seed (unless ``skip_seed``), undo the inbox, migrate under writes, report."""
    if not skip_seed:
        await _recreate()
        await apply_migrations(_url(NAME))
        started = time.perf_counter()
        _seed(notifications)
        print(f"seeded {notifications:,} notifications in {time.perf_counter() - started:.1f} s")
    connection = await asyncpg.connect(_url(NAME))
    try:
        for statement in UNDO:
            await connection.execute(statement)
        ids = [row["id"] for row in await connection.fetch("SELECT id FROM notifications TABLESAMPLE SYSTEM (1)")]
        read = await connection.fetchval("SELECT count(*) FROM notifications WHERE is_read")
    finally:
        await connection.close()
    stop, latencies = asyncio.Event(), []
    writer = asyncio.create_task(_writer(ids, stop, latencies))
    await asyncio.sleep(1)
    baseline = len(latencies)
    started = time.perf_counter()
    assert await apply_migrations(_url(NAME)) == 1
    took = time.perf_counter() - started
    stop.set()
    await writer
    during = latencies[baseline:]
    connection = await asyncpg.connect(_url(NAME))
    try:
        filled = await connection.fetchval("SELECT count(*) FROM notifications WHERE read_at IS NOT NULL")
        total = await connection.fetchval("SELECT count(*) FROM notifications")
    finally:
        await connection.close()
    print(f"migration: {took:.1f} s on {total:,} rows ({read:,} read before it; read_at set on {filled:,} after)")
    print(
        f"writer during it: {len(during):,} updates, median {statistics.median(during) * 1000:.2f} ms, "
        f"p99 {sorted(during)[int(len(during) * 0.99)] * 1000:.2f} ms, max {max(during) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=1_000_000)
    parser.add_argument("--skip-seed", action="store_true", help="reuse the seeded database")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.notifications, arguments.skip_seed))
