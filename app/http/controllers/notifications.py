"""Notifications REST (SPEC "Notifications", "The inbox", "Preferences"): always the caller's own; creation and
deliveries for admins and services.

The static paths (``/counts``, ``/seen-all``, ``/bulk``, ``/preferences`` ...) are one segment deep and
the per-notification ones (``/{id}/read``, ``/{id}/deliveries`` ...) two, so no static path can be
taken for an id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Controller, Request, Response, get, patch, post, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody

from app.http.openapi import problems
from app.platform.auth import Identity, require_roles
from app.platform.errors import ValidationFailed
from app.platform.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from app.services.delivery_records import DeliveryRecords, delivery_records
from app.services.inbox_states import InboxAction, InboxCounts
from app.services.notification_json import NotificationView
from app.services.notifications import Inbox, NotificationDraft, unread_count
from app.services.preferences import DeliveryPreferences, DeliveryPreferencesChange, PreferencesStore
from models.enums import DeliveryMedium, NotificationPriority, NotificationType, Role

__all__ = ["BulkChange", "CreateNotification", "NotificationsController"]


MAX_METADATA_BYTES = 16 * 1024


class CreateNotification(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """Body of ``POST /notifications`` (SPEC bounds: title 1..200 characters, message 4,000, metadata 16 KiB)."""

    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    type: NotificationType
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    message: Annotated[str, msgspec.Meta(max_length=4000)]
    priority: NotificationPriority = NotificationPriority.LOW
    channels: Annotated[
        list[DeliveryMedium],
        # "extra" is how Litestar takes schema keywords msgspec has no constraint for (uniqueItems).
        msgspec.Meta(min_length=1, max_length=len(DeliveryMedium), extra_json_schema={"extra": {"unique_items": True}}),
    ] = msgspec.field(default_factory=lambda: [DeliveryMedium.IN_APP])
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    scheduled_for: datetime | None = None
    escalate_after_seconds: Annotated[int, msgspec.Meta(ge=1, le=86400)] | None = None

    def problems(self) -> list[tuple[str, str]]:
        """What the types cannot say: channels are a set, metadata has a size, a schedule has a zone."""
        errors: list[tuple[str, str]] = []
        if len(set(self.channels)) != len(self.channels):
            errors.append(("channels", "each channel at most once"))
        if len(msgspec.json.encode(self.metadata)) > MAX_METADATA_BYTES:
            errors.append(("metadata", f"at most {MAX_METADATA_BYTES} bytes of JSON"))
        if self.scheduled_for is not None and self.scheduled_for.tzinfo is None:
            errors.append(("scheduledFor", "needs a UTC offset, e.g. 2026-01-02T03:04:05Z"))
        return errors


class BulkChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Body of ``PATCH /notifications/bulk``: 1..100 ids and what to do to them.

    The ids themselves are not constrained: one that is no notification of the caller's (empty,
    unknown, someone else's) is skipped like any other (SPEC), and the body limit bounds their size.
    """

    ids: Annotated[list[str], msgspec.Meta(min_length=1, max_length=100)]
    action: InboxAction


class UnreadCount(msgspec.Struct, frozen=True):
    """``{"count": n}``."""

    count: int


class Updated(msgspec.Struct, frozen=True):
    """``{"updated": n}``."""

    updated: int


Body = TypeVar("Body")
NOT_MODIFIED = {304: ResponseSpec(None, description="Not modified: the counts are those of the ETag sent")}


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}
    return etag in candidates or "*" in candidates


def _conditional(body: Body, etag: str, if_none_match: str | None) -> Response[Body | None]:
    """``body`` with its ETag, or an empty 304 when the client already holds that ETag (cheap polling)."""
    if _matches(if_none_match, etag):
        return _not_modified(etag)
    return Response(body, headers=_validator_headers(etag))


def _not_modified(etag: str) -> Response[Any]:
    return Response(None, status_code=304, headers=_validator_headers(etag))


def _validator_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": "private, no-cache"}


def _counts_tag(version: int) -> str:
    """``/counts``'s ETag: the inbox version, which changes with every change to any of the three counts."""
    return f'"counts-v{version}"'


IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match")]


