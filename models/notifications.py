"""In-app notifications: the inbox behind the bell."""

from __future__ import annotations

from piccolo.columns import JSON, BigSerial, Boolean, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from models.catalog import User

__all__ = ["Notification", "NotificationDelivery", "NotificationPreferences", "OutboxEvent"]


class Notification(Table, tablename="notifications"):
    """One notification; invisible until ``sent_at`` is set (at once, or when ``scheduled_for`` is due).

    ``channels`` and ``metadata`` are JSON and never filtered on in SQL. ``claimed_by`` names the
    server process that delivered a scheduled notification. ``seen_at``, ``read_at`` and
    ``archived_at`` are the inbox states (SPEC "The inbox"); ``is_read`` stays, always equal to
    ``read_at IS NOT NULL``, for the clients and the index that read it.
    """

    id = Varchar(length=40, primary_key=True)
    user = ForeignKey(references=User, db_column_name="user_id")
    type = Varchar(length=32)
    title = Text()
    message = Text()
    channels = JSON()
    priority = Varchar(length=8)
    metadata = JSON()
    is_read = Boolean(default=False)
    seen_at = Timestamptz(null=True, default=None)
    read_at = Timestamptz(null=True, default=None)
    archived_at = Timestamptz(null=True, default=None)
    scheduled_for = Timestamptz(null=True, default=None)
    sent_at = Timestamptz(null=True, default=None)
    claimed_by = Varchar(length=64, null=True, default=None)
    idempotency_key = Varchar(length=128, null=True, default=None)
    escalate_after_seconds = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class NotificationDelivery(Table, tablename="notification_deliveries"):
    """The delivery of one notification on one channel beyond the in-app bell (EMAIL, SMS, PUSH).

    ``status`` is the lifecycle the dispatcher's claim reads (PENDING, SENT, FAILED, SKIPPED);
    ``skip_reason`` says why a SKIPPED one was skipped. SPEC's ``outcome`` is derived from the two
    (``app.services.delivery_records``).
    """

    id = BigSerial(primary_key=True)
    notification = ForeignKey(references=Notification, db_column_name="notification_id")
    channel = Varchar(length=8)
    status = Varchar(length=8)
    attempts = Integer(default=0)
    last_error = Text(null=True, default=None)
    next_attempt_at = Timestamptz(null=True, default=None)
    sent_at = Timestamptz(null=True, default=None)
    skip_reason = Varchar(length=16, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class NotificationPreferences(Table, tablename="notification_preferences"):
    """One user's notification preferences (SPEC "Preferences"): JSON of ``preferences.DeliveryPreferences``.

    No row means everything on. ``user_id`` references ``users`` in the schema (the migration).
    """

    user_id = Varchar(length=64, primary_key=True)
    preferences = JSON()
    updated_at = Timestamptz(default=TimestamptzNow())


class OutboxEvent(Table, tablename="outbox"):
    """An event to publish, written in the transaction of the change it announces (the transactional outbox)."""

    id = BigSerial(primary_key=True)
    channel = Varchar(length=80)
    type = Varchar(length=64)
    data = JSON(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(null=True, default=None)
    attempts = Integer(default=0)
