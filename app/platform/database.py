"""The database engine: built from ``DATABASE_URL``, bound to every table, and one write helper.

SQLite is the embedded default and must survive concurrent writers: the file runs in WAL mode,
every connection waits on a busy lock instead of failing, and every write transaction is opened
IMMEDIATE through :meth:`Database.write` (Piccolo's default deferred transactions upgrade their
lock mid-way and fail with "database is locked" under load). Within a process those writers also
queue on an asyncio lock first: SQLite admits one writer at a time, and the others would wait in
its busy handler, which polls with sleeps of up to 100 ms.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from asyncpg.exceptions import UniqueViolationError
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from app.platform.errors import ConfigurationError

__all__ = ["UNIQUE_VIOLATIONS", "Database", "ReleasingTransaction", "engine_from_url", "sqlite_path"]

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0

UNIQUE_VIOLATIONS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, UniqueViolationError)
"""What each driver raises when a unique constraint refuses a row (SQLite's also covers other constraints)."""


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    path = url.removeprefix("sqlite://")
    if not path.startswith("/") or path in ("", "/"):
        raise ConfigurationError("DATABASE_URL", "expected sqlite:///path/to/file.sqlite3")
    # sqlite:///rel -> "/rel" -> "rel"; sqlite:////abs -> "//abs" -> "/abs"
    return unquote(path[1:])


def engine_from_url(url: str) -> Engine[Any]:
    """Build (but do not connect) the Piccolo engine a ``DATABASE_URL`` names.

    Raises:
        ConfigurationError: for an unsupported or malformed URL.
    """
    if url.startswith("sqlite"):
        return SQLiteEngine(path=sqlite_path(url), timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        if not parts.path.strip("/"):
            raise ConfigurationError("DATABASE_URL", "name the database: postgresql://user@host:port/dbname")
        return PostgresEngine(config={"dsn": url})
    raise ConfigurationError("DATABASE_URL", "expected sqlite:///... or postgresql://...")


class Database:
    """The engine the app runs on, with its lifecycle and the write-transaction helper."""

    def __init__(self, engine: Engine[Any], tables: Sequence[Any] = ()) -> None:
        self.engine = engine
        self.is_sqlite = isinstance(engine, SQLiteEngine)
        self._sqlite_writer = asyncio.Lock()  # see SQLiteWrite
        for table in tables:
            # Piccolo resolves a table's engine from piccolo_conf once; binding it here lets
            # tests and tools run the same tables on another engine in the same process.
            table._meta.db = engine

    @classmethod
    def from_url(cls, url: str, tables: Sequence[Any] = ()) -> Database:
        """The database of a ``DATABASE_URL``, bound to ``tables``."""
        return cls(engine_from_url(url), tables)

    async def start(self, pool_size: int = 10) -> None:
        """Prepare the file (SQLite) or open the connection pool (PostgreSQL)."""
        if isinstance(self.engine, SQLiteEngine):
            enable_wal(self.engine.path)
        elif isinstance(self.engine, PostgresEngine):
            await self.engine.start_connection_pool(min_size=1, max_size=pool_size, reset=_keep_session)

    async def stop(self) -> None:
        """Close the pool, if any."""
        if isinstance(self.engine, PostgresEngine):
            await self.engine.close_connection_pool()

    def write(self) -> Any:
        """A write transaction: ``async with database.write(): ...``; IMMEDIATE on SQLite, one at a time per process."""
        if isinstance(self.engine, SQLiteEngine):
            return SQLiteWrite(self.engine, self._sqlite_writer)
        if isinstance(self.engine, PostgresEngine):
            return ReleasingTransaction(self.engine)
        return self.engine.transaction()

    async def ping(self) -> None:
        """Run a trivial query; raises whatever the driver raises when the database is away."""
        await self.engine.run_ddl("SELECT 1")


class ReleasingTransaction(PostgresTransaction):
    """Piccolo's PostgreSQL transaction, except that its pooled connection always goes back to the pool.

    Piccolo (1.38) releases the connection only after ``BEGIN`` and then ``COMMIT`` or ``ROLLBACK``
    succeeded. Each of them fails on a connection the server terminated (a restart, a failover,
    ``pg_terminate_backend``), and each such failure kept one connection checked out for good: the
    pool shrank with every outage until writes waited forever and shutdown hung in ``pool.close()``.
    """

    async def __aenter__(self) -> PostgresTransaction:
        if self._parent is not None:
            return self._parent
        self.connection = await self.get_connection()  # type: ignore[no-untyped-call]
        try:
            self.transaction = self.connection.transaction()
            await self.begin()  # type: ignore[no-untyped-call]
        except BaseException:
            await self._release()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if self._parent is not None:
            return exc is None
        try:
            if exc is not None:
                if not self._rolled_back:
                    await self._rollback_after(exc)
            elif not self._committed and not self._rolled_back:
                await self.commit()  # type: ignore[no-untyped-call]
        finally:
            self.engine.current_transaction.reset(self.context)
            await self._release()
        return exc is None

    async def _rollback_after(self, exc: BaseException) -> None:
        """Roll back after the body raised ``exc``, which stays the error reported."""
        try:
            await self.rollback()  # type: ignore[no-untyped-call]
        except Exception:  # the body's error is the one to report
            # Most often the connection is dead already; either way its state is unknown: drop it.
            self.connection.terminate()

    async def _release(self) -> None:
        if self.engine.pool:
            # asyncpg terminates a connection it cannot reset, so a dead one is dropped, not reused.
            await self.engine.pool.release(self.connection)
        else:
            await self.connection.close()


class SQLiteWrite:
    """An IMMEDIATE SQLite transaction entered after the process's writer lock.

    100 concurrent notification creates took p50 377 ms and p99 988 ms when each writer waited in
    SQLite's busy handler (it sleeps 1, 2, 5 ... 100 ms between tries); queued on the lock they run
    back to back. A write inside a write joins the outer transaction, as Piccolo nests them, without
    the lock. A lock not granted within the busy timeout fails as SQLite would ("database is locked").
    """

    __slots__ = ("_engine", "_lock", "_locked", "_transaction")

    def __init__(self, engine: SQLiteEngine, lock: asyncio.Lock) -> None:
        self._engine = engine
        self._lock = lock
        self._locked = False
        self._transaction: Any = None

    async def __aenter__(self) -> Any:
        if self._engine.current_transaction.get() is None:
            try:
                async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_SECONDS):
                    await self._lock.acquire()
            except TimeoutError:
                raise sqlite3.OperationalError("database is locked") from None
            self._locked = True
        try:
            self._transaction = self._engine.transaction(transaction_type=TransactionType.immediate)
            return await self._transaction.__aenter__()
        except BaseException:
            self._release()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> bool | None:
        try:
            result: bool | None = await self._transaction.__aexit__(exc_type, exc, traceback)
            return result
        finally:
            self._release()

    def _release(self) -> None:
        if self._locked:
            self._locked = False
            self._lock.release()


async def _keep_session(_connection: Any) -> None:
    """asyncpg's default pool reset runs a RESET query every time a connection goes back to the pool,
    a second round trip per query. The app keeps no session state (no LISTEN, SET or advisory locks),
    so there is nothing to reset; asyncpg still rolls back any transaction left open."""


def enable_wal(path: str) -> None:
    """Switch the SQLite file to WAL (persistent in the file), so readers never block the writer."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