class NotificationsController(Controller):
    """The bell: list, counts, seen, read, unread, archive (one, all, bulk); and creation by admins and services."""

    path = "/notifications"
    tags = ("notifications",)

    @get("/", summary="The caller's notifications, newest first")
    async def list_notifications(
        self,
        request: Request[Identity, Any, Any],
        inbox: NamedDependency[Inbox],
        unread: FromQuery[bool | None] = None,
        seen: FromQuery[bool | None] = None,
        archived: FromQuery[bool] = False,
        type: FromQuery[NotificationType | None] = None,
        priority: FromQuery[NotificationPriority | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[NotificationView]:
        return await inbox.list(
            request.user.user_id,
            unread=unread,
            seen=seen,
            archived=archived,
            type=type,
            priority=priority,
            cursor=cursor,
            limit=limit,
        )

    @get("/unread-count", summary="Exact unread count, with ETag / If-None-Match (304)", responses=NOT_MODIFIED)
    async def unread_count(
        self, request: Request[Identity, Any, Any], if_none_match: IfNoneMatch = None
    ) -> Response[UnreadCount | None]:
        count = await unread_count(request.user.user_id)
        return _conditional(UnreadCount(count), f'"unread-{count}"', if_none_match)

    @get(
        "/counts",
        summary="Exact unseen, unread and total of the not-archived, with ETag / If-None-Match (304)",
        responses=NOT_MODIFIED,
    )
    async def counts(
        self, request: Request[Identity, Any, Any], inbox: NamedDependency[Inbox], if_none_match: IfNoneMatch = None
    ) -> Response[InboxCounts | None]:
        user_id = request.user.user_id
        if if_none_match is not None:  # a poll: one primary-key read decides, nothing is counted
            etag = _counts_tag(await inbox.counts_version(user_id))
            if _matches(if_none_match, etag):
                return _not_modified(etag)
        counts, version = await inbox.counts(user_id)
        return _conditional(counts, _counts_tag(version), if_none_match)

    @patch("/read-all", summary="Mark every notification read")
    async def read_all(self, request: Request[Identity, Any, Any], inbox: NamedDependency[Inbox]) -> Updated:
        return Updated(await inbox.mark_all_read(request.user.user_id))

    @patch("/seen-all", summary="Mark every notification seen")
    async def seen_all(self, request: Request[Identity, Any, Any], inbox: NamedDependency[Inbox]) -> Updated:
        return Updated(await inbox.change_all(request.user.user_id, InboxAction.SEEN))

    @patch("/archive-all", summary="Archive every notification (read=true: only the read ones)")
    async def archive_all(
        self, request: Request[Identity, Any, Any], inbox: NamedDependency[Inbox], read: FromQuery[bool] = False
    ) -> Updated:
        return Updated(await inbox.change_all(request.user.user_id, InboxAction.ARCHIVE, only_read=read))

    @patch("/bulk", summary="Apply one action to 1..100 notifications; ids that are not the caller's are skipped")
    async def bulk(
        self, request: Request[Identity, Any, Any], inbox: NamedDependency[Inbox], data: JSONBody[BulkChange]
    ) -> Updated:
        return Updated(await inbox.change_many(request.user.user_id, data.ids, data.action))

    @get("/preferences", summary="The caller's preferences by channel and type (everything on until changed)")
    async def get_preferences(
        self, request: Request[Identity, Any, Any], preferences: NamedDependency[PreferencesStore]
    ) -> DeliveryPreferences:
        return await preferences.get(request.user.user_id)

    @put("/preferences", summary="Replace the caller's preferences (omitted channels on, omitted types not overridden)")
    async def put_preferences(
        self,
        request: Request[Identity, Any, Any],
        preferences: NamedDependency[PreferencesStore],
        data: JSONBody[DeliveryPreferences],
    ) -> DeliveryPreferences:
        return await preferences.replace(request.user.user_id, data)

    @patch("/preferences", summary="Change some of the caller's preferences; types merge channel by channel")
    async def patch_preferences(
        self,
        request: Request[Identity, Any, Any],
        preferences: NamedDependency[PreferencesStore],
        data: JSONBody[DeliveryPreferencesChange],
    ) -> DeliveryPreferences:
        return await preferences.change(request.user.user_id, data)

    @get(
        "/{notification_id:str}/deliveries",
        guards=[require_roles(Role.ADMIN, Role.SERVICE)],
        summary="What became of a notification's EMAIL, SMS and PUSH deliveries (admin, service)",
    )
    async def deliveries(self, notification_id: FromPath[str]) -> DeliveryRecords:
        return await delivery_records(notification_id)

    @patch("/{notification_id:str}/read", summary="Mark one notification read, and so seen (idempotent)")
    async def read_one(
        self, request: Request[Identity, Any, Any], inbox: NamedDependency[Inbox], notification_id: FromPath[str]
    ) -> NotificationView:
        return await inbox.mark_read(request.user.user_id, notification_id)

    @patch("/{notification_id:str}/unread", summary="Mark one notification unread (idempotent; it stays seen)")
    async def unread_one(
        self, request: Request[Identity, Any, Any], inbox: NamedDependency[Inbox], notification_id: FromPath[str]
    ) -> NotificationView:
        return await inbox.change_one(request.user.user_id, notification_id, InboxAction.UNREAD)

    @patch("/{notification_id:str}/archive", summary="Archive one notification (idempotent)")
    async def archive_one(
        self, request: Request[Identity, Any, Any], inbox: NamedDependency[Inbox], notification_id: FromPath[str]
    ) -> NotificationView:
        return await inbox.change_one(request.user.user_id, notification_id, InboxAction.ARCHIVE)

    @patch("/{notification_id:str}/unarchive", summary="Bring one archived notification back (idempotent)")
    async def unarchive_one(
        self, request: Request[Identity, Any, Any], inbox: NamedDependency[Inbox], notification_id: FromPath[str]
    ) -> NotificationView:
        return await inbox.change_one(request.user.user_id, notification_id, InboxAction.UNARCHIVE)

    @post(
        "/",
        guards=[require_roles(Role.ADMIN, Role.SERVICE)],
        summary="Create a notification for a user (admin, service); Idempotency-Key makes retries safe",
        responses={200: ResponseSpec(NotificationView, description="A repeat of an Idempotency-Key: the first one")},
        opt=problems(422),
    )
    async def create(
        self,
        data: JSONBody[CreateNotification],
        inbox: NamedDependency[Inbox],
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", min_length=1, max_length=128)
        ] = None,
    ) -> Response[NotificationView]:
        problems = data.problems()
        if problems:
            raise ValidationFailed(problems, status=400)
        draft = NotificationDraft(
            user_id=data.user_id,
            type=data.type,
            title=data.title,
            message=data.message,
            priority=data.priority,
            media=tuple(data.channels),
            metadata=data.metadata,
            scheduled_for=data.scheduled_for,
            idempotency_key=idempotency_key,
            escalate_after_seconds=data.escalate_after_seconds,
        )
        view, created = await inbox.create(draft)
        return Response(view, status_code=201 if created else 200)
