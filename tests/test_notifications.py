"""Notifications REST on both engines: create, list with cursors and filters, read, unread count, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from litestar import Litestar

from app.runtime import Runtime
from models import Notification

Headers = Callable[..., dict[str, str]]


async def _create(client: httpx.AsyncClient, auth: Headers, user_id: str, **fields: object) -> httpx.Response:
    body = {"userId": user_id, "type": "ACCOUNT_UPDATED", "title": "Hello", "message": "World", **fields}
    return await client.post("/notifications", json=body, headers=auth("svc", "service"))


async def _sign_in(client: httpx.AsyncClient, auth: Headers, user_id: str) -> None:
    """Users appear on first sight of their token."""
    assert (await client.get("/me", headers=auth(user_id))).status_code == 200


async def test_create_and_list_newest_first(client: httpx.AsyncClient, auth: Headers) -> None:
    """A service creates notifications; the user lists them newest first with every SPEC field."""
    await _sign_in(client, auth, "u_list")
    for number in range(3):
        response = await _create(client, auth, "u_list", title=f"n{number}", priority="HIGH", metadata={"k": number})
        assert response.status_code == 201
    page = (await client.get("/notifications", headers=auth("u_list"))).json()
    assert [item["title"] for item in page["items"]] == ["n2", "n1", "n0"]
    assert page["nextCursor"] is None
    item = page["items"][0]
    assert set(item) == {
        "id", "userId", "type", "title", "message", "channels", "priority", "metadata",
        "isRead", "scheduledFor", "sentAt", "createdAt", "updatedAt", "isSeen", "seenAt", "readAt", "archivedAt",
    }  # fmt: skip
    assert item["channels"] == ["IN_APP"] and item["metadata"] == {"k": 2} and item["isRead"] is False
    assert item["createdAt"].endswith("Z") and item["sentAt"].endswith("Z") and item["scheduledFor"] is None


async def test_cursor_pages_and_filters(client: httpx.AsyncClient, auth: Headers) -> None:
    """Pages chain through nextCursor without gaps; unread, type and priority filter."""
    await _sign_in(client, auth, "u_pages")
    for number in range(7):
        priority = "URGENT" if number % 2 else "LOW"
        await _create(client, auth, "u_pages", title=f"p{number}", priority=priority)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/notifications", params=params, headers=auth("u_pages"))).json()
        seen.extend(item["title"] for item in page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"p{number}" for number in reversed(range(7))]
    urgent = (await client.get("/notifications", params={"priority": "URGENT"}, headers=auth("u_pages"))).json()
    assert [item["title"] for item in urgent["items"]] == ["p5", "p3", "p1"]
    typed = (await client.get("/notifications", params={"type": "PAYOUT_FAILED"}, headers=auth("u_pages"))).json()
    assert typed["items"] == []
    first = urgent["items"][0]["id"]
    assert (await client.patch(f"/notifications/{first}/read", headers=auth("u_pages"))).status_code == 200
    unread = (await client.get("/notifications", params={"unread": "true"}, headers=auth("u_pages"))).json()
    assert first not in [item["id"] for item in unread["items"]] and len(unread["items"]) == 6


async def test_read_one_read_all_and_count_with_etag(client: httpx.AsyncClient, auth: Headers) -> None:
    """Reading is idempotent; read-all answers the count changed; unread-count answers 304 until it changes."""
    await _sign_in(client, auth, "u_count")
    ids = [(await _create(client, auth, "u_count")).json()["id"] for _ in range(3)]
    counted = await client.get("/notifications/unread-count", headers=auth("u_count"))
    assert counted.json() == {"count": 3}
    etag = counted.headers["etag"]
    unchanged = await client.get("/notifications/unread-count", headers={**auth("u_count"), "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    for _ in range(2):
        read = await client.patch(f"/notifications/{ids[0]}/read", headers=auth("u_count"))
        assert read.status_code == 200 and read.json()["isRead"] is True
    changed = await client.get("/notifications/unread-count", headers={**auth("u_count"), "If-None-Match": etag})
    assert changed.status_code == 200 and changed.json() == {"count": 2} and changed.headers["etag"] != etag
    assert (await client.patch("/notifications/read-all", headers=auth("u_count"))).json() == {"updated": 2}
    assert (await client.patch("/notifications/read-all", headers=auth("u_count"))).json() == {"updated": 0}
    assert (await client.get("/notifications/unread-count", headers=auth("u_count"))).json() == {"count": 0}


async def test_bad_input_is_a_clear_4xx_and_changes_nothing(client: httpx.AsyncClient, auth: Headers) -> None:
    """Unknown type or priority, limit 0 or 101, a forged cursor, another user's id: 4xx problem, nothing changed."""
    await _sign_in(client, auth, "u_bad")
    await _sign_in(client, auth, "u_other")
    theirs = (await _create(client, auth, "u_other")).json()["id"]
    before = await Notification.count()
    cases = [
        await _create(client, auth, "u_bad", type="PARTY_INVITE"),
        await _create(client, auth, "u_bad", priority="SOMEDAY"),
        await _create(client, auth, "u_bad", channels=["CARRIER_PIGEON"]),
        await _create(client, auth, "u_bad", title=""),
        await _create(client, auth, "u_nobody"),
        await client.get("/notifications", params={"limit": 0}, headers=auth("u_bad")),
        await client.get("/notifications", params={"limit": 101}, headers=auth("u_bad")),
        await client.get("/notifications", params={"cursor": "forged"}, headers=auth("u_bad")),
        await client.get("/notifications", params={"type": "NOPE"}, headers=auth("u_bad")),
        await client.patch(f"/notifications/{theirs}/read", headers=auth("u_bad")),
    ]
    statuses = [response.status_code for response in cases]
    assert statuses == [400, 400, 400, 400, 422, 400, 400, 400, 400, 404]
    for response in cases:
        body = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert body["detail"]
    assert "type" in {error["field"] for error in cases[0].json()["errors"]}
    assert {error["field"] for error in cases[5].json()["errors"]} == {"limit"}
    assert {error["field"] for error in cases[7].json()["errors"]} == {"cursor"}
    assert await Notification.count() == before
    theirs_row = await Notification.select(Notification.is_read).where(Notification.id == theirs).first()
    assert theirs_row is not None and theirs_row["is_read"] is False


