"""The preferences migration on a database the inbox release left: old skipped deliveries read as unconfigured,
the new columns refuse values outside their range, and a second run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from piccolo.querystring import QueryString

from app.ops.migrations import apply_migrations
from app.platform.database import engine_from_url
from app.services.delivery_records import delivery_outcome
from models.enums import DeliveryOutcome
from tests.test_inbox_migration import INBOX, empty_database  # noqa: F401 (a fixture)

PREFERENCES = "2026-12-04T01:00:00:000000"


async def test_old_skipped_deliveries_read_unconfigured_and_new_columns_are_checked(
    empty_database: str,  # noqa: F811 (the fixture imported above)
) -> None:
    """A SKIPPED delivery written before skip_reason reads skipped_unconfigured; CHECKs hold; a rerun is a no-op."""
    await apply_migrations(empty_database, up_to=INBOX)
    engine = engine_from_url(empty_database)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    statements = [
        ("INSERT INTO users (id, role, created_at, updated_at) VALUES ({}, 'customer', {}, {})", "u_old", now, now),
        (
            "INSERT INTO notifications (id, user_id, type, title, message, channels, priority, metadata, is_read,"
            " sent_at, created_at, updated_at) VALUES ('ntf_old', 'u_old', 'ACCOUNT_UPDATED', 't', 'm', {}, 'LOW', {},"
            " false, {}, {}, {})",
            '["EMAIL"]',
            "{}",
            now,
            now,
            now,
        ),
        (
            "INSERT INTO notification_deliveries (notification_id, channel, status, attempts, created_at, updated_at)"
            " VALUES ('ntf_old', 'EMAIL', 'SKIPPED', 0, {}, {})",
            now,
            now,
        ),
    ]
    for sql, *args in statements:
        await engine.run_querystring(QueryString(sql, *args))

    assert await apply_migrations(empty_database, up_to=PREFERENCES) == 1
    (row,) = await engine.run_querystring(QueryString("SELECT status, skip_reason FROM notification_deliveries"))
    assert row["skip_reason"] is None
    assert delivery_outcome(row["status"], row["skip_reason"]) is DeliveryOutcome.SKIPPED_UNCONFIGURED
    assert await engine.run_querystring(QueryString("SELECT user_id FROM notification_preferences")) == []
    for bad in (
        "UPDATE notifications SET escalate_after_seconds = 0",
        "UPDATE notifications SET escalate_after_seconds = 86401",
        "UPDATE notification_deliveries SET skip_reason = 'bored'",
    ):
        with pytest.raises(Exception, match=r"(?i)check"):
            await engine.run_querystring(QueryString(bad))
    assert await apply_migrations(empty_database, up_to=PREFERENCES) == 0
