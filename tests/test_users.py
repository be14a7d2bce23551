"""The users table kept in step with token claims (app/services/users.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import httpx
from litestar import Litestar

from app.platform.auth import Identity
from app.runtime import Runtime
from models.catalog import User
from models.enums import Role
from tests.waiting import eventually


def _identity(user_id: str, name: str | None, email: str | None = None, role: Role = Role.CUSTOMER) -> Identity:
    return Identity(user_id=user_id, role=role, expires_at=time.time() + 60, name=name, email=email)


async def test_sockets_arriving_together_are_written_in_batches_with_their_claims(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    """250 new users at once (over SQLite's 100-row statement chunks): every row, every claim, nulls kept."""
    runtime: Runtime = app.state.runtime
    run = uuid.uuid4().hex[:8]
    identities = [
        _identity(f"u_batch_{run}_{i}", f"Name {i}" if i % 3 else None, f"u{i}@example.com" if i % 2 else None)
        for i in range(250)
    ]
    await asyncio.gather(*(runtime.users.ensure_batched(identity) for identity in identities))

    rows = await User.select().where(User.id.like(f"u_batch_{run}_%"))
    by_id = {row["id"]: row for row in rows}
    assert len(by_id) == 250
    for identity in identities:
        row = by_id[identity.user_id]
        assert (row["role"], row["name"], row["email"]) == ("customer", identity.name, identity.email)
        assert row["created_at"] == row["updated_at"]


async def test_changed_claims_refresh_the_row_and_keep_its_creation_time(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    """New claims for a known user rewrite its role, name and email and move updated_at on; created_at stays."""
    runtime: Runtime = app.state.runtime
    user_id = f"u_refresh_{uuid.uuid4().hex[:8]}"
    await runtime.users.ensure_batched(_identity(user_id, "Ada"))
    before = await User.select().where(User.id == user_id).first()
    assert before is not None

    # The clock has to pass the stored updated_at, or a refresh could not be told from no refresh.
    await eventually(lambda: datetime.now(UTC) > before["updated_at"], what="the clock passed updated_at")
    renamed = _identity(user_id, "Ada L.", "ada@example.com", Role.VENDOR)
    await asyncio.gather(runtime.users.ensure_batched(renamed), runtime.users.ensure_batched(renamed))

    after = await User.select().where(User.id == user_id).first()
    assert after is not None
    assert (after["role"], after["name"], after["email"]) == ("vendor", "Ada L.", "ada@example.com")
    assert after["created_at"] == before["created_at"] and after["updated_at"] > before["updated_at"]
