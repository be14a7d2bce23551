"""Keepalive comes from uvicorn as `serve` configures it: the server pings, and drops a client that stops answering."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from app.main import create_app
from app.platform.settings import Settings
from tests.live import serving


async def test_silent_client_is_pinged_then_dropped(
    make_settings: Callable[..., Settings], sqlite_database: str, token_for: Callable[..., str]
) -> None:
    """With WS_PING_INTERVAL=0.3 the server pings; a client that never answers is disconnected soon after."""
    settings = make_settings(DATABASE_URL=sqlite_database, WS_PING_INTERVAL="0.3")
    app = create_app(settings)
    async with serving(app, settings) as address:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        # A sans-I/O client: it would queue pong replies, but this test never writes them back.
        client = ClientProtocol(parse_uri(f"ws://{address}/ws"))
        request = client.connect()
        request.headers["Authorization"] = f"Bearer {token_for('u_silent')}"
        client.send_request(request)
        writer.write(b"".join(client.data_to_send()))
        await writer.drain()
        accepted, pinged = False, False
        started = time.monotonic()

        async def read_until_dropped() -> None:
            nonlocal accepted, pinged
            while data := await reader.read(65536):
                client.receive_data(data)
                for event in client.events_received():
                    if isinstance(event, Response):
                        accepted = event.status_code == 101
                    elif isinstance(event, Frame) and event.opcode is Opcode.PING:
                        pinged = True

        await asyncio.wait_for(read_until_dropped(), 10)
        writer.close()
    assert accepted and pinged
    assert time.monotonic() - started < 5  # ping interval + ping timeout, not the 10 s guard
