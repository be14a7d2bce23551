"""What became of a notification's deliveries (``GET /notifications/{id}/deliveries``, SPEC "Preferences").

A delivery row keeps its lifecycle ``status`` (what the dispatcher's claim reads) and, when SKIPPED,
a ``skip_reason``; SPEC's ``outcome`` is derived from the two by :data:`OUTCOMES`, the one table the
code and docs/notifications.md read. ``retrying`` is every delivery not final yet: ``attempts`` says
how many tries it had (0: waiting for its first, e.g. an escalation not yet due).
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.platform.errors import NotFound
from app.platform.timefmt import rfc3339
from models.enums import DeliveryMedium, DeliveryOutcome, DeliveryStatus, SkipReason
from models.notifications import Notification, NotificationDelivery

__all__ = ["OUTCOMES", "DeliveryRecord", "DeliveryRecords", "delivery_outcome", "delivery_records"]

OUTCOMES: dict[tuple[DeliveryStatus, SkipReason | None], DeliveryOutcome] = {
    (DeliveryStatus.PENDING, None): DeliveryOutcome.RETRYING,
    (DeliveryStatus.SENT, None): DeliveryOutcome.SENT,
    (DeliveryStatus.FAILED, None): DeliveryOutcome.FAILED,
    (DeliveryStatus.SKIPPED, SkipReason.PREFERENCE): DeliveryOutcome.SKIPPED_PREFERENCE,
    (DeliveryStatus.SKIPPED, SkipReason.SEEN): DeliveryOutcome.SKIPPED_SEEN,
    (DeliveryStatus.SKIPPED, SkipReason.UNCONFIGURED): DeliveryOutcome.SKIPPED_UNCONFIGURED,
    # Skipped before reasons were recorded (migration 2026-12-04T01): unconfigured was the only reason.
    (DeliveryStatus.SKIPPED, None): DeliveryOutcome.SKIPPED_UNCONFIGURED,
}


class DeliveryRecord(msgspec.Struct, frozen=True):
    """One medium's delivery: its outcome, the tries made, and when the record last changed (RFC 3339)."""

    channel: DeliveryMedium
    outcome: DeliveryOutcome
    attempts: int
    at: str


class DeliveryRecords(msgspec.Struct, frozen=True):
    """``{"items": [...]}``: one per EMAIL, SMS or PUSH the notification asked for, in the order it listed them."""

    items: list[DeliveryRecord]


def delivery_outcome(status: str, skip_reason: str | None) -> DeliveryOutcome:
    """SPEC's outcome of a delivery row."""
    state = DeliveryStatus(status)
    reason = SkipReason(skip_reason) if state is DeliveryStatus.SKIPPED and skip_reason else None
    return OUTCOMES[(state, reason)]


def _record(row: dict[str, Any]) -> DeliveryRecord:
    return DeliveryRecord(
        channel=DeliveryMedium(row["channel"]),
        outcome=delivery_outcome(row["status"], row["skip_reason"]),
        attempts=row["attempts"],
        at=rfc3339(row["updated_at"]) or "",
    )


async def delivery_records(notification_id: str) -> DeliveryRecords:
    """The deliveries of one notification, whoever it is for (the endpoint is for admins and services).

    Raises:
        NotFound: there is no such notification.
    """
    if not await Notification.exists().where(Notification.id == notification_id):
        raise NotFound(f"no notification {notification_id}")
    rows = (
        await NotificationDelivery.select()
        .where(NotificationDelivery.notification == notification_id)
        .order_by(NotificationDelivery.id)
    )
    return DeliveryRecords(items=[_record(row) for row in rows])
