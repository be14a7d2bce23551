"""Notification preferences on both engines (SPEC "Preferences, per user"): GET/PUT/PATCH, the rule, IN_APP off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from websockets.asyncio.client import connect

from app.main import create_app
from app.platform.settings import Settings
from app.runtime import Runtime
from app.services.preferences import TypeOverrides
from models import Notification, NotificationType, OutboxEvent
from tests.live import serving
from tests.test_notifications import _create, _sign_in
from tests.test_notifications_live import _join, _next_of

Headers = Callable[..., dict[str, str]]
ALL_ON = {"IN_APP": True, "EMAIL": True, "SMS": True, "PUSH": True}


async def _preferences(client: httpx.AsyncClient, auth: Headers, user_id: str) -> dict[str, Any]:
    response = await client.get("/notifications/preferences", headers=auth(user_id))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _put(client: httpx.AsyncClient, auth: Headers, user_id: str, body: object) -> httpx.Response:
    return await client.put("/notifications/preferences", json=body, headers=auth(user_id))


async def _patch(client: httpx.AsyncClient, auth: Headers, user_id: str, body: object) -> httpx.Response:
    return await client.patch("/notifications/preferences", json=body, headers=auth(user_id))


def test_type_overrides_name_every_type() -> None:
    """TypeOverrides has one field per NotificationType, so every type can be set and no other."""
    assert TypeOverrides.__struct_fields__ == tuple(type.value for type in NotificationType)


@pytest.mark.parametrize("role", ["customer", "vendor", "admin", "service"])
async def test_everything_on_until_changed(client: httpx.AsyncClient, auth: Headers, role: str) -> None:
    """Any role reads its own preferences; a user who never set any has every channel on and no type settings."""
    assert await _preferences(client, lambda user_id: auth(user_id, role), f"u_defaults_{role}") == {
        "channels": ALL_ON,
        "types": {},
    }


async def test_put_replaces_and_patch_merges(client: httpx.AsyncClient, auth: Headers) -> None:
    """PUT stores exactly its body (omitted channels on); PATCH changes only what it names, types channel by channel."""
    user = "u_put_patch"
    await _sign_in(client, auth, user)
    put = await _put(client, auth, user, {"channels": {"SMS": False}, "types": {"ORDER_CREATED": {"EMAIL": False}}})
    assert put.status_code == 200, put.text
    stored = {"channels": ALL_ON | {"SMS": False}, "types": {"ORDER_CREATED": {"EMAIL": False}}}
    assert put.json() == stored and await _preferences(client, auth, user) == stored

    patch = {"channels": {"PUSH": False}, "types": {"ORDER_CREATED": {"SMS": True}, "PAYMENT_FAILED": {"EMAIL": True}}}
    patched = await _patch(client, auth, user, patch)
    assert patched.status_code == 200, patched.text
    merged = {
        "channels": ALL_ON | {"SMS": False, "PUSH": False},
        "types": {"ORDER_CREATED": {"EMAIL": False, "SMS": True}, "PAYMENT_FAILED": {"EMAIL": True}},
    }
    assert patched.json() == merged and await _preferences(client, auth, user) == merged
    assert (await _patch(client, auth, user, {})).json() == merged  # an empty PATCH changes nothing

    put = await _put(client, auth, user, {"types": {"ACCOUNT_UPDATED": {"IN_APP": False}}})
    assert put.json() == {"channels": ALL_ON, "types": {"ACCOUNT_UPDATED": {"IN_APP": False}}}
    assert (await _put(client, auth, user, {})).json() == {"channels": ALL_ON, "types": {}}


async def test_concurrent_patches_lose_nothing(client: httpx.AsyncClient, auth: Headers) -> None:
    """Eight PATCHes at once, each turning one (type, channel) off, all end up stored."""
    user = "u_patch_race"
    await _sign_in(client, auth, user)
    types = list(NotificationType)[:4]
    changes = [{"types": {type.value: {medium: False}}} for type in types for medium in ("EMAIL", "SMS")]
    responses = await asyncio.gather(*(_patch(client, auth, user, change) for change in changes))
    assert [response.status_code for response in responses] == [200] * len(changes)
    stored = await _preferences(client, auth, user)
    assert stored["types"] == {type.value: {"EMAIL": False, "SMS": False} for type in types}


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"types": {"NOPE": {"EMAIL": False}}}, "types.NOPE"),
        ({"types": {"ORDER_CREATED": {"FAX": False}}}, "types.ORDER_CREATED.FAX"),
        ({"channels": {"FAX": False}}, "channels.FAX"),
        ({"channels": {"SMS": "off"}}, "channels.SMS"),
        ({"types": {"ORDER_CREATED": []}}, "types.ORDER_CREATED"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_unknown_types_or_channels_are_400_naming_the_field(
    client: httpx.AsyncClient, auth: Headers, method: str, body: object, field: str
) -> None:
    """An unknown type or channel (or a value that is not a bool) is a 400 problem naming it; nothing is stored."""
    user = f"u_bad_{method}"
    await _sign_in(client, auth, user)
    response = await client.request(method, "/notifications/preferences", json=body, headers=auth(user))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert await _preferences(client, auth, user) == {"channels": ALL_ON, "types": {}}


async def test_preferences_path_is_not_taken_for_an_id(client: httpx.AsyncClient, auth: Headers) -> None:
    """/notifications/preferences is its own route: a notification's routes with id "preferences" are still 404s."""
    await _sign_in(client, auth, "u_route")
    assert (await client.patch("/notifications/preferences/read", headers=auth("u_route"))).status_code == 404
    assert (await client.get("/notifications/preferences", headers=auth("u_route"))).status_code == 200


async def _row(notification_id: str) -> dict[str, Any]:
    row = await Notification.select().where(Notification.id == notification_id).first()
    assert row is not None
    return row


