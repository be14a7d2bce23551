"""Demo data for development and benchmarks: ``python -m app seed``.

The same :class:`SeedPlan` always writes the same rows (the generators live in
:mod:`app.ops.seed_data`). Ids carry a tag made of the seed and a digest of the plan's sizes, so two
different plans never collide; the demo set (``customer_demo``, ``vendor_demo`` owning
``store_demo``, ``admin_demo``) is shared and only inserted where missing.

Writing is chunked: one transaction per chunk of orders (with their items, events and payments)
or notifications. Chunks are generated in a worker thread, one at a time and in order, while
earlier ones are written, so memory stays flat. PostgreSQL gets binary ``COPY`` through
:data:`POSTGRES_WRITERS` pooled asyncpg connections in parallel; SQLite gets ``executemany`` of
one prepared INSERT per table (compiled once, no variable limit, unlike multi-row VALUES).

Re-running: each chunk first checks, inside its own transaction, whether its last row exists. A
finished plan answers "already seeded" (also on a later day: the day is not part of the tag), an
interrupted one resumes where it stopped, and a different plan adds its rows beside the others.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
from piccolo.engine.postgres import PostgresEngine
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from app.ops.migrations import apply_migrations
from app.ops.seed_data import COLUMNS, OrderLedger, Row, Rows, Scope, build_catalog, orders
from app.ops.seed_notifications import notifications
from app.platform.database import Database

__all__ = ["NOTIFICATION_CHUNK", "ORDER_CHUNK", "POSTGRES_WRITERS", "SeedPlan", "run_seed"]

ORDER_CHUNK = 10_000
"""Orders per transaction: about 50,000 rows with their items, events and payments."""
NOTIFICATION_CHUNK = 20_000
POSTGRES_WRITERS = 2
"""Connections writing chunks at once: PostgreSQL, not Python, is the bottleneck of a big seed."""


class SeedPlan(msgspec.Struct, frozen=True, kw_only=True):
    """How much demo data to write, from which seed, ending at which UTC midnight."""

    orders: int
    customers: int
    stores: int
    notifications: int = 0
    seed: int = 1
    until: datetime
    """The latest instant any row may carry: a UTC midnight, so a plan made today is the same all day."""

    @classmethod
    def sized(
        cls,
        *,
        orders: int,
        customers: int | None = None,
        stores: int | None = None,
        notifications: int = 0,
        seed: int = 1,
        until: datetime | None = None,
    ) -> SeedPlan:
        """A plan with the CLI's defaults: customers ``max(10, orders // 20)``, stores ``max(3, customers // 50)``."""
        customers = max(1, customers if customers is not None else max(10, orders // 20))
        stores = max(1, stores if stores is not None else max(3, customers // 50))
        midnight = (until or datetime.now(UTC)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(
            orders=max(0, orders), customers=customers, stores=stores, notifications=max(0, notifications),
            seed=seed, until=midnight,
        )  # fmt: skip

    @property
    def tag(self) -> str:
        """The id tag of this plan's rows: the seed (hashed when long) and a digest of the sizes."""
        sizes = f"{self.orders}:{self.customers}:{self.stores}:{self.notifications}"
        seed = str(self.seed) if 0 <= self.seed < 10**6 else hashlib.sha256(str(self.seed).encode()).hexdigest()[:6]
        return f"{seed}_{hashlib.sha256(sizes.encode()).hexdigest()[:4]}"


class _Sink(Protocol):
    """Where rows go: one connection, one transaction at a time."""

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...

    async def exists(self, table: str, row_id: str) -> bool: ...

    async def copy(self, table: str, rows: Sequence[Row]) -> None: ...

    async def insert_missing(self, table: str, rows: Sequence[Row]) -> None: ...


class _PostgresSink:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        return self.connection.transaction()  # type: ignore[no-any-return]

    async def exists(self, table: str, row_id: str) -> bool:
        return await self.connection.fetchval(f"SELECT 1 FROM {table} WHERE id = $1", row_id) is not None

    async def copy(self, table: str, rows: Sequence[Row]) -> None:
        await self.connection.copy_records_to_table(table, records=rows, columns=COLUMNS[table])

    async def insert_missing(self, table: str, rows: Sequence[Row]) -> None:
        values = ", ".join(f"${n}" for n in range(1, len(COLUMNS[table]) + 1))
        sql = f"INSERT INTO {table} ({', '.join(COLUMNS[table])}) VALUES ({values}) ON CONFLICT DO NOTHING"
        await self.connection.executemany(sql, rows)


class _SqliteSink:
    # Datetimes reach SQLite through the adapter Piccolo registers, so they are stored as Piccolo
    # stores them (str of the UTC datetime); booleans become 0/1, JSON is already text.
    def __init__(self, database: Database) -> None:
        self.database = database
        self.connection: Any = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self.database.write() as transaction:
            self.connection = transaction.connection
            yield

    async def exists(self, table: str, row_id: str) -> bool:
        cursor = await self.connection.execute(f"SELECT 1 FROM {table} WHERE id = ?", (row_id,))
        return await cursor.fetchone() is not None

    async def copy(self, table: str, rows: Sequence[Row], verb: str = "INSERT") -> None:
        columns = COLUMNS[table]
        sql = f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        await self.connection.executemany(sql, rows)

    async def insert_missing(self, table: str, rows: Sequence[Row]) -> None:
        await self.copy(table, rows, verb="INSERT OR IGNORE")


@asynccontextmanager
async def _open_sinks(database: Database) -> AsyncIterator[list[_Sink]]:
    """One sink on SQLite (a single writer); on PostgreSQL one per pooled connection, writing in parallel."""
    if database.is_sqlite:
        yield [_SqliteSink(database)]
        return
    engine = database.engine
    if not isinstance(engine, PostgresEngine) or engine.pool is None:
        raise RuntimeError("seeding needs a started SQLite or PostgreSQL database")
    async with AsyncExitStack() as stack:
        connections = [await stack.enter_async_context(engine.pool.acquire()) for _ in range(POSTGRES_WRITERS)]
        yield [_PostgresSink(connection) for connection in connections]


class _RateColumn(ProgressColumn):
    """Rows per second of a task, in its own unit."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} {task.fields.get('unit', 'rows')}/s" if speed else "", style="progress.data.speed")


async def _already_seeded(sink: _Sink, plan: SeedPlan) -> bool:
    async with sink.transaction():
        if not await sink.exists("stores", f"sto_{plan.tag}_000000"):
            return False
        if plan.orders and not await sink.exists("orders", f"ord_{plan.tag}_{plan.orders - 1:09d}"):
            return False
        last_notification = f"ntf_{plan.tag}_{plan.notifications - 1:09d}"
        return not plan.notifications or await sink.exists("notifications", last_notification)


class _Seeder:
    """One run: writes chunk after chunk and counts what it wrote and what it found already there."""

    def __init__(self, sinks: list[_Sink], plan: SeedPlan, progress: Progress) -> None:
        self.sinks, self.plan, self.progress = sinks, plan, progress
        self.scope = Scope(seed=plan.seed, tag=plan.tag, until=plan.until)
        self.catalog = build_catalog(self.scope, plan.customers, plan.stores)
        self.ledger = OrderLedger()
        self.written: Counter[str] = Counter()
        self.skipped = 0

    async def write(self, sink: _Sink, rows: Rows, last: tuple[str, str]) -> None:
        """Write one chunk in one transaction, unless its last row shows it is already there."""
        async with sink.transaction():
            if await sink.exists(*last):
                self.skipped += 1
                return
            for table, table_rows in rows.items():
                if table_rows:
                    await sink.copy(table, table_rows)
                    self.written[table] += len(table_rows)

    async def catalog_rows(self) -> None:
        """The demo set where missing, then this plan's users, stores and products."""
        async with self.sinks[0].transaction():
            for table, demo_rows in self.catalog.demo_rows.items():
                await self.sinks[0].insert_missing(table, demo_rows)
        await self.write(self.sinks[0], self.catalog.rows, ("stores", f"sto_{self.scope.tag}_000000"))

    async def chunks(
        self, table: str, prefix: str, total: int, size: int, generate: Callable[[int, int], Rows]
    ) -> None:
        """Generate chunks in a thread, one at a time and in order, while every sink writes earlier ones."""
        if not total:
            return
        task = self.progress.add_task(table, total=total, unit=table)
        queue: asyncio.Queue[tuple[Rows, int, int] | None] = asyncio.Queue(maxsize=len(self.sinks))

        async def writer(sink: _Sink) -> None:
            while (chunk := await queue.get()) is not None:
                rows, first, count = chunk
                await self.write(sink, rows, (table, f"{prefix}_{self.scope.tag}_{first + count - 1:09d}"))
                self.progress.advance(task, count)

        # A failing writer cancels the generating loop too, so nothing waits on a full queue forever.
        async with asyncio.TaskGroup() as group:
            for sink in self.sinks:
                group.create_task(writer(sink))
            for first in range(0, total, size):
                count = min(size, total - first)
                await queue.put((await asyncio.to_thread(generate, first, count), first, count))
            for _ in self.sinks:
                await queue.put(None)

    async def orders(self) -> None:
        """All orders, with their items, events and payments."""

        def generate(first: int, count: int) -> Rows:
            return orders(self.catalog, self.scope, first, count, self.plan.orders, self.ledger)

        await self.chunks("orders", "ord", self.plan.orders, ORDER_CHUNK, generate)

    async def notifications(self) -> None:
        """All notifications, about the orders just written."""

        def generate(first: int, count: int) -> Rows:
            return {"notifications": notifications(self.catalog, self.ledger, self.scope, first, count)}

        await self.chunks("notifications", "ntf", self.plan.notifications, NOTIFICATION_CHUNK, generate)

    def summary(self, started: float) -> str:
        """One line: what was written, how long it took, the heaviest customer."""
        counts = ", ".join(f"{self.written[table]:,} {table.replace('_', ' ')}" for table in COLUMNS)
        line = f"seed {self.plan.seed} (tag {self.scope.tag}): wrote {counts} in {_since(started)}"
        if self.ledger.customer:
            customer, count = Counter(self.ledger.customer).most_common(1)[0]
            line += f"; heaviest customer {self.catalog.customer_ids[customer]} has {count:,} orders"
        return line + (f"; {self.skipped} chunks were already there" if self.skipped else "")


async def run_seed(database_url: str, plan: SeedPlan, *, show_progress: bool = True) -> str:
    """Migrate the database, write the plan's demo data and answer a one-line summary.

    Args:
        database_url: ``sqlite:///path`` or ``postgresql://...``.
        plan: what to write.
        show_progress: draw progress bars on stderr.
    """
    started = time.perf_counter()
    await apply_migrations(database_url)
    database = Database.from_url(database_url)
    await database.start(pool_size=POSTGRES_WRITERS)
    columns = (TextColumn("{task.description:>13}"), BarColumn(), MofNCompleteColumn(), _RateColumn())
    try:
        async with _open_sinks(database) as sinks:
            if await _already_seeded(sinks[0], plan):
                return f"already seeded (seed {plan.seed}, tag {plan.tag}): nothing written in {_since(started)}"
            progress = Progress(
                *columns, TimeRemainingColumn(), console=Console(stderr=True), disable=not show_progress
            )
            with progress:
                seeder = _Seeder(sinks, plan, progress)
                await seeder.catalog_rows()
                await seeder.orders()
                await seeder.notifications()
    finally:
        await database.stop()
    return seeder.summary(started)


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"
