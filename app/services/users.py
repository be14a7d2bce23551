"""Users are created or refreshed from token claims on first sight: there is no sign-up here."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from app.platform.auth import Identity
from app.platform.database import Database
from models.catalog import User

__all__ = ["UserDirectory"]

_COLUMNS = "INSERT INTO users (id, role, name, email, created_at, updated_at) VALUES "
_ROW = "({}, {}, {}, {}, {}, {})"
_ON_CONFLICT = (
    " ON CONFLICT (id) DO UPDATE SET role = excluded.role, name = excluded.name, email = excluded.email, "
    "updated_at = excluded.updated_at"
)
_BATCH_ROWS = 100  # 600 bind parameters: under SQLite's oldest limit (999)
# PostgreSQL: the same upsert over arrays, so the statement text never changes (asyncpg prepares it once)
# and a batch of any size is one statement, atomic without an explicit transaction: one round trip.
_UPSERT_ARRAYS = (
    "INSERT INTO users (id, role, name, email, created_at, updated_at) "
    "SELECT u.id, u.role, u.name, u.email, {}, {} "
    "FROM unnest({}::text[], {}::text[], {}::text[], {}::text[]) AS u(id, role, name, email)" + _ON_CONFLICT
)

Claims = tuple[str, str | None, str | None]


class UserDirectory:
    """Keeps the users table in step with the claims of the tokens this process has seen.

    A small per-process memo of the claims already written keeps the write off the hot path:
    a user's row is written once per process, and again only when their claims change. REST awaits
    ``ensure``; real-time sockets await ``ensure_batched``, which writes the users of sockets opened
    together in one statement, so a burst of new sockets costs a few upserts, not one each.
    """

    def __init__(self, database: Database, memo_size: int = 100_000) -> None:
        self._database = database
        self._seen: dict[str, Claims] = {}
        self._memo_size = memo_size
        self._pending: dict[str, Claims] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._writer: asyncio.Task[None] | None = None

    @staticmethod
    def _claims(identity: Identity) -> Claims:
        return (identity.role.value, identity.name, identity.email)

    async def ensure(self, identity: Identity) -> None:
        """Create or refresh the caller's user row if this process has not written these claims yet."""
        claims = self._claims(identity)
        if self._seen.get(identity.user_id) == claims:
            return
        await self._upsert({identity.user_id: claims})

    async def ensure_batched(self, identity: Identity) -> None:
        """Like ``ensure``, but callers arriving together share one upsert (a burst of new sockets).

        Requests made while an upsert is in flight are written by the next one; each caller returns
        once its row is written (or gets the database error).
        """
        claims = self._claims(identity)
        if self._seen.get(identity.user_id) == claims:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[identity.user_id] = claims
        self._waiters.append(done)
        if self._writer is None:
            # Referenced until done, so the task cannot be garbage-collected mid-write.
            self._writer = asyncio.create_task(self._write_pending(), name="users-ensure-batched")
        await done

    async def _write_pending(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                waiters, self._waiters = self._waiters, []
                error: Exception | None = None
                try:
                    await self._upsert(batch)
                except Exception as exc:
                    error = exc
                for waiter in waiters:
                    if waiter.done():  # its caller went away
                        continue
                    if error is None:
                        waiter.set_result(None)
                    else:
                        waiter.set_exception(error)
        finally:
            self._writer = None

    async def _upsert(self, users: dict[str, Claims]) -> None:
        now = datetime.now(UTC)
        items = list(users.items())
        if self._database.is_sqlite:
            async with self._database.write():  # one commit for the whole batch
                for start in range(0, len(items), _BATCH_ROWS):
                    chunk = items[start : start + _BATCH_ROWS]
                    sql = _COLUMNS + ", ".join([_ROW] * len(chunk)) + _ON_CONFLICT
                    args = [value for user_id, claims in chunk for value in (user_id, *claims, now, now)]
                    await User.raw(sql, *args)
        else:
            ids = list(users)
            roles, names, emails = (list(column) for column in zip(*users.values(), strict=True))
            await User.raw(_UPSERT_ARRAYS, now, now, ids, roles, names, emails)
        if len(self._seen) + len(items) > self._memo_size:
            self._seen.clear()
        self._seen.update(items)
