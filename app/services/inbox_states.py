"""The inbox states of a notification (SPEC "The inbox"): seen, read, archived, and the actions between them.

:data:`TRANSITIONS` is the one table the code and docs/notifications.md read. An action is a short
list of flag changes; each flag change is one ``UPDATE ... WHERE <the flag is not already so>
RETURNING id``, so a row whose state does not change is neither counted in ``{"updated": n}`` nor
announced, and a repeated call answers 0 and writes no event.

=========== ============================== ======================================================
action      flag changes, in order         columns written
=========== ============================== ======================================================
``seen``    isSeen true                    ``seen_at``
``read``    isSeen true, then isRead true  ``seen_at`` (reading also marks seen), ``is_read``, ``read_at``
``unread``  isRead false                   ``is_read``, ``read_at`` (cleared; it stays seen)
``archive`` isArchived true                ``archived_at``
``unarchive`` isArchived false             ``archived_at`` (cleared)
=========== ============================== ======================================================

Every change writes, in its own transaction: ``notification.read`` when rows became read (as
before the inbox), ``notification.updated`` with the ids (or ``all``) and the flags that changed,
``notification.unread_count`` when read state changed, and ``notification.counts``. The two counts
are resolved when published (see ``outbox.py``), so the last count a client gets is never stale.

Whatever moves a user's counts (a create, a scheduled notification coming due, a state change)
announces it through :func:`counts_moved`, which also bumps ``users.inbox_version`` in the same
transaction. The version is the ETag of ``GET /notifications/counts``: a poll whose
``If-None-Match`` still names it is a 304 after one primary-key read, without counting anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

import msgspec

from app.services.outbox import PendingEvent, write_events
from models.catalog import User
from models.notifications import Notification

__all__ = [
    "TRANSITIONS",
    "VISIBLE",
    "FlagChange",
    "InboxAction",
    "InboxCounts",
    "NotificationsUpdated",
    "apply_action",
    "counts_event",
    "counts_moved",
    "counts_version",
    "inbox_counts",
    "inbox_counts_and_version",
]

IDS_PER_EVENT = 500  # ~20 KiB of ids: well inside EVENT_MAX_BYTES' 64 KiB default
VISIBLE = "archived_at IS NULL AND sent_at IS NOT NULL"  # the predicate of the inbox indexes (the migration's)
_COUNTS = (
    "SELECT"
    f" (SELECT count(*) FROM notifications WHERE user_id = {{}} AND seen_at IS NULL AND {VISIBLE}) AS unseen,"
    f" (SELECT count(*) FROM notifications WHERE user_id = {{}} AND is_read = false AND {VISIBLE}) AS unread,"
    f" (SELECT count(*) FROM notifications WHERE user_id = {{}} AND {VISIBLE}) AS total,"
    " (SELECT inbox_version FROM users WHERE id = {}) AS version"
)


_VERSION = "SELECT inbox_version FROM users WHERE id = {}"


class InboxAction(StrEnum):
    """What a user does to notifications (``PATCH /notifications/bulk``'s ``action``)."""

    READ = "read"
    UNREAD = "unread"
    SEEN = "seen"
    ARCHIVE = "archive"
    UNARCHIVE = "unarchive"


class FlagChange(msgspec.Struct, frozen=True):
    """One flag set to one value: the SQL that sets it and the condition of the rows it changes.

    ``assign`` takes the transaction's time for each ``{}``.
    """

    flag: str
    value: bool
    assign: str
    changes: str


SEEN = FlagChange("isSeen", True, "seen_at = {}", "seen_at IS NULL")
READ = FlagChange("isRead", True, "is_read = true, read_at = {}", "is_read = false")
UNREAD = FlagChange("isRead", False, "is_read = false, read_at = NULL", "is_read = true")
ARCHIVE = FlagChange("isArchived", True, "archived_at = {}", "archived_at IS NULL")
UNARCHIVE = FlagChange("isArchived", False, "archived_at = NULL", "archived_at IS NOT NULL")

TRANSITIONS: dict[InboxAction, tuple[FlagChange, ...]] = {
    InboxAction.SEEN: (SEEN,),
    InboxAction.READ: (SEEN, READ),
    InboxAction.UNREAD: (UNREAD,),
    InboxAction.ARCHIVE: (ARCHIVE,),
    InboxAction.UNARCHIVE: (UNARCHIVE,),
}


class InboxCounts(msgspec.Struct, frozen=True):
    """``{"unseen", "unread", "total"}`` over the not-archived visible notifications."""

    unseen: int
    unread: int
    total: int


class NotificationsUpdated(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"):
    """``notification.updated``: ``ids`` or ``all``, and only the flags that changed (their new value)."""

    ids: list[str] | msgspec.UnsetType = msgspec.UNSET
    all: bool | msgspec.UnsetType = msgspec.UNSET
    is_seen: bool | msgspec.UnsetType = msgspec.UNSET
    is_read: bool | msgspec.UnsetType = msgspec.UNSET
    is_archived: bool | msgspec.UnsetType = msgspec.UNSET


async def inbox_counts(user_id: str) -> InboxCounts:
    """The three counts in one statement (one snapshot), each served by a partial index."""
    return (await inbox_counts_and_version(user_id))[0]


async def inbox_counts_and_version(user_id: str) -> tuple[InboxCounts, int]:
    """The counts and the inbox version they belong to, read in one statement (one snapshot)."""
    rows = await Notification.raw(_COUNTS, user_id, user_id, user_id, user_id)
    row = rows[0]
    counts = InboxCounts(unseen=int(row["unseen"]), unread=int(row["unread"]), total=int(row["total"]))
    return counts, int(row["version"] or 0)


async def counts_version(user_id: str) -> int:
    """The user's inbox version: it changes whenever one of their counts may have (see the module's doc)."""
    rows = await User.raw(_VERSION, user_id)  # raw: Piccolo's query building cost more than the read
    return int(rows[0]["inbox_version"]) if rows else 0


async def counts_moved(user_ids: Sequence[str]) -> list[PendingEvent]:
    """Bump these users' inbox versions and answer their ``notification.counts`` events; call inside the write.

    The rows are updated in id order, as every writer does, so two writers never wait on each other
    in a circle.
    """
    users = sorted(set(user_ids))
    if not users:
        return []
    await User.update({User.inbox_version: User.inbox_version + 1}, force=True).where(User.id.is_in(users))
    return [PendingEvent(f"user:{user_id}", "notification.counts") for user_id in users]


async def counts_event(channel: str) -> InboxCounts:
    """Outbox resolver of ``notification.counts``: the counts at publish time."""
    return await inbox_counts(channel.removeprefix("user:"))


def _updated(ids: list[str] | None, flags: dict[str, bool]) -> list[NotificationsUpdated]:
    """One event for ``all``, else one per :data:`IDS_PER_EVENT` ids."""
    flagged = NotificationsUpdated(
        is_seen=flags.get("isSeen", msgspec.UNSET),
        is_read=flags.get("isRead", msgspec.UNSET),
        is_archived=flags.get("isArchived", msgspec.UNSET),
    )
    if ids is None:
        return [msgspec.structs.replace(flagged, all=True)]
    return [
        msgspec.structs.replace(flagged, ids=ids[start : start + IDS_PER_EVENT])
        for start in range(0, len(ids), IDS_PER_EVENT)
    ]


async def apply_action(
    user_id: str,
    action: InboxAction,
    now: datetime,
    *,
    ids: Sequence[str] | None = None,
    only_read: bool = False,
    lock_rows: bool = False,
) -> list[str]:
    """Apply ``action`` to the user's visible notifications and write its events; call inside a write transaction.

    Args:
        user_id: whose notifications; rows of anyone else are never touched (bulk skips them).
        action: what to do.
        now: the transaction's time, written to the timestamps it sets.
        ids: only these (None: all the user's notifications).
        only_read: only those already read (``archive-all?read=true``).
        lock_rows: first lock the rows the action may change, in primary-key order, and change only
            those (PostgreSQL). Two multi-row UPDATEs lock rows in their own scan order and can
            deadlock; so can an UPDATE that finds rows committed into its condition after the lock
            phase. Locking in one order and updating only what was locked leaves no cycle; a row
            changed concurrently is simply ordered after this change.

    Returns:
        The ids whose state changed, each once.
    """
    scope = ["user_id = {}", "sent_at IS NOT NULL"]
    args: list[object] = [user_id]
    if ids is not None:
        if not ids:
            return []
        scope.append(f"id IN ({', '.join('{}' for _ in ids)})")
        args.extend(ids)
    if only_read:
        scope.append("is_read = true")
    changes = TRANSITIONS[action]
    if lock_rows:
        candidates = " OR ".join(change.changes for change in changes)
        locked = await Notification.raw(
            f"SELECT id FROM notifications WHERE {' AND '.join(scope)} AND ({candidates}) ORDER BY id FOR UPDATE", *args
        )
        if not locked:
            return []
        scope, args = ["id = ANY({})"], [[row["id"] for row in locked]]
    changed: dict[str, None] = {}
    flags: dict[str, bool] = {}
    became_read: list[str] = []
    for change in changes:
        rows = await Notification.raw(
            f"UPDATE notifications SET {change.assign}, updated_at = {{}} "
            f"WHERE {' AND '.join(scope)} AND {change.changes} RETURNING id",
            *([now] * change.assign.count("{}")),
            now,
            *args,
        )
        if rows:
            flags[change.flag] = change.value
            changed.update((row["id"], None) for row in rows)
            if change is READ:
                became_read = [row["id"] for row in rows]
    if changed:
        events = _events(user_id, list(changed), flags, became_read, every=ids is None and not only_read)
        events.extend(await counts_moved([user_id]))  # every flag moves at least one of the counts
        await write_events(events)
    return list(changed)


def _events(
    user_id: str, changed: list[str], flags: dict[str, bool], became_read: list[str], *, every: bool
) -> list[PendingEvent]:
    channel = f"user:{user_id}"
    events: list[PendingEvent] = []
    if became_read:
        # As before the inbox, for the clients that know only notification.read.
        events.append(PendingEvent(channel, "notification.read", {"all": True} if every else {"ids": became_read}))
    updates = _updated(None if every else changed, flags)
    events.extend(PendingEvent(channel, "notification.updated", data) for data in updates)
    if "isRead" in flags or "isArchived" in flags:  # unread-count leaves archived ones out
        events.append(PendingEvent(channel, "notification.unread_count"))
    return events
