"""Inbox state changes reach sockets: every change's events, in order, none for a no-op; on one process and on
two processes sharing Redis and PostgreSQL (changes made on one, received on the other)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from app.main import create_app
from app.platform.settings import Settings
from tests.live import serving
from tests.scaling import server_env, two_servers
from tests.services import REDIS_URL, reachable, unavailable, unique_name
from tests.test_notifications_live import _join, _next_of

Headers = Callable[..., dict[str, str]]
TYPES = {
    "notification.created",
    "notification.read",
    "notification.updated",
    "notification.unread_count",
    "notification.counts",
}


def _counts(unseen: int, unread: int, total: int) -> tuple[str, Any]:
    return ("notification.counts", {"unseen": unseen, "unread": unread, "total": total})


def _unread(count: int) -> tuple[str, Any]:
    return ("notification.unread_count", {"count": count})


def _updated(ids: list[str] | None, **flags: bool) -> tuple[str, Any]:
    return ("notification.updated", {**({"all": True} if ids is None else {"ids": sorted(ids)}), **flags})


def _read(ids: list[str] | None) -> tuple[str, Any]:
    return ("notification.read", {"all": True} if ids is None else {"ids": sorted(ids)})


async def _events_of_one_change(ws: Any) -> list[tuple[str, Any]]:
    """The events up to and including the next ``notification.counts`` (every change ends with one)."""
    events: list[tuple[str, Any]] = []
    while True:
        message = await _next_of(ws, TYPES)
        data = message["data"]
        if isinstance(data, dict) and "ids" in data:
            data = {**data, "ids": sorted(data["ids"])}  # RETURNING has no order
        events.append((message["type"], data))
        if message["type"] == "notification.counts":
            return events


async def _every_change_in_order(act: str, listen: str, auth: Headers) -> None:
    """Drive the inbox through ``act`` (a base URL) while a socket on ``listen`` checks each change's events."""
    user, headers, service = "u_inbox_live", auth("u_inbox_live"), auth("svc", "service")
    body = {"userId": user, "type": "ORDER_CREATED", "title": "t", "message": "m"}
    async with (
        httpx.AsyncClient(base_url=act) as http,
        connect(listen.replace("http://", "ws://") + "/ws", additional_headers=headers) as ws,
    ):
        await _join(ws)

        async def create() -> str:
            response = await http.post("/notifications", json=body, headers=service)
            assert response.status_code == 201
            notification_id: str = response.json()["id"]
            return notification_id

        async def patch(path: str, **kwargs: Any) -> None:
            response = await http.patch(f"/notifications/{path}", headers=headers, **kwargs)
            assert response.status_code == 200, response.text

        first = await create()
        (created, *rest) = await _events_of_one_change(ws)
        assert created[0] == "notification.created" and created[1]["id"] == first and created[1]["isSeen"] is False
        assert rest == [_unread(1), _counts(1, 1, 1)]
        second = await create()
        assert (await _events_of_one_change(ws))[1:] == [_unread(2), _counts(2, 2, 2)]
        steps: list[tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, Any]]]] = [
            ([("seen-all", {})], [_updated(None, isSeen=True), _counts(0, 2, 2)]),
            ([(f"{first}/read", {})], [_read([first]), _updated([first], isRead=True), _unread(1), _counts(0, 1, 2)]),
            # A repeat changes nothing and sends nothing: the next events are those of the unread after it.
            (
                [(f"{first}/read", {}), (f"{first}/unread", {})],
                [_updated([first], isRead=False), _unread(2), _counts(0, 2, 2)],
            ),
            ([(f"{second}/archive", {})], [_updated([second], isArchived=True), _unread(1), _counts(0, 1, 1)]),
            (
                [(f"{second}/archive", {}), (f"{second}/unarchive", {})],
                [_updated([second], isArchived=False), _unread(2), _counts(0, 2, 2)],
            ),
            (
                [("bulk", {"json": {"ids": [first, second, "ntf_someone_elses"], "action": "read"}})],
                [_read([first, second]), _updated([first, second], isRead=True), _unread(0), _counts(0, 0, 2)],
            ),
            (
                [("bulk", {"json": {"ids": [first], "action": "unread"}})],
                [_updated([first], isRead=False), _unread(1), _counts(0, 1, 2)],
            ),
            (
                [("archive-all", {"params": {"read": "true"}})],
                [_updated([second], isArchived=True), _unread(1), _counts(0, 1, 1)],
            ),
            ([("read-all", {})], [_read(None), _updated(None, isRead=True), _unread(0), _counts(0, 0, 1)]),
            ([("archive-all", {})], [_updated(None, isArchived=True), _unread(0), _counts(0, 0, 0)]),
        ]
        for calls, expected in steps:
            for path, kwargs in calls:
                await patch(path, **kwargs)
            assert await _events_of_one_change(ws) == expected, calls
        # Reading a notification never seen marks it seen too, in the same event.
        third = await create()
        await _events_of_one_change(ws)
        await patch(f"{third}/read")
        assert await _events_of_one_change(ws) == [
            _read([third]),
            _updated([third], isSeen=True, isRead=True),
            _unread(0),
            _counts(0, 0, 1),
        ]


async def test_every_change_in_order_on_one_process(
    make_settings: Callable[..., Settings], sqlite_database: str, auth: Headers
) -> None:
    """On one server (SQLite, in-process broker) each inbox change sends exactly its events, in order."""
    settings = make_settings(DATABASE_URL=sqlite_database)
    async with serving(create_app(settings), settings) as address:
        await _every_change_in_order(f"http://{address}", f"http://{address}", auth)


@pytest.fixture
def two_process_env(postgres_database: str) -> dict[str, str]:
    """Two processes' environment on the shared Redis (a prefix of this test's own) and the run's PostgreSQL."""
    if not reachable("127.0.0.1", 6379):
        unavailable("Redis is not reachable at 127.0.0.1:6379")
    return server_env(REDIS_URL, postgres_database, unique_name("inbox"))


async def test_every_change_in_order_across_two_processes(two_process_env: dict[str, str], auth: Headers) -> None:
    """Changes made on process A reach a socket on process B (Redis, PostgreSQL) with the same events, in order."""
    with two_servers(two_process_env) as (a, b):
        await _every_change_in_order(a, b, auth)
