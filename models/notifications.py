"""In-app notifications: the inbox behind the bell."""

from __future__ import annotations

from piccolo.columns import JSON, Boolean, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from models.catalog import User

__all__ = ["Notification"]


class Notification(Table, tablename="notifications"):
    """One notification; invisible until ``sent_at`` is set (at once, or when ``scheduled_for`` is due).

    ``channels`` and ``metadata`` are JSON and never filtered on in SQL. ``claimed_by`` and
    ``claimed_until`` let one server process at a time deliver a scheduled notification.
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
    scheduled_for = Timestamptz(null=True, default=None)
    sent_at = Timestamptz(null=True, default=None)
    claimed_by = Varchar(length=64, null=True, default=None)
    claimed_until = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
