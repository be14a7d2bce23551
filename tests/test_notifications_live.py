"""Notifications reach sockets: created, read and unread-count events keep two tabs in step; nothing is lost
when Redis goes away between the commit and the publish; scheduled ones are delivered once across processes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from websockets.asyncio.client import connect

from app.main import create_app
from app.platform.settings import Settings
from app.runtime import Runtime
from tests.conftest import TEST_SECRET
from tests.live import receive_json, serving
from tests.processes import server_process
from tests.redis_servers import RedisServer
from tests.services import REDIS_URL
from tests.test_relay_redis import _wait_ready
from tests.waiting import eventually

Headers = Callable[..., dict[str, str]]


async def _next_of(ws: Any, types: set[str], within: float = 10.0) -> dict[str, Any]:
    """The next event whose type is one of ``types`` (other messages are skipped)."""

    async def find() -> dict[str, Any]:
        while True:
            message = await receive_json(ws, within)
            if message.get("op") == "event" and message["type"] in types:
                return message

    return await asyncio.wait_for(find(), within)


async def _join(ws: Any) -> None:
    assert (await receive_json(ws))["op"] == "welcome"
    assert (await receive_json(ws))["op"] == "subscribed"


async def test_two_tabs_stay_in_step(
    make_settings: Callable[..., Settings], sqlite_database: str, auth: Headers
) -> None:
    """Two sockets of one user both get notification.created and the unread count; read-all clears both."""
    settings = make_settings(DATABASE_URL=sqlite_database)
    app = create_app(settings)
    async with serving(app, settings) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        headers = auth("u_tabs")
        async with (
            connect(f"ws://{address}/ws", additional_headers=headers) as tab1,
            connect(f"ws://{address}/ws", additional_headers=headers) as tab2,
        ):
            await _join(tab1)
            await _join(tab2)
            body = {"userId": "u_tabs", "type": "ORDER_CREATED", "title": "t", "message": "m", "priority": "LOW"}
            created = (await http.post("/notifications", json=body, headers=auth("svc", "service"))).json()
            for tab in (tab1, tab2):
                event = await _next_of(tab, {"notification.created"})
                assert event["data"] == created
                assert (await _next_of(tab, {"notification.unread_count"}))["data"] == {"count": 1}
            assert (await http.patch("/notifications/read-all", headers=headers)).json() == {"updated": 1}
            for tab in (tab1, tab2):
                assert (await _next_of(tab, {"notification.read"}))["data"] == {"all": True}
                assert (await _next_of(tab, {"notification.unread_count"}))["data"] == {"count": 0}
            await http.patch(f"/notifications/{created['id']}/read", headers=headers)  # already read: no event
            await http.post("/notifications", json=body, headers=auth("svc", "service"))
            assert (await _next_of(tab1, {"notification.created", "notification.read"}))["type"] == (
                "notification.created"
            )


async def test_notification_committed_while_redis_is_down_arrives_once(
    make_settings: Callable[..., Settings], sqlite_database: str, own_redis: RedisServer, auth: Headers
) -> None:
    """Redis killed, a notification committed, Redis restarted: the client receives it exactly once."""
    settings = make_settings(DATABASE_URL=sqlite_database, REDIS_URL=own_redis.url)
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    async with serving(app, settings) as address, httpx.AsyncClient(base_url=f"http://{address}") as http:
        headers = auth("u_outage")
        assert (await http.get("/me", headers=headers)).status_code == 200
        own_redis.kill()
        await _wait_ready(address, ready=False)
        body = {"userId": "u_outage", "type": "ACCOUNT_UPDATED", "title": "during", "message": "outage"}
        created = await http.post("/notifications", json=body, headers=auth("svc", "service"))
        assert created.status_code == 201  # the database took it; the outbox holds the event
        await asyncio.to_thread(own_redis.start)
        await _wait_ready(address, ready=True)
        async with connect(f"ws://{address}/ws", additional_headers=headers) as ws:
            await _join(ws)
            await ws.send('{"op": "subscribe", "channel": "user:u_outage", "since": "x:0", "ref": 1}')
            replay = [await receive_json(ws) for _ in range(1)]
            assert replay[0]["op"] == "subscribed"
            events = [await _next_of(ws, {"notification.created"}, within=15)]
            assert events[0]["data"]["id"] == created.json()["id"]
        # However often the relay retried, history holds the event once.
        history = await runtime.relay.broker.history("user:u_outage", None)
        ids = [event.data for event in history.events if event.type == "notification.created"]
        assert len(ids) == 1
        # The client can see the event before the relay has marked its batch sent: the lag clears then.
        # The mark-sent write has no event of its own to wait on: poll the relay's lag.
        await eventually(lambda: runtime.outbox.lag_seconds == 0.0, within=10, interval=0.05, what="outbox lag is 0")


async def test_scheduled_notifications_delivered_once_across_two_processes(
    postgres_database: str, auth: Headers
) -> None:
    """With two server processes, 50 notifications scheduled a moment ahead each reach the user exactly once."""
    prefix = f"push_test_sched_{datetime.now(UTC).timestamp():.0f}"
    env = {
        "DATABASE_URL": postgres_database,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": prefix,
        "JWT_SECRET": TEST_SECRET,
        "WEBHOOK_SECRET": TEST_SECRET,
    }
    with server_process(env) as first, server_process(env) as second:
        headers = auth("u_sched2")
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{first}/me", headers=headers)).status_code == 200
            async with connect(first.replace("http", "ws") + "/ws", additional_headers=headers) as ws:
                await _join(ws)
                due = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
                ids = set()
                for number in range(50):
                    body = {"userId": "u_sched2", "type": "ACCOUNT_UPDATED", "title": f"s{number}", "message": "m"}
                    response = await http.post(
                        f"{(first, second)[number % 2]}/notifications",
                        json={**body, "scheduledFor": due},
                        headers=auth("svc", "service"),
                    )
                    assert response.status_code == 201 and response.json()["sentAt"] is None
                    ids.add(response.json()["id"])
                received: list[str] = []
                while len(received) < 50:
                    received.append((await _next_of(ws, {"notification.created"}, within=20))["data"]["id"])
                assert sorted(received) == sorted(ids)
                count = (await http.get(f"{second}/notifications/unread-count", headers=headers)).json()["count"]
                assert count == 50
                # Nothing more arrives: deliver one more notification and it is the very next created event.
                body = {"userId": "u_sched2", "type": "ACCOUNT_UPDATED", "title": "marker", "message": "m"}
                marker = (await http.post(f"{second}/notifications", json=body, headers=auth("svc", "service"))).json()
                assert (await _next_of(ws, {"notification.created"}))["data"]["id"] == marker["id"]
