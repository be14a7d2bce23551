"""Revoked tokens (SPEC "Server API", ``revokeTokensIssuedBefore``): kept in the database, checked in memory.

A user's tokens issued before the cut-off, or carrying no ``iat``, are refused wherever a token is
accepted (REST, ``/ws``, ``/sse``, tickets). Every process loads the table at start-up: it holds
only revoked users, so the check on every request and connect is a dictionary lookup. A revocation
is written here first, then announced on the control channel (``app/realtime/control.py``), which
updates every process's copy at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.platform.auth import Identity
from app.platform.database import Database
from models.catalog import TokenRevocation

__all__ = ["Revocations"]


class Revocations:
    """The cut-off per revoked user, mirrored from ``token_revocations``."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._cutoffs: dict[str, float] = {}

    async def load(self) -> None:
        """Read every revocation (at start-up, after the control channel is subscribed: no update is missed)."""
        rows = await TokenRevocation.select(TokenRevocation.user_id, TokenRevocation.revoked_before)
        self._cutoffs = {row["user_id"]: row["revoked_before"].timestamp() for row in rows}

    def refused(self, identity: Identity) -> bool:
        """Whether this token of the user was revoked: issued before the cut-off, or without ``iat``."""
        cutoff = self._cutoffs.get(identity.user_id)
        if cutoff is None:
            return False
        return identity.issued_at is None or identity.issued_at < cutoff

    async def revoke(self, user_id: str, before: datetime) -> None:
        """Store the cut-off (replacing an earlier one) and apply it here."""
        now = datetime.now(UTC)
        async with self.database.write():
            await TokenRevocation.raw(
                "INSERT INTO token_revocations (user_id, revoked_before, updated_at) VALUES ({}, {}, {})"
                " ON CONFLICT (user_id) DO UPDATE SET revoked_before = excluded.revoked_before,"
                " updated_at = excluded.updated_at",
                user_id,
                before,
                now,
            )
        self.apply(user_id, before.timestamp())

    def apply(self, user_id: str, cutoff: float) -> None:
        """Another process (or this one) revoked ``user_id``'s tokens before ``cutoff``."""
        self._cutoffs[user_id] = cutoff
