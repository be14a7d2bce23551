"""The inbox behind the bell: create, list, read, seen, archive, count (SPEC "Notifications", "The inbox").

Every change writes its events to the outbox in the same transaction (see ``outbox.py``):
``notification.created`` with the whole notification, ``notification.read`` with the ids (or
``all``), ``notification.updated`` (see ``inbox_states.py``), and ``notification.unread_count``
and ``notification.counts``, computed when they are published so the last count a client
receives is never older than the last commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from app.platform.database import UNIQUE_VIOLATIONS, Database
from app.platform.errors import NotFound, ValidationFailed
from app.platform.ids import new_id
from app.platform.pagination import CursorCodec, Page, check_limit
from app.platform.timefmt import utc_now
from app.services.inbox_states import (
    VISIBLE,
    InboxAction,
    InboxCounts,
    apply_action,
    counts_moved,
    counts_version,
    inbox_counts_and_version,
)
from app.services.notification_json import NotificationView, notification_view
from app.services.outbox import OutboxRelay, PendingEvent, write_events
from app.services.preferences import preferences_of
from models.catalog import User
from models.enums import DeliveryMedium, DeliveryStatus, NotificationPriority, NotificationType, SkipReason
from models.notifications import Notification, NotificationDelivery

__all__ = ["Inbox", "NotificationDraft", "unread_count", "write_notifications"]

# The same rows as counts.unread (the notifications_inbox_unread index): an archived notification, and
# so one muted for IN_APP (stored archived), is in no count of the bell.
_COUNT_UNREAD = f"SELECT count(*) AS count FROM notifications WHERE user_id = {{}} AND is_read = false AND {VISIBLE}"


class NotificationDraft(msgspec.Struct, frozen=True, kw_only=True):
    """A notification to create; domain code builds these (see ``notification_catalog``)."""

    user_id: str
    type: NotificationType
    title: str
    message: str
    priority: NotificationPriority
    media: tuple[DeliveryMedium, ...] = (DeliveryMedium.IN_APP,)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    scheduled_for: datetime | None = None
    idempotency_key: str | None = None
    escalate_after_seconds: int | None = None


async def unread_count(user_id: str) -> int:
    """Exact count of the user's visible unread notifications (served by a partial index)."""
    rows = await Notification.raw(_COUNT_UNREAD, user_id)
    return int(rows[0]["count"])


def _user_of(channel: str) -> str:
    return channel.removeprefix("user:")


async def unread_count_event(channel: str) -> dict[str, int]:
    """Outbox resolver of ``notification.unread_count``: the count at publish time."""
    return {"count": await unread_count(_user_of(channel))}


async def write_notifications(
    drafts: Sequence[NotificationDraft], configured: frozenset[DeliveryMedium], now: datetime | None = None
) -> list[NotificationView]:
    """Insert notifications, their delivery records and their events; call inside a write transaction.

    The recipients' preferences are read here for ``IN_APP`` only (the row is written now): one the
    recipient keeps out of the bell is stored seen and archived, and sends no event, so it is neither
    counted nor pushed (``URGENT`` ones always reach the bell), and does not escalate (its EMAIL, SMS
    and PUSH are due at once: stored seen, it would otherwise always be skipped as seen). EMAIL, SMS
    and PUSH are decided when they are sent (``deliveries.py``). A delivery of a notification with
    ``escalate_after_seconds`` is due that long after the notification becomes visible.

    Args:
        drafts: what to create.
        configured: delivery channels with a configured sender; the others are recorded as skipped.
        now: the creation time (the caller's transaction time).
    """
    now = now or utc_now()
    preferences = await preferences_of(draft.user_id for draft in drafts)
    rows: list[Notification] = []
    deliveries: list[NotificationDelivery] = []
    events: list[PendingEvent] = []
    views: list[NotificationView] = []
    for draft in drafts:
        visible = draft.scheduled_for is None or draft.scheduled_for <= now
        in_app = preferences[draft.user_id].allows(draft.type, DeliveryMedium.IN_APP, draft.priority)
        if not in_app:
            # Escalation waits for the user to see it in the bell; kept out of the bell, there is nothing to wait for.
            draft = msgspec.structs.replace(draft, escalate_after_seconds=None)
        row = Notification(
            id=new_id("ntf"),
            user=draft.user_id,
            type=draft.type.value,
            title=draft.title,
            message=draft.message,
            channels=msgspec.json.encode([medium.value for medium in draft.media]).decode(),
            priority=draft.priority.value,
            metadata=msgspec.json.encode(draft.metadata).decode(),
            is_read=False,
            seen_at=None if in_app else now,
            archived_at=None if in_app else now,
            scheduled_for=draft.scheduled_for,
            sent_at=now if visible else None,
            idempotency_key=draft.idempotency_key,
            escalate_after_seconds=draft.escalate_after_seconds,
            created_at=now,
            updated_at=now,
        )
        rows.append(row)
        deliveries.extend(_delivery_records(draft, row, configured, now))
        view = notification_view(row.to_dict() | {"user_id": draft.user_id})
        views.append(view)
        if visible and in_app:
            events.append(PendingEvent(f"user:{draft.user_id}", "notification.created", view))
    await Notification.insert(*rows)
    if deliveries:
        await NotificationDelivery.insert(*deliveries)
    channels = list(dict.fromkeys(event.channel for event in events))
    events.extend(PendingEvent(channel, "notification.unread_count") for channel in channels)
    events.extend(await counts_moved([channel.removeprefix("user:") for channel in channels]))
    await write_events(events)
    return views


