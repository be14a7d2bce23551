"""Delivering notifications on EMAIL, SMS and PUSH, with a record per (notification, medium).

A delivery is claimed by pushing its ``next_attempt_at`` one lease ahead in a conditional UPDATE, so
one process at a time attempts it. Failures are recorded (``attempts``, ``last_error``) and retried
with exponential backoff up to :data:`MAX_ATTEMPTS`, then marked FAILED. This path never blocks the
in-app one: the bell's row and event are committed before any sender runs.

The claiming process decides at send time, not at creation (SPEC "Preferences"): a delivery whose
medium the recipient has turned off (for this type, else altogether) is SKIPPED with reason
``preference``, and one of an escalating notification (``escalate_after_seconds``: it was created
due that long after) that the recipient has seen or read by then is SKIPPED with reason ``seen``.
The claim's lease is what makes that decision, like the send, happen once across processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from app.platform.database import Database
from app.platform.outages import OutageLog
from app.platform.timefmt import utc_now
from app.services.background import BackgroundLoop
from app.services.preferences import preferences_of
from app.services.senders import DeliveryFailed, Recipient, Sender
from models.catalog import User
from models.enums import DeliveryMedium, DeliveryStatus, NotificationPriority, NotificationType, SkipReason
from models.notifications import Notification, NotificationDelivery

__all__ = ["MAX_ATTEMPTS", "DeliveryDispatcher", "retry_delay"]


MAX_ATTEMPTS = 5
LEASE = timedelta(seconds=60)

_CLAIM = (
    "UPDATE notification_deliveries SET next_attempt_at = {}, attempts = attempts + 1, updated_at = {} "
    "WHERE id IN (SELECT d.id FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id "
    "WHERE d.status = 'PENDING' AND d.next_attempt_at <= {} AND n.sent_at IS NOT NULL "
    "ORDER BY d.next_attempt_at LIMIT {}) AND status = 'PENDING' AND next_attempt_at <= {} "
    "RETURNING id, notification_id, channel, attempts"
)


def retry_delay(attempts: int, base: float = 2.0) -> timedelta:
    """Exponential backoff after ``attempts`` failed tries: 2 s, 4 s, 8 s, ... capped at 10 minutes."""
    return timedelta(seconds=min(base * 2 ** (attempts - 1), 600))


class DeliveryDispatcher:
    """Claims due deliveries and hands them to their medium's sender."""

    def __init__(
        self,
        database: Database,
        senders: Mapping[str, Sender],
        *,
        interval: float = 1.0,
        batch_size: int = 20,
        base_delay: float = 2.0,
        outages: OutageLog | None = None,
    ) -> None:
        self.database = database
        self.senders = dict(senders)
        self.interval = interval
        self.batch_size = batch_size
        self.base_delay = base_delay
        self.sent = 0
        self.skipped = 0
        self.failed_attempts = 0
        self._loop = BackgroundLoop("notification-deliveries", self._step, interval, outages=outages)

    def wake(self) -> None:
        """Look for due deliveries now."""
        self._loop.wake()

    async def start(self) -> None:
        """Start dispatching (nothing to do without senders)."""
        if self.senders:
            self._loop.start()

    async def stop(self) -> None:
        """Stop after the current batch; a claimed delivery is retried after its lease."""
        await self._loop.stop()

    async def _step(self) -> bool:
        return await self.dispatch_due() == self.batch_size

    async def dispatch_due(self) -> int:
        """Attempt every due delivery once; answers how many were attempted."""
        now = utc_now()
        async with self.database.write():
            claimed: list[dict[str, Any]] = await NotificationDelivery.raw(
                _CLAIM, now + LEASE, now, now, self.batch_size, now
            )
        await asyncio.gather(*(self._attempt(delivery) for delivery in claimed))
        return len(claimed)

    async def _attempt(self, delivery: dict[str, Any]) -> None:
        notification = await Notification.select().where(Notification.id == delivery["notification_id"]).first()
        sender = self.senders.get(delivery["channel"])
        if notification is None or sender is None:
            await self._skip(delivery, SkipReason.UNCONFIGURED, "medium not configured in this process")
            return
        skipped = await self._skip_reason(notification, DeliveryMedium(delivery["channel"]))
        if skipped is not None:
            await self._skip(delivery, *skipped)
            return
        user = await User.select(User.id, User.email, User.name).where(User.id == notification["user_id"]).first()
        recipient = Recipient(
            user_id=notification["user_id"],
            email=user["email"] if user else None,
            name=user["name"] if user else None,
        )
        try:
            await sender.send(recipient, notification)
        except DeliveryFailed as exc:
            self.failed_attempts += 1
            if delivery["attempts"] >= MAX_ATTEMPTS:
                await self._finish(delivery["id"], DeliveryStatus.FAILED, str(exc))
            else:
                await self._retry(delivery["id"], delivery["attempts"], str(exc))
            return
        self.sent += 1
        await self._finish(delivery["id"], DeliveryStatus.SENT, None)

    @staticmethod
    async def _skip_reason(notification: dict[str, Any], medium: DeliveryMedium) -> tuple[SkipReason, str] | None:
        """Why this delivery must not be sent now, read at send time; None: send it."""
        user_id = notification["user_id"]
        preferences = (await preferences_of([user_id]))[user_id]
        type_, priority = NotificationType(notification["type"]), NotificationPriority(notification["priority"])
        if not preferences.allows(type_, medium, priority):
            return SkipReason.PREFERENCE, f"{medium.value} is turned off for {type_.value} by its recipient"
        if notification["escalate_after_seconds"] is not None and (
            notification["seen_at"] is not None or notification["read_at"] is not None
        ):
            return SkipReason.SEEN, "seen or read in the app before its escalation was due"
        return None

    async def _skip(self, delivery: dict[str, Any], reason: SkipReason, error: str) -> None:
        """Record a delivery as skipped; the claim counted an attempt that was never made, so it is taken back."""
        now = utc_now()
        async with self.database.write():
            await NotificationDelivery.update(
                {
                    NotificationDelivery.status: DeliveryStatus.SKIPPED.value,
                    NotificationDelivery.skip_reason: reason.value,
                    NotificationDelivery.attempts: delivery["attempts"] - 1,
                    NotificationDelivery.last_error: error,
                    NotificationDelivery.updated_at: now,
                    NotificationDelivery.next_attempt_at: None,
                }
            ).where(NotificationDelivery.id == delivery["id"])
        self.skipped += 1

    async def _finish(self, delivery_id: int, status: DeliveryStatus, error: str | None) -> None:
        now = utc_now()
        values: dict[Any, Any] = {
            NotificationDelivery.status: status.value,
            NotificationDelivery.last_error: error,
            NotificationDelivery.updated_at: now,
            NotificationDelivery.next_attempt_at: None,
        }
        if status is DeliveryStatus.SENT:
            values[NotificationDelivery.sent_at] = now
        async with self.database.write():
            await NotificationDelivery.update(values).where(NotificationDelivery.id == delivery_id)

    async def _retry(self, delivery_id: int, attempts: int, error: str) -> None:
        now = utc_now()
        async with self.database.write():
            await NotificationDelivery.update(
                {
                    NotificationDelivery.last_error: error,
                    NotificationDelivery.next_attempt_at: now + retry_delay(attempts, self.base_delay),
                    NotificationDelivery.updated_at: now,
                }
            ).where(NotificationDelivery.id == delivery_id)
