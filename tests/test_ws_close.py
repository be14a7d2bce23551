"""The server's close (app/realtime/fast_path/framed_ws.py): sent at once; a client that never answers is cut off."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from app.main import create_app
from app.platform.settings import Settings
from app.realtime.fast_path.framed_ws import CLOSE_HANDSHAKE_SECONDS
from app.runtime import Runtime
from tests.live import receive_json, serving

pytestmark = pytest.mark.fast_path  # stock uvicorn waits for a paused transport, then 10 s for the answer


async def _open_stuck_client(
    address: str, token: str
) -> tuple[ClientProtocol, asyncio.StreamReader, asyncio.StreamWriter]:
    """A sans-I/O client with a tiny receive buffer, past its handshake and welcome, that then stops reading."""
    host, port = address.split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window stays small
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    client = ClientProtocol(parse_uri(f"ws://{address}/ws"))
    request = client.connect()
    request.headers["Authorization"] = f"Bearer {token}"
    client.send_request(request)
    writer.write(b"".join(client.data_to_send()))
    welcomed = False
    while not welcomed:
        client.receive_data(await asyncio.wait_for(reader.read(65536), 5))
        for event in client.events_received():
            if isinstance(event, Response):
                assert event.status_code == 101
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                welcomed = b'"op":"subscribed"' in event.data
    writer.transport.pause_reading()  # from here the kernel's buffers fill, then the server's queue
    return client, reader, writer


async def _connections(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    line = next(line for line in text.splitlines() if line.startswith("push_connections "))
    return float(line.split()[1])


async def test_slow_consumer_is_uncounted_at_once_and_cut_off_when_it_never_answers_the_close(
    make_settings: Callable[..., Settings], sqlite_database: str, token_for: Callable[..., str]
) -> None:
    """After a 4008, push_connections drops at once and a client that never answers the close is cut off in ~1 s."""
    settings = make_settings(DATABASE_URL=sqlite_database, WS_SEND_QUEUE="262144")
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    headers = {"Authorization": f"Bearer {token_for('u_stuck')}"}
    async with (
        serving(app, settings) as address,
        httpx.AsyncClient(base_url=f"http://{address}") as http,
    ):
        client, reader, writer = await _open_stuck_client(address, token_for("u_stuck"))
        async with connect(f"ws://{address}/ws", additional_headers=headers) as healthy:
            await receive_json(healthy)  # welcome
            await receive_json(healthy)  # subscribed
            # Each event is awaited on the healthy socket, so the hub has written the stuck one's copy too.
            for number in range(5000):
                if runtime.relay.hub_metrics.slow_consumer_closes:
                    break
                data = {"n": number, "pad": "x" * 4000}
                await runtime.relay.publisher.publish("user:u_stuck", "notification.created", data)
                await receive_json(healthy)
            assert runtime.relay.hub_metrics.slow_consumer_closes == 1
            closed_at = time.monotonic()

            async def uncounted() -> None:
                while await _connections(http) != 1:  # each look is a request: no sleep needed between them
                    pass

            await asyncio.wait_for(uncounted(), 0.5)  # the stuck client has still read nothing

            close: Close | None = None

            async def read_until_cut_off() -> None:
                nonlocal close
                writer.transport.resume_reading()
                try:
                    while data := await reader.read(1 << 20):
                        client.receive_data(data)  # queues the answer to the close, which is never sent
                        for event in client.events_received():
                            if isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                                close = Close.parse(event.data)
                except ConnectionResetError:
                    pass

            await asyncio.wait_for(read_until_cut_off(), CLOSE_HANDSHAKE_SECONDS + 0.5)
            cut_off_after = time.monotonic() - closed_at
            writer.close()
            assert close is not None and close.code == 4008
            assert cut_off_after < CLOSE_HANDSHAKE_SECONDS + 0.5
