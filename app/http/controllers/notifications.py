"""Notifications REST (SPEC "Notifications"): always the caller's own; creation for admins and services."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody

from app.http.openapi import problems
from app.platform.auth import Identity, require_roles
from app.platform.errors import ValidationFailed
from app.platform.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from app.services.notification_json import NotificationView
from app.services.notifications import Inbox, NotificationDraft, unread_count
from models.enums import DeliveryMedium, NotificationPriority, NotificationType, Role

__all__ = ["CreateNotification", "NotificationsController"]


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


class UnreadCount(msgspec.Struct, frozen=True):
    """``{"count": n}``."""

    count: int


class Updated(msgspec.Struct, frozen=True):
    """``{"updated": n}``."""

    updated: int


def _etag(count: int) -> str:
    return f'"unread-{count}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}
    return etag in candidates or "*" in candidates


class NotificationsController(Controller):
    """The bell: list, unread count, mark read; and creation by admins and services."""

    path = "/notifications"
    tags = ("notifications",)

    @get("/", summary="The caller's notifications, newest first")
    async def list_notifications(
        self,
        request: Request[Identity, Any, Any],
        inbox: NamedDependency[Inbox],
        unread: FromQuery[bool | None] = None,
        type: FromQuery[NotificationType | None] = None,
        priority: FromQuery[NotificationPriority | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[NotificationView]:
        return await inbox.list(
            request.user.user_id, unread=unread, type=type, priority=priority, cursor=cursor, limit=limit
        )

    @get(
        "/unread-count",
        summary="Exact unread count, with ETag / If-None-Match (304)",
        responses={304: ResponseSpec(None, description="Not modified: the count is the one of the ETag sent")},
    )
    async def unread_count(
        self,
        request: Request[Identity, Any, Any],
        if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
    ) -> Response[UnreadCount | None]:
        count = await unread_count(request.user.user_id)
        etag = _etag(count)
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if _matches(if_none_match, etag):
            return Response(None, status_code=304, headers=headers)
        return Response(UnreadCount(count), headers=headers)

    @patch("/read-all", summary="Mark every notification read")
    async def read_all(self, request: Request[Identity, Any, Any], inbox: NamedDependency[Inbox]) -> Updated:
        return Updated(await inbox.mark_all_read(request.user.user_id))

    @patch("/{notification_id:str}/read", summary="Mark one notification read (idempotent)")
    async def read_one(
        self, request: Request[Identity, Any, Any], inbox: NamedDependency[Inbox], notification_id: FromPath[str]
    ) -> NotificationView:
        return await inbox.mark_read(request.user.user_id, notification_id)

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
        )
        view, created = await inbox.create(draft)
        return Response(view, status_code=201 if created else 200)
