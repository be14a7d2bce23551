"""Users are created or refreshed from token claims on first sight: there is no sign-up here."""

from __future__ import annotations

from datetime import UTC, datetime

from app.auth import Identity
from app.database import Database
from models.catalog import User

__all__ = ["UserDirectory"]

_UPSERT = (
    "INSERT INTO users (id, role, name, email, created_at, updated_at) VALUES ({}, {}, {}, {}, {}, {}) "
    "ON CONFLICT (id) DO UPDATE SET role = excluded.role, name = excluded.name, email = excluded.email, "
    "updated_at = excluded.updated_at"
)


class UserDirectory:
    """Keeps the users table in step with the claims of the tokens this process has seen.

    A small per-process memo of the claims already written keeps the write off the hot path:
    a user's row is written once per process, and again only when their claims change.
    """

    def __init__(self, database: Database, memo_size: int = 100_000) -> None:
        self._database = database
        self._seen: dict[str, tuple[str, str | None, str | None]] = {}
        self._memo_size = memo_size

    async def ensure(self, identity: Identity) -> None:
        """Create or refresh the caller's user row if this process has not written these claims yet."""
        claims = (identity.role.value, identity.name, identity.email)
        if self._seen.get(identity.user_id) == claims:
            return
        now = datetime.now(UTC)
        async with self._database.write():
            await User.raw(_UPSERT, identity.user_id, *claims, now, now)
        if len(self._seen) >= self._memo_size:
            self._seen.clear()
        self._seen[identity.user_id] = claims
