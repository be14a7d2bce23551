"""A notification as REST and the ``notification.created`` event show it (SPEC "Notifications")."""

from __future__ import annotations

from typing import Any

import msgspec

from app.platform.timefmt import rfc3339

__all__ = ["NotificationView", "notification_view"]


class NotificationView(msgspec.Struct, frozen=True, rename="camel"):
    """``id, userId, type, title, message, channels[], priority, metadata, isRead, scheduledFor, sentAt, createdAt,
    updatedAt`` and the inbox's ``isSeen, seenAt, readAt, archivedAt``; ``channels`` and ``metadata`` pass through
    as the JSON stored, never decoded."""

    id: str
    user_id: str
    type: str
    title: str
    message: str
    channels: msgspec.Raw
    priority: str
    metadata: msgspec.Raw
    is_read: bool
    scheduled_for: str | None
    sent_at: str | None
    created_at: str
    updated_at: str
    is_seen: bool = False
    seen_at: str | None = None
    read_at: str | None = None
    archived_at: str | None = None


def _raw(value: Any) -> msgspec.Raw:
    if isinstance(value, str):
        return msgspec.Raw(value.encode())
    return msgspec.Raw(msgspec.json.encode(value))


def notification_view(row: dict[str, Any]) -> NotificationView:
    """The view of a ``notifications`` row (as Piccolo or raw SQL returns it)."""
    return NotificationView(
        id=row["id"],
        user_id=row["user_id"] if "user_id" in row else row["user"],
        type=row["type"],
        title=row["title"],
        message=row["message"],
        channels=_raw(row["channels"]),
        priority=row["priority"],
        metadata=_raw(row["metadata"]),
        is_read=bool(row["is_read"]),
        scheduled_for=rfc3339(row["scheduled_for"]),
        sent_at=rfc3339(row["sent_at"]),
        created_at=rfc3339(row["created_at"]) or "",
        updated_at=rfc3339(row["updated_at"]) or "",
        is_seen=row.get("seen_at") is not None,
        seen_at=rfc3339(row.get("seen_at")),
        read_at=rfc3339(row.get("read_at")),
        archived_at=rfc3339(row.get("archived_at")),
    )
