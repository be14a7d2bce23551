"""``/ws?since=``: the user channel resumed as the socket opens, its replay before any live event, in offset order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import connect

from app.main import create_app
from app.platform.settings import Settings
from app.runtime import Runtime
from channels import parse_offset
from tests.live import receive_json, serving


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _seq(message: dict[str, Any]) -> int:
    return parse_offset(str(message["offset"])).seq


async def test_since_on_the_url_replays_the_user_channel_before_any_live_event(
    make_settings: Callable[..., Settings], sqlite_database: str, token_for: Callable[..., str]
) -> None:
    """Events missed before the socket and published while it opens arrive once each, in strict offset order."""
    # A 16 KiB queue: the ~60 KiB replay is queued in parts, so live events do arrive during it.
    settings = make_settings(DATABASE_URL=sqlite_database, WS_SEND_QUEUE="16384", EVENT_MAX_BYTES="8192")
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    publish = runtime.relay.publisher.publish
    channel, headers = "user:u_url_since", _bearer(token_for("u_url_since"))
    since = await runtime.relay.broker.current_offset(channel)
    pad = "x" * 250
    for number in range(200):
        await publish(channel, "notification.created", {"n": number, "pad": pad})
    async with (
        serving(app, settings) as address,
        connect(f"ws://{address}/ws", additional_headers=headers) as watcher,
    ):
        await receive_json(watcher)  # welcome
        await receive_json(watcher)  # subscribed

        async def publish_live() -> None:
            for number in range(200, 300):
                await publish(channel, "notification.created", {"n": number, "pad": pad})
                await receive_json(watcher)  # one at a time: the resuming socket's replay runs meanwhile

        live = asyncio.create_task(publish_live())
        async with connect(f"ws://{address}/ws?since={since}", additional_headers=headers) as ws:
            welcome, subscribed = await receive_json(ws), await receive_json(ws)
            assert welcome["op"] == "welcome"
            assert subscribed["op"] == "subscribed" and subscribed["channel"] == channel
            assert subscribed["recovered"] is True and subscribed["replayed"] >= 200
            events: list[dict[str, Any]] = []
            while not events or _seq(events[-1]) < since.seq + 300:
                events.append(await receive_json(ws, within=10))
            await asyncio.wait_for(live, 10)
    assert all(event["op"] == "event" for event in events)
    assert [_seq(event) for event in events] == list(range(since.seq + 1, since.seq + 301))
    assert [event["data"]["n"] for event in events] == list(range(300))


async def test_malformed_since_on_the_url_is_bad_request_and_the_channel_joined_unrecovered(
    make_settings: Callable[..., Settings], sqlite_database: str, token_for: Callable[..., str]
) -> None:
    """A since that is not an offset answers bad_request; the user channel is joined with recovered false, live."""
    settings = make_settings(DATABASE_URL=sqlite_database)
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    headers = _bearer(token_for("u_bad_since"))
    async with serving(app, settings) as address:
        async with connect(f"ws://{address}/ws?since=not-an-offset", additional_headers=headers) as ws:
            welcome, error, subscribed = [await receive_json(ws) for _ in range(3)]
            assert welcome["op"] == "welcome"
            assert error["op"] == "error" and error["code"] == "bad_request" and "since" in error["message"]
            assert subscribed["op"] == "subscribed" and subscribed["channel"] == "user:u_bad_since"
            assert subscribed["recovered"] is False and subscribed["replayed"] == 0
            published = await runtime.relay.publisher.publish("user:u_bad_since", "notification.created", {"n": 1})
            event = await receive_json(ws)
            assert event["op"] == "event" and event["offset"] == str(published)
        async with connect(f"ws://{address}/ws?since=", additional_headers=headers) as ws:
            await receive_json(ws)  # welcome
            subscribed = await receive_json(ws)
            assert subscribed["op"] == "subscribed" and subscribed["recovered"] is True, "an empty since is none"
