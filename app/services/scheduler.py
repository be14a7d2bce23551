"""Scheduled notifications: invisible until ``scheduledFor``, then delivered once, however many processes run.

Delivery flips ``sent_at`` with one conditional UPDATE (``... WHERE sent_at IS NULL``) inside the
transaction that also writes the events. On PostgreSQL the row lock makes a second process's
UPDATE re-check the condition and skip the row (``FOR UPDATE SKIP LOCKED`` only spares it the
wait); on SQLite IMMEDIATE transactions run one at a time. Either way a row becomes visible, and
its event enters the outbox, exactly once.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from app.platform.database import Database
from app.platform.outages import OutageLog
from app.platform.timefmt import utc_now
from app.services.background import BackgroundLoop
from app.services.inbox_states import counts_moved
from app.services.notification_json import notification_view
from app.services.outbox import OutboxRelay, PendingEvent, write_events
from models.notifications import Notification

__all__ = ["ScheduledDelivery"]


_DUE = (
    "UPDATE notifications SET sent_at = {}, updated_at = {}, claimed_by = {} "
    "WHERE id IN (SELECT id FROM notifications WHERE sent_at IS NULL AND scheduled_for <= {} "
    "ORDER BY scheduled_for LIMIT {}%s) AND sent_at IS NULL RETURNING *"
)


class ScheduledDelivery:
    """Delivers due scheduled notifications, polling once a second."""

    def __init__(
        self,
        database: Database,
        relay: OutboxRelay,
        *,
        interval: float = 1.0,
        batch_size: int = 100,
        outages: OutageLog | None = None,
    ) -> None:
        self.database = database
        self.relay = relay
        self.interval = interval
        self.batch_size = batch_size
        self.process_name = f"{socket.gethostname()}:{os.getpid()}"[:64]
        self.delivered = 0
        self._sql = _DUE % ("" if database.is_sqlite else " FOR UPDATE SKIP LOCKED")
        self._loop = BackgroundLoop("scheduled-notifications", self._step, interval, outages=outages)

    async def start(self) -> None:
        """Start polling for due notifications."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop after the current batch."""
        await self._loop.stop()

    async def _step(self) -> bool:
        return await self.deliver_due() == self.batch_size

    async def deliver_due(self) -> int:
        """Make due notifications visible and queue their events; answers how many this process delivered."""
        now = utc_now()
        async with self.database.write():
            rows: list[dict[str, Any]] = await Notification.raw(
                self._sql, now, now, self.process_name, now, self.batch_size
            )
            # One stored archived at creation is kept out of the bell by its recipient's preferences: not pushed.
            in_app = [row for row in rows if row["archived_at"] is None]
            events = [
                PendingEvent(f"user:{row['user_id']}", "notification.created", notification_view(row)) for row in in_app
            ]
            users = list(dict.fromkeys(row["user_id"] for row in in_app))
            events.extend(PendingEvent(f"user:{user_id}", "notification.unread_count") for user_id in users)
            events.extend(await counts_moved(users))
            await write_events(events)
        if rows:
            self.delivered += len(rows)
            self.relay.wake()
        return len(rows)
