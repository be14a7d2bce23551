"""/sse: the same events as the socket, resumable by Last-Event-ID or ?lastEventId= across all its channels."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar

from app.main import create_app
from app.platform.settings import Settings
from app.realtime.sse import decode_cursor
from app.runtime import Runtime
from channels import BrokerUnavailable, Offset
from tests.live import serving
from tests.marketplace import open_store
from tests.waiting import eventually

Headers = Callable[..., dict[str, str]]


@pytest.fixture
async def live(make_settings: Callable[..., Settings], sqlite_database: str) -> AsyncIterator[tuple[Runtime, str]]:
    settings = make_settings(DATABASE_URL=sqlite_database, ALLOWED_ORIGINS="https://shop.example.com")
    app: Litestar = create_app(settings)
    async with serving(app, settings) as address:
        yield app.state.runtime, f"http://{address}"


_lines: dict[int, AsyncIterator[str]] = {}


async def _events(response: httpx.Response, count: int, within: float = 10.0) -> list[dict[str, Any]]:
    """The next ``count`` SSE events as {id?, event, data}; like a browser, skips comments and blocks without data."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    lines = _lines.setdefault(id(response), response.aiter_lines())

    async def read() -> None:
        async for line in lines:
            if line.startswith(":"):
                continue
            if line == "":
                if "data" in current:
                    events.append(dict(current))
                current.clear()
                if len(events) >= count:
                    return
                continue
            field, _, value = line.partition(": ")
            current[field] = json.loads(value) if field == "data" else value

    await asyncio.wait_for(read(), within)
    return events


async def test_stream_carries_events_with_cursor_ids(live: tuple[Runtime, str], auth: Headers) -> None:
    """Events arrive as event/data with an id cursor; a bare event has no id."""
    runtime, base = live
    async with (
        httpx.AsyncClient(base_url=base) as http,
        http.stream("GET", "/sse", headers=auth("u_sse")) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        await runtime.relay.publisher.publish("user:u_sse", "notification.created", {"n": 1})
        await runtime.relay.publisher.publish("user:u_sse", "notification.read", {"all": True}, history=False)
        first, bare = await _events(response, 2)
    assert first["event"] == "notification.created" and first["data"]["data"] == {"n": 1}
    assert first["data"]["op"] == "event" and first["data"]["channel"] == "user:u_sse" and "id" in first
    assert bare["event"] == "notification.read" and bare["data"]["offset"] is None and "id" not in bare


async def _opening_block(response: httpx.Response) -> list[str]:
    """The lines of a stream up to its first blank line."""
    lines: list[str] = []
    iterator = _lines.setdefault(id(response), response.aiter_lines())

    async def read() -> None:
        async for line in iterator:
            if line == "":
                return
            lines.append(line)

    await asyncio.wait_for(read(), 5)
    return lines


async def test_stream_opens_with_the_cursor_of_every_channel(live: tuple[Runtime, str], auth: Headers) -> None:
    """The first bytes of a stream are an id: with no data whose cursor holds every channel's offset."""
    runtime, base = live
    async with httpx.AsyncClient(base_url=base) as http:
        store_id, _ = await open_store(http, auth, "v_open_cursor")
        user_offset = await runtime.relay.publisher.publish("user:v_open_cursor", "notification.created", {"n": 1})
        params = {"channels": f"store:{store_id}"}
        async with http.stream("GET", "/sse", params=params, headers=auth("v_open_cursor", "vendor")) as response:
            assert response.status_code == 200
            opening = await _opening_block(response)
            store_offset = await runtime.relay.broker.current_offset(f"store:{store_id}")
            await runtime.relay.publisher.publish("user:v_open_cursor", "notification.created", {"n": 2})
            (event,) = await _events(response, 1)
    assert opening[0].startswith(":") and len(opening) == 2 and opening[1].startswith("id: ")
    cursor = opening[1].removeprefix("id: ")
    assert decode_cursor(cursor) == {"user:v_open_cursor": user_offset, f"store:{store_id}": store_offset}
    assert event["data"]["data"] == {"n": 2}, "the event published just before the open was not replayed"


async def test_resume_with_last_event_id_and_ticket(live: tuple[Runtime, str], auth: Headers) -> None:
    """A new stream (fresh ticket, ?lastEventId=) replays exactly what was missed on every channel."""
    runtime, base = live
    publish = runtime.relay.publisher.publish
    async with httpx.AsyncClient(base_url=base) as http:
        async with http.stream("GET", "/sse", headers=auth("u_resume_sse")) as response:
            await publish("user:u_resume_sse", "notification.created", {"n": 0})
            (seen,) = await _events(response, 1)
        for number in range(1, 4):
            await publish("user:u_resume_sse", "notification.created", {"n": number})
        ticket = (await http.post("/realtime/ticket", headers=auth("u_resume_sse"))).json()["ticket"]
        params = {"ticket": ticket, "lastEventId": seen["id"]}
        async with http.stream("GET", "/sse", params=params) as response:
            assert response.status_code == 200
            replayed = await _events(response, 3)
            await publish("user:u_resume_sse", "notification.created", {"n": 4})
            (live_event,) = await _events(response, 1)
        assert [event["data"]["data"]["n"] for event in replayed] == [1, 2, 3]
        assert live_event["data"]["data"]["n"] == 4
        reused = await http.get("/sse", params=params)
        assert reused.status_code == 401


async def test_refusals_are_problems(live: tuple[Runtime, str], auth: Headers) -> None:
    """No credentials, a forbidden or malformed channel, a forged cursor or a foreign Origin are refused up front."""
    _, base = live
    async with httpx.AsyncClient(base_url=base) as http:
        cases = [
            (await http.get("/sse"), 401),
            (await http.get("/sse", params={"channels": "user:someone_else"}, headers=auth("u_x")), 403),
            (await http.get("/sse", params={"channels": "order:nope"}, headers=auth("u_x")), 403),
            (await http.get("/sse", params={"channels": "bogus"}, headers=auth("u_x")), 400),
            (await http.get("/sse", params={"lastEventId": "%%%"}, headers=auth("u_x")), 400),
            (await http.get("/sse", headers={**auth("u_x"), "Origin": "https://evil.example.com"}), 403),
        ]
    for response, status in cases:
        assert response.status_code == status
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == status


async def test_broker_outage_before_the_stream_starts_is_503(
    live: tuple[Runtime, str], auth: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the open cursor cannot be read from the broker, the stream is refused with 503 and Retry-After."""
    runtime, base = live

    async def unavailable(channel: str) -> Offset:
        raise BrokerUnavailable("Redis is down")

    monkeypatch.setattr(runtime.relay.broker, "current_offset", unavailable)
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.get("/sse", headers=auth("u_outage"))
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_stream_ends_when_the_client_leaves(live: tuple[Runtime, str], auth: Headers) -> None:
    """A client that disconnects frees its stream at once (not at the next heartbeat, nor at shutdown)."""
    runtime, base = live
    async with (
        httpx.AsyncClient(base_url=base) as http,
        http.stream("GET", "/sse", headers=auth("u_leaving")) as response,
    ):
        await runtime.relay.publisher.publish("user:u_leaving", "notification.created", {"n": 1})
        await _events(response, 1)
        assert runtime.relay.connections == 1

    # The server notices the disconnect on its own time: no event to wait on here.
    await eventually(lambda: not runtime.relay.connections, within=2, what="the stream's connection was released")