def _delivery_records(
    draft: NotificationDraft, row: Notification, configured: frozenset[DeliveryMedium], now: datetime
) -> list[NotificationDelivery]:
    """One record per medium beyond the bell: due when visible (plus the escalation), or skipped if unconfigured."""
    due: datetime | None = row.sent_at or draft.scheduled_for
    if due is not None and draft.escalate_after_seconds is not None:
        due += timedelta(seconds=draft.escalate_after_seconds)
    records = []
    for medium in draft.media:
        if medium is DeliveryMedium.IN_APP:
            continue
        pending = medium in configured
        records.append(
            NotificationDelivery(
                notification=row.id,
                channel=medium.value,
                status=(DeliveryStatus.PENDING if pending else DeliveryStatus.SKIPPED).value,
                skip_reason=None if pending else SkipReason.UNCONFIGURED.value,
                last_error=None if pending else f"{medium.value} is not configured",
                next_attempt_at=due if pending else None,
                created_at=now,
                updated_at=now,
            )
        )
    return records


class Inbox:
    """The notification rules the REST endpoints and the domain share."""

    def __init__(
        self, database: Database, relay: OutboxRelay, cursors: CursorCodec, configured: frozenset[DeliveryMedium]
    ) -> None:
        self.database = database
        self.relay = relay
        self.cursors = cursors
        self.configured = configured

    async def create(self, draft: NotificationDraft) -> tuple[NotificationView, bool]:
        """Create one notification; answers it and whether it is new (False: an idempotent repeat).

        Raises:
            ValidationFailed: the user is unknown (has never signed in).
        """
        if draft.idempotency_key is not None:
            existing = await self._by_idempotency_key(draft.user_id, draft.idempotency_key)
            if existing is not None:
                return existing, False
        if not await User.exists().where(User.id == draft.user_id):
            raise ValidationFailed([("userId", f"unknown user {draft.user_id!r}: users appear on first sign-in")])
        try:
            async with self.database.write():
                (view,) = await write_notifications([draft], self.configured)
        except UNIQUE_VIOLATIONS:
            # A concurrent create with the same idempotency key won the unique index: answer that one.
            if draft.idempotency_key is not None:
                existing = await self._by_idempotency_key(draft.user_id, draft.idempotency_key)
                if existing is not None:
                    return existing, False
            raise
        self.relay.wake()
        return view, True

    async def _by_idempotency_key(self, user_id: str, key: str) -> NotificationView | None:
        row = (
            await Notification.select(*Notification.all_columns(), Notification.user.as_alias("user_id"))
            .where((Notification.user == user_id) & (Notification.idempotency_key == key))
            .first()
        )
        return notification_view(row) if row is not None else None

    async def list(
        self,
        user_id: str,
        *,
        unread: bool | None = None,
        seen: bool | None = None,
        archived: bool = False,
        type: NotificationType | None = None,
        priority: NotificationPriority | None = None,
        cursor: str | None = None,
        limit: int = 20,
    ) -> Page[NotificationView]:
        """Visible notifications, newest first, keyset-paginated on ``(createdAt, id)``.

        Not archived by default (``notifications_inbox`` is that keyset), the archived ones alone with
        ``archived=True`` (``notifications_user_created``).
        """
        limit = check_limit(limit)
        archived_sql = "AND archived_at IS NOT NULL" if archived else "AND archived_at IS NULL"
        sql = ["SELECT * FROM notifications WHERE user_id = {} AND sent_at IS NOT NULL", archived_sql]
        args: list[Any] = [user_id]
        if seen is not None:
            sql.append("AND seen_at IS NOT NULL" if seen else "AND seen_at IS NULL")
        if unread is not None:
            sql.append("AND is_read = {}")
            args.append(not unread)
        if type is not None:
            sql.append("AND type = {}")
            args.append(type.value)
        if priority is not None:
            sql.append("AND priority = {}")
            args.append(priority.value)
        if cursor is not None:
            created_at, last_id = self.cursors.decode(cursor, 2)
            sql.append("AND (created_at, id) < ({}, {})")
            args.extend([datetime.fromisoformat(str(created_at)), str(last_id)])
        sql.append("ORDER BY created_at DESC, id DESC LIMIT {}")
        args.append(limit + 1)
        rows = await Notification.raw(" ".join(sql), *args)
        items = [notification_view(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = self.cursors.encode([last["created_at"].isoformat(), last["id"]])
        return Page(items=items, next_cursor=next_cursor)

    async def mark_read(self, user_id: str, notification_id: str) -> NotificationView:
        """Mark one read, and so seen (idempotent); 404 when absent, not visible yet, or not the caller's."""
        return await self.change_one(user_id, notification_id, InboxAction.READ)

    async def mark_all_read(self, user_id: str) -> int:
        """Mark every visible unread notification read in one statement; answers how many changed.

        A notification committed while this runs is either updated here (and counted) or left unread
        and counted by the unread count published after it: never lost between the two.
        """
        return await self.change_all(user_id, InboxAction.READ)

    async def change_one(self, user_id: str, notification_id: str, action: InboxAction) -> NotificationView:
        """Apply ``action`` to one notification (idempotent) and answer it.

        Raises:
            NotFound: absent, not visible yet, or not the caller's.
        """
        await self._apply(user_id, action, ids=[notification_id])
        row = (
            await Notification.select(*Notification.all_columns(), Notification.user.as_alias("user_id"))
            .where((Notification.id == notification_id) & (Notification.user == user_id))
            .where(Notification.sent_at.is_not_null())
            .first()
        )
        if row is None:
            raise NotFound(f"no notification {notification_id}")
        return notification_view(row)

    async def change_all(self, user_id: str, action: InboxAction, *, only_read: bool = False) -> int:
        """Apply ``action`` to all the caller's notifications (``only_read``: the read ones); answers the changed."""
        return await self._apply(user_id, action, only_read=only_read)

    async def change_many(self, user_id: str, ids: Sequence[str], action: InboxAction) -> int:
        """Apply ``action`` to those of ``ids`` that are the caller's (others skipped); answers how many changed."""
        return await self._apply(user_id, action, ids=tuple(dict.fromkeys(ids)))

    async def counts(self, user_id: str) -> tuple[InboxCounts, int]:
        """The caller's ``unseen``, ``unread`` and ``total`` (not-archived, visible) and their inbox version."""
        return await inbox_counts_and_version(user_id)

    async def counts_version(self, user_id: str) -> int:
        """The version of the caller's counts: unchanged means the counts are (the ETag of ``/counts``)."""
        return await counts_version(user_id)

    async def _apply(
        self, user_id: str, action: InboxAction, *, ids: Sequence[str] | None = None, only_read: bool = False
    ) -> int:
        """Apply in one write transaction with its events; answers how many rows changed."""
        async with self.database.write():
            changed = await apply_action(
                user_id, action, utc_now(), ids=ids, only_read=only_read, lock_rows=not self.database.is_sqlite
            )
        if changed:
            self.relay.wake()
        return len(changed)