async def _outbox_types(user_id: str) -> list[str]:
    rows = await OutboxEvent.select(OutboxEvent.type).where(OutboxEvent.channel == f"user:{user_id}")
    return [row["type"] for row in rows]


async def test_in_app_off_is_stored_seen_and_archived_not_counted_not_pushed(
    client: httpx.AsyncClient, auth: Headers
) -> None:
    """With IN_APP off the notification is stored seen and archived, in no count, and writes no event."""
    user = "u_in_app_off"
    await _sign_in(client, auth, user)
    assert (await _put(client, auth, user, {"channels": {"IN_APP": False}})).status_code == 200
    created = await _create(client, auth, user)
    assert created.status_code == 201
    row = await _row(created.json()["id"])
    assert row["seen_at"] is not None and row["archived_at"] is not None and row["is_read"] is False
    assert await _outbox_types(user) == []
    counts = (await client.get("/notifications/counts", headers=auth(user))).json()
    assert counts == {"unseen": 0, "unread": 0, "total": 0}
    unread = (await client.get("/notifications/unread-count", headers=auth(user))).json()
    assert unread == {"count": 0}  # the first bell's count leaves it out too
    assert (await client.get("/notifications", headers=auth(user))).json()["items"] == []
    archived = (await client.get("/notifications", params={"archived": "true"}, headers=auth(user))).json()
    assert [item["id"] for item in archived["items"]] == [created.json()["id"]]
    await _create(client, auth, user, priority="URGENT")  # the control: one that reaches the bell writes its events
    assert "notification.created" in await _outbox_types(user)


async def test_type_setting_beats_the_channel_and_urgent_always_reaches_in_app(
    client: httpx.AsyncClient, auth: Headers
) -> None:
    """IN_APP off but on for ORDER_CREATED: that type is in the bell, others not; an URGENT one always is."""
    user = "u_in_app_type"
    await _sign_in(client, auth, user)
    body = {"channels": {"IN_APP": False}, "types": {"ORDER_CREATED": {"IN_APP": True}, "PAYMENT_FAILED": {}}}
    assert (await _put(client, auth, user, body)).status_code == 200
    ordered = (await _create(client, auth, user, type="ORDER_CREATED")).json()
    other = (await _create(client, auth, user, type="ACCOUNT_UPDATED")).json()
    urgent = (await _create(client, auth, user, type="PAYMENT_FAILED", priority="URGENT")).json()
    high = (await _create(client, auth, user, type="PAYMENT_FAILED", priority="HIGH")).json()
    assert (await _row(ordered["id"]))["archived_at"] is None
    assert (await _row(other["id"]))["archived_at"] is not None
    assert (await _row(urgent["id"]))["archived_at"] is None and (await _row(urgent["id"]))["seen_at"] is None
    assert (await _row(high["id"]))["archived_at"] is not None
    listed = (await client.get("/notifications", headers=auth(user))).json()["items"]
    assert [item["id"] for item in listed] == [urgent["id"], ordered["id"]]
    assert (await client.get("/notifications/counts", headers=auth(user))).json()["unseen"] == 2

    # A type switched off while IN_APP is on: the type wins the other way too.
    flipped = {"channels": {"IN_APP": True}, "types": {"ORDER_CREATED": {"IN_APP": False}}}
    assert (await _patch(client, auth, user, flipped)).status_code == 200
    assert (await _row((await _create(client, auth, user, type="ORDER_CREATED")).json()["id"]))["archived_at"]
    assert (await _row((await _create(client, auth, user, type="ORDER_CANCELLED")).json()["id"]))["archived_at"] is None


async def test_in_app_off_sends_nothing_live(
    make_settings: Callable[..., Settings], sqlite_database: str, auth: Headers
) -> None:
    """A socket of a user with IN_APP off gets no event for a muted notification: the next one is the URGENT one's."""
    settings = make_settings(DATABASE_URL=sqlite_database)
    app = create_app(settings)
    user = "u_in_app_live"
    async with (
        serving(app, settings) as address,
        httpx.AsyncClient(base_url=f"http://{address}") as http,
        connect(f"ws://{address}/ws", additional_headers=auth(user)) as ws,
    ):
        await _join(ws)
        assert (await _put(http, auth, user, {"channels": {"IN_APP": False}})).status_code == 200
        assert (await _create(http, auth, user, title="muted")).status_code == 201
        urgent = (await _create(http, auth, user, title="urgent", priority="URGENT")).json()
        types = {"notification.created", "notification.counts", "notification.unread_count"}
        first = await _next_of(ws, types)
        assert (first["type"], first["data"]["id"]) == ("notification.created", urgent["id"])
        counts = await _next_of(ws, {"notification.counts"})
        assert counts["data"] == {"unseen": 1, "unread": 1, "total": 1}


async def test_scheduled_with_in_app_off_is_not_pushed_when_due(
    app: Litestar, client: httpx.AsyncClient, auth: Headers
) -> None:
    """A scheduled notification muted at creation is stored seen and archived and becomes visible without events."""
    runtime: Runtime = app.state.runtime
    await runtime.scheduler.stop()  # this test delivers the due one itself
    user = "u_in_app_scheduled"
    await _sign_in(client, auth, user)
    await _put(client, auth, user, {"channels": {"IN_APP": False}})
    created = (
        await _create(client, auth, user, scheduledFor=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    ).json()
    await Notification.update({Notification.scheduled_for: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Notification.id == created["id"]
    )
    assert await runtime.scheduler.deliver_due() >= 1
    row = await _row(created["id"])
    assert row["sent_at"] is not None and row["archived_at"] is not None and row["seen_at"] is not None
    assert await _outbox_types(user) == []
