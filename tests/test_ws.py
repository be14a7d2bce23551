"""/ws against a real uvicorn server and a real client: auth, welcome, subscribe, errors, resume, limits."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets
from litestar import Litestar
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.main import create_app
from app.platform.settings import Settings
from app.server import uvicorn_options
from tests.live import receive_json, receive_messages, serving
from tests.ws_support import bearer, runtime_of, welcome


async def test_header_auth_welcome_and_live_event(server: str, ws_app: Litestar, token_for: Callable[..., str]) -> None:
    """A bearer client gets welcome, its user channel, and events published there, with offsets."""
    async with connect(f"ws://{server}/ws", additional_headers=bearer(token_for("u_live"))) as ws:
        offset = await welcome(ws, "u_live")
        epoch = offset.split(":")[0]
        published = await runtime_of(ws_app).relay.publisher.publish(
            "user:u_live", "notification.created", {"id": "n1"}
        )
        event = await receive_json(ws)
        assert event["op"] == "event" and event["channel"] == "user:u_live"
        assert event["type"] == "notification.created" and event["data"] == {"id": "n1"}
        assert event["offset"] == str(published) and str(published).startswith(epoch + ":")
        assert str(event["ts"]).endswith("Z")


async def test_welcome_and_the_user_channel_ack_share_one_frame(server: str, token_for: Callable[..., str]) -> None:
    """A new socket costs one write: welcome and its user channel's subscribed, newline-batched (SPEC)."""
    async with connect(f"ws://{server}/ws", additional_headers=bearer(token_for("u_one_frame"))) as ws:
        frame = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(frame, str)
        welcome, subscribed = (json.loads(line) for line in frame.split("\n"))
        assert welcome["op"] == "welcome" and subscribed["op"] == "subscribed"
        assert subscribed["channel"] == "user:u_one_frame"