async def test_only_admins_and_services_create(client: httpx.AsyncClient, auth: Headers) -> None:
    """A customer or vendor may not create notifications (403)."""
    await _sign_in(client, auth, "u_role")
    body = {"userId": "u_role", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m"}
    for role in ("customer", "vendor"):
        assert (await client.post("/notifications", json=body, headers=auth("u_role", role))).status_code == 403
    assert (await client.post("/notifications", json=body, headers=auth("boss", "admin"))).status_code == 201


async def test_idempotency_key_makes_one_notification(client: httpx.AsyncClient, auth: Headers) -> None:
    """A retried create with the same Idempotency-Key answers the first notification (200), creating nothing."""
    await _sign_in(client, auth, "u_idem")
    body = {"userId": "u_idem", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m"}
    headers = {**auth("svc", "service"), "Idempotency-Key": "create-42"}
    responses = await asyncio.gather(*(client.post("/notifications", json=body, headers=headers) for _ in range(5)))
    assert sorted(response.status_code for response in responses) == [200, 200, 200, 200, 201]
    assert len({response.json()["id"] for response in responses}) == 1
    assert await Notification.count().where(Notification.user == "u_idem") == 1


async def test_scheduled_notification_is_invisible_until_due_then_delivered_once(
    client: httpx.AsyncClient, auth: Headers, app: Litestar
) -> None:
    """A future scheduledFor is not listed, counted or pushed; once due it is delivered once; a past one at once."""
    runtime: Runtime = app.state.runtime
    await _sign_in(client, auth, "u_sched")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    scheduled = (await _create(client, auth, "u_sched", scheduledFor=later, title="later")).json()
    assert scheduled["sentAt"] is None
    assert (await _create(client, auth, "u_sched", scheduledFor=earlier, title="past")).json()["sentAt"]
    listed = (await client.get("/notifications", headers=auth("u_sched"))).json()["items"]
    assert [item["title"] for item in listed] == ["past"]
    assert (await client.get("/notifications/unread-count", headers=auth("u_sched"))).json() == {"count": 1}
    # Time passes: move the schedule into the past rather than waiting an hour.
    await Notification.update({Notification.scheduled_for: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Notification.id == scheduled["id"]
    )
    delivered = [await runtime.scheduler.deliver_due() for _ in range(2)]
    assert sum(delivered) == 1
    listed = (await client.get("/notifications", headers=auth("u_sched"))).json()["items"]
    assert {item["title"] for item in listed} == {"past", "later"}
    assert (await client.get("/notifications/unread-count", headers=auth("u_sched"))).json() == {"count": 2}


async def test_pagination_is_stable_while_notifications_arrive(client: httpx.AsyncClient, auth: Headers) -> None:
    """Paging through 60 notifications while 100 more are inserted concurrently misses and repeats none."""
    await _sign_in(client, auth, "u_stable")
    for number in range(60):
        await _create(client, auth, "u_stable", title=f"old{number}")
    seen: list[str] = []

    async def page_through() -> None:
        cursor = None
        while True:
            params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/notifications", params=params, headers=auth("u_stable"))).json()
            seen.extend(item["title"] for item in page["items"] if item["title"].startswith("old"))
            cursor = page["nextCursor"]
            if cursor is None:
                return

    async def insert_more() -> None:
        await asyncio.gather(*(_create(client, auth, "u_stable", title=f"new{n}") for n in range(100)))

    await asyncio.gather(page_through(), insert_more())
    assert sorted(seen) == sorted(f"old{number}" for number in range(60))
    assert len(seen) == 60


@pytest.mark.parametrize("concurrency", [200])
async def test_unread_count_exact_under_concurrent_creates_and_reads(
    client: httpx.AsyncClient, auth: Headers, concurrency: int
) -> None:
    """After 200 concurrent creates interleaved with reads, the unread count is exactly what is unread."""
    await _sign_in(client, auth, "u_exact")
    created = await asyncio.gather(*(_create(client, auth, "u_exact") for _ in range(concurrency)))
    ids = [response.json()["id"] for response in created]
    to_read = ids[::3]

    async def read(notification_id: str) -> None:
        assert (
            await client.patch(f"/notifications/{notification_id}/read", headers=auth("u_exact"))
        ).status_code == 200

    more = [_create(client, auth, "u_exact") for _ in range(concurrency)]
    await asyncio.gather(*(read(i) for i in to_read), *more)
    count = (await client.get("/notifications/unread-count", headers=auth("u_exact"))).json()["count"]
    assert count == 2 * concurrency - len(to_read)
    unread_rows = await Notification.count().where((Notification.user == "u_exact") & (Notification.is_read == False))  # noqa: E712
    assert count == unread_rows