async def test_ticket_is_single_use(server: str, token_for: Callable[..., str]) -> None:
    """A ticket from POST /realtime/ticket opens one socket; a second use is closed with 4001."""
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        response = await http.post("/realtime/ticket", headers=bearer(token_for("u_ticket")))
    assert response.status_code == 200
    ticket = response.json()["ticket"]
    assert response.json()["expiresAt"].endswith("Z")
    async with connect(f"ws://{server}/ws?ticket={ticket}") as ws:
        await welcome(ws, "u_ticket")
    async with connect(f"ws://{server}/ws?ticket={ticket}") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await receive_json(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


@pytest.mark.parametrize(
    ("path", "headers_factory"),
    [
        ("/ws", lambda token_for: {}),
        ("/ws", lambda token_for: bearer("not-a-token")),
        ("/ws", lambda token_for: bearer(token_for("u_x", exp_offset=-60))),
        ("/ws?ticket=forged", lambda token_for: {}),
        ("/ws?token={token}", lambda token_for: {}),
    ],
    ids=["none", "garbage", "expired", "forged-ticket", "token-in-url"],
)
async def test_bad_credentials_close_4001(
    server: str, settings_token: Callable[..., str], path: str, headers_factory: Any
) -> None:
    """Missing, bad or expired credentials (and tokens in the URL) close the socket with 4001."""
    url = f"ws://{server}{path.format(token=settings_token('u_x'))}"
    async with connect(url, additional_headers=headers_factory(settings_token)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await receive_json(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


async def test_token_expiring_mid_connection_closes_4001(server: str, settings_token: Callable[..., str]) -> None:
    """A socket whose token expires is closed with 4001 at expiry."""
    async with connect(f"ws://{server}/ws", additional_headers=bearer(settings_token("u_exp", exp_offset=2))) as ws:
        await welcome(ws, "u_exp")
        with pytest.raises(ConnectionClosed) as closed:
            await receive_json(ws, within=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


async def test_resume_replays_exactly_what_was_missed(
    server: str, ws_app: Litestar, token_for: Callable[..., str]
) -> None:
    """Disconnect, publish 50, reconnect with since: exactly those 50 in order, then live without duplicates."""
    publisher = runtime_of(ws_app).relay.publisher
    async with connect(f"ws://{server}/ws", additional_headers=bearer(token_for("u_resume"))) as ws:
        last_seen = await welcome(ws, "u_resume")
    for number in range(50):
        await publisher.publish("user:u_resume", "notification.created", {"n": number})
    async with connect(f"ws://{server}/ws", additional_headers=bearer(token_for("u_resume"))) as ws:
        await welcome(ws, "u_resume")
        await ws.send(f'{{"op": "subscribe", "channel": "user:u_resume", "since": "{last_seen}", "ref": 1}}')
        subscribed = await receive_json(ws)
        assert subscribed["op"] == "subscribed" and subscribed["recovered"] is True
        assert subscribed["replayed"] == 50 and subscribed["ref"] == 1
        replayed = await receive_messages(ws, 50)
        assert [message["data"] for message in replayed] == [{"n": number} for number in range(50)]
        seqs = [int(str(message["offset"]).split(":")[1]) for message in replayed]
        assert seqs == list(range(seqs[0], seqs[0] + 50))
        await publisher.publish("user:u_resume", "notification.created", {"n": 50})
        live = await receive_json(ws)
        assert live["data"] == {"n": 50}
        assert int(str(live["offset"]).split(":")[1]) == seqs[-1] + 1


async def test_wrong_origin_is_refused(server: str, token_for: Callable[..., str]) -> None:
    """A browser Origin outside ALLOWED_ORIGINS is refused at the handshake; a listed one is accepted."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"ws://{server}/ws", origin="https://evil.example.com", additional_headers=bearer(token_for("u_o"))
        ):
            pass
    assert refused.value.response.status_code == 403
    async with connect(
        f"ws://{server}/ws", origin="https://shop.example.com", additional_headers=bearer(token_for("u_o"))
    ) as ws:
        await welcome(ws, "u_o")


async def test_frame_over_limit_closes_1009(server: str, token_for: Callable[..., str]) -> None:
    """An inbound frame over WS_MAX_FRAME closes the connection with 1009."""
    async with connect(f"ws://{server}/ws", additional_headers=bearer(token_for("u_big"))) as ws:
        await welcome(ws, "u_big")
        await ws.send('{"op": "ping", "ref": "' + "x" * 5000 + '"}')
        with pytest.raises(ConnectionClosed) as closed:
            await receive_json(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_flooding_client_is_rate_limited_then_closed_4029(server: str, token_for: Callable[..., str]) -> None:
    """Past WS_RATE messages per second a client gets rate_limited errors, and persistent abuse closes 4029."""
    async with connect(f"ws://{server}/ws", additional_headers=bearer(token_for("u_flood"))) as ws:
        await welcome(ws, "u_flood")
        for number in range(200):
            await ws.send(f'{{"op": "ping", "ref": {number}}}')
        codes: list[str] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                message = await receive_json(ws)
                if message.get("code") == "rate_limited":
                    codes.append(str(message["code"]))
    assert codes, "no rate_limited error before the close"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4029


async def test_server_shutdown_closes_sockets_with_going_away(
    ws_app: Litestar, ws_settings: Settings, token_for: Callable[..., str]
) -> None:
    """When the server stops, open sockets are closed with 1001 or 1012 so clients reconnect elsewhere."""
    started = time.monotonic()
    async with serving(ws_app, ws_settings) as address:
        ws = await connect(f"ws://{address}/ws", additional_headers=bearer(token_for("u_bye")))
        await welcome(ws, "u_bye")
    with pytest.raises(ConnectionClosed) as closed:
        await receive_json(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012)
    assert time.monotonic() - started < 12


async def test_metrics_count_connections(server: str, token_for: Callable[..., str]) -> None:
    """/metrics reports the open connections and the relay counters in Prometheus text."""
    async with connect(f"ws://{server}/ws", additional_headers=bearer(token_for("u_metrics"))) as ws:
        await welcome(ws, "u_metrics")
        async with httpx.AsyncClient(base_url=f"http://{server}") as http:
            text = (await http.get("/metrics")).text
    assert "push_connections 1.0" in text
    for name in ("push_events_out_total", "push_slow_consumer_closes_total", "push_relay_latency_seconds_bucket"):
        assert name in text
    assert websockets.__version__


async def test_slow_consumer_is_closed_4008_while_healthy_one_gets_everything(
    make_settings: Callable[..., Settings], sqlite_database: str, token_for: Callable[..., str]
) -> None:
    """A client that stops reading is closed with 4008; a healthy client on the same channel receives every event."""
    settings = make_settings(
        DATABASE_URL=sqlite_database, WS_SEND_QUEUE="65536", EVENT_MAX_BYTES="16384", WS_RATE="1000"
    )
    app = create_app(settings)
    publisher = runtime_of(app).relay.publisher
    payload = {"blob": "x" * 2000}
    count = 3000  # ~6 MB: more than loopback's socket buffers and the 64 KiB queue together
    async with serving(app, settings) as address:
        headers = bearer(token_for("u_shared"))
        async with connect(f"ws://{address}/ws", additional_headers=headers, max_queue=1) as slow:
            await welcome(slow, "u_shared")
            async with connect(f"ws://{address}/ws", additional_headers=headers, max_size=None) as healthy:
                await welcome(healthy, "u_shared")

                received: list[int] = []
                progress = asyncio.Condition()

                async def read_all() -> None:
                    while len(received) < count:
                        message = await receive_json(healthy, within=30)
                        async with progress:
                            received.append(int(message["data"]["n"]))
                            progress.notify_all()

                reader = asyncio.create_task(read_all())
                # Bursts of 16 events (~32 KiB) fit a healthy client's 64 KiB queue; the next burst waits
                # until it has read them, while the slow client's backlog only grows.
                for start in range(0, count, 16):
                    end = min(start + 16, count)
                    for number in range(start, end):
                        await publisher.publish("user:u_shared", "notification.created", {**payload, "n": number})
                    async with progress:
                        await asyncio.wait_for(progress.wait_for(lambda end=end: len(received) >= end), 30)
                await asyncio.wait_for(reader, 30)
                assert received == list(range(count))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await receive_json(slow, within=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
        assert runtime_of(app).relay.hub_metrics.slow_consumer_closes == 1


async def test_plain_asgi_send_is_used_without_the_frame_extension(
    ws_app: Litestar, ws_settings: Settings, token_for: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a server without the push.frames extension (plain websockets-sansio) /ws relays through ASGI send."""
    import tests.live

    monkeypatch.setattr(
        tests.live, "uvicorn_options", lambda settings: {**uvicorn_options(settings), "ws": "websockets-sansio"}
    )
    async with (
        serving(ws_app, ws_settings) as address,
        connect(f"ws://{address}/ws", additional_headers=bearer(token_for("u_plain"))) as ws,
    ):
        await welcome(ws, "u_plain")
        for number in range(3):
            await runtime_of(ws_app).relay.publisher.publish("user:u_plain", "notification.created", {"n": number})
        events = await receive_messages(ws, 3)
        assert [event["data"] for event in events] == [{"n": 0}, {"n": 1}, {"n": 2}]


async def test_sockets_opened_together_share_one_user_upsert(
    server: str, ws_app: Litestar, token_for: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sockets of new users opened at once have their rows written before welcome, by fewer upserts than sockets."""
    from models.catalog import User

    users = runtime_of(ws_app).users
    batches: list[int] = []
    upsert = users._upsert

    async def counting_upsert(pending: dict[str, Any]) -> None:
        batches.append(len(pending))
        await upsert(pending)

    monkeypatch.setattr(users, "_upsert", counting_upsert)
    names = [f"u_row_{i}" for i in range(8)]

    async def open_one(name: str) -> Any:
        ws = await connect(f"ws://{server}/ws", additional_headers=bearer(token_for(name)))
        await welcome(ws, name)
        return ws

    sockets = await asyncio.gather(*(open_one(name) for name in names))
    rows = await User.select(User.id).where(User.id.is_in(names))
    assert sorted(row["id"] for row in rows) == sorted(names)
    assert sum(batches) == len(names) and len(batches) < len(names)
    for ws in sockets:
        await ws.close()


async def test_plain_http_request_to_ws_gets_426(server: str) -> None:
    """Only WebSocket scopes skip Litestar (``websockets_first``): a plain GET of /ws still gets 426."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{server}/ws")
    assert response.status_code == 426 and response.headers["upgrade"] == "websocket"
    assert response.headers["content-type"] == "application/problem+json" and response.json()["status"] == 426


async def test_unexpected_error_on_ws_is_logged_and_refused(
    server: str, token_for: Callable[..., str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected error in /ws (which bypasses Litestar's exception middleware) is logged and ends the socket."""
    import app.realtime.ws as ws_module

    async def broken(scope: Any, runtime: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(ws_module, "authenticate", broken)
    with pytest.raises(InvalidStatus) as refused:  # closed before accept: uvicorn answers 403, as under Litestar
        async with connect(f"ws://{server}/ws", additional_headers=bearer(token_for("u_boom"))):
            pass
    assert refused.value.response.status_code == 403
    assert any("unexpected error on /ws" in record.getMessage() for record in caplog.records)


@pytest.mark.fast_path
@pytest.mark.parametrize("parsed", [True, False], ids=["parsed by the upgrade shortcut", "uvicorn's path"])
async def test_handshake_headers_are_released_after_accept(
    server: str, token_for: Callable[..., str], monkeypatch: pytest.MonkeyPatch, parsed: bool
) -> None:
    """No handshake object outlives the accept: the shortcut builds none, and on uvicorn's path the request's
    headers (kept alive by websockets' suspended parser) are emptied once the socket is accepted."""
    from websockets.http11 import Request

    from app.realtime.fast_path.framed_ws import FramedWebSocketProtocol

    requests: list[Request] = []
    handle_connect = FramedWebSocketProtocol.handle_connect

    def recording(self: FramedWebSocketProtocol, event: Request) -> None:
        requests.append(event)
        handle_connect(self, event)

    monkeypatch.setattr(FramedWebSocketProtocol, "handle_connect", recording)
    if not parsed:
        monkeypatch.setattr(FramedWebSocketProtocol, "open_parsed", lambda self, request: False)
    async with connect(f"ws://{server}/ws", additional_headers=bearer(token_for("u_hdr"))) as ws:
        await welcome(ws, "u_hdr")
        if parsed:
            assert requests == []
        else:
            assert len(requests) == 1 and len(requests[0].headers) == 0
