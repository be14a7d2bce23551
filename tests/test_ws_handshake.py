"""The handshake ``FramedWebSocketProtocol`` answers itself for a parsed upgrade (``open_parsed``).

RFC 6455's accept key and headers, frames sent together with the request, websockets' own answers
to what the shortcut does not take, refusals before accept, and per-message deflate on uvicorn's path.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import msgspec
import pytest
import websockets

from app.main import create_app
from app.platform.settings import Settings
from app.server import uvicorn_options
from tests.live import serving
from tests.rawsocket import (
    KEY,
    http_response,
    masked_text_frame,
    open_socket,
    response_head,
    text_frame,
    upgrade_request,
)


@pytest.mark.fast_path
def test_server_runs_the_framed_websocket_protocol(sqlite_settings: Settings) -> None:
    """uvicorn is configured with the sans-I/O protocol subclass that offers pre-framed writes to /ws."""
    from uvicorn.config import Config
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    from app.realtime.fast_path.framed_ws import FramedWebSocketProtocol

    config = Config("app.main:create_app", **{**uvicorn_options(sqlite_settings), "workers": 1})
    config.load()
    assert config.ws_protocol_class is FramedWebSocketProtocol
    assert issubclass(FramedWebSocketProtocol, WebSocketsSansIOProtocol)


async def test_accept_key_and_headers_follow_rfc_6455(sqlite_server: str, token_for: Callable[..., str]) -> None:
    """RFC 6455 1.3's own example key; the response carries uvicorn's date header, nothing of websockets'."""
    head = upgrade_request(b"Authorization: Bearer " + token_for("u_rfc").encode()).replace(
        KEY, b"dGhlIHNhbXBsZSBub25jZQ=="
    )
    reader, writer = await open_socket(sqlite_server)
    try:
        writer.write(head)
        response = await response_head(reader)
        lines = response.split(b"\r\n")
        assert lines[0] == b"HTTP/1.1 101 Switching Protocols"
        assert b"Upgrade: websocket" in lines and b"Connection: Upgrade" in lines
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in lines
        assert any(line.startswith(b"date: ") for line in lines)
        assert not any(line.lower().startswith(b"sec-websocket-extensions") for line in lines)
    finally:
        writer.close()


@pytest.mark.fast_path  # stock uvicorn drops a frame that shares the packet of the upgrade request
async def test_frames_sent_with_the_request_are_read(sqlite_server: str, token_for: Callable[..., str]) -> None:
    """A client that pipelines a message behind its request (one packet) still gets its answer."""
    head = upgrade_request(b"Authorization: Bearer " + token_for("u_eager").encode())
    reader, writer = await open_socket(sqlite_server)
    try:
        writer.write(head + masked_text_frame(b'{"op":"ping","ref":7}'))
        assert (await response_head(reader)).startswith(b"HTTP/1.1 101 ")
        messages: list[dict[str, object]] = []
        while len(messages) < 3:
            messages += [json.loads(line) for line in (await text_frame(reader)).split("\n")]
        assert [m["op"] for m in messages] == ["welcome", "subscribed", "pong"] and messages[2]["ref"] == 7
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        pytest.param(
            (b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"), 400, b"Sec-WebSocket-Version", id="v8"
        ),
        pytest.param((KEY, b"c2hvcnQ="), 400, b"Sec-WebSocket-Key", id="short key"),
        pytest.param((KEY, b"not base64!"), 400, b"Sec-WebSocket-Key", id="bad key"),
        pytest.param((KEY, KEY + b"\r\nSec-WebSocket-Key: " + KEY), 400, b"Sec-WebSocket-Key", id="two keys"),
    ],
)
async def test_invalid_handshakes_get_websockets_answer(
    sqlite_server: str, change: tuple[bytes, bytes], status: int, says: bytes
) -> None:
    """What the shortcut does not accept, websockets refuses exactly as it did before the shortcut."""
    reader, writer = await open_socket(sqlite_server)
    try:
        writer.write(upgrade_request().replace(*change))
        response = await response_head(reader) + await asyncio.wait_for(reader.read(), 5)
        assert response.startswith(b"HTTP/1.1 %d " % status)
        assert says in response
    finally:
        writer.close()


async def test_refused_origin_is_403_before_any_frame(
    make_settings: Callable[..., Settings], sqlite_database: str
) -> None:
    """An upgrade from an origin not in ALLOWED_ORIGINS is answered 403 before any frame."""
    settings = make_settings(DATABASE_URL=sqlite_database, ALLOWED_ORIGINS="https://shop.example.com")
    async with serving(create_app(settings), settings) as address:
        reader, writer = await open_socket(address)
        try:
            writer.write(upgrade_request(b"Origin: https://evil.example.com"))
            assert (await response_head(reader)).startswith(b"HTTP/1.1 403 ")
        finally:
            writer.close()


async def test_per_message_deflate_is_negotiated_on_uvicorns_path(
    make_settings: Callable[..., Settings], sqlite_database: str, token_for: Callable[..., str]
) -> None:
    """With WS_PER_MESSAGE_DEFLATE the shortcut steps aside: websockets negotiates the extension."""
    settings = make_settings(DATABASE_URL=sqlite_database, WS_PER_MESSAGE_DEFLATE="true")
    async with (
        serving(create_app(settings), settings) as address,
        websockets.connect(
            f"ws://{address}/ws", additional_headers={"Authorization": f"Bearer {token_for('u_deflate')}"}
        ) as ws,
    ):
        assert "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
        assert '"op":"welcome"' in str(await asyncio.wait_for(ws.recv(), 5))


async def test_refused_origin_is_problem_json_with_request_id(
    make_settings: Callable[..., Settings], sqlite_database: str
) -> None:
    """The 403 for a refused Origin is problem+json and carries the client's X-Request-ID, like every response."""
    settings = make_settings(DATABASE_URL=sqlite_database, ALLOWED_ORIGINS="https://shop.example.com")
    async with serving(create_app(settings), settings) as address:
        reader, writer = await open_socket(address)
        try:
            writer.write(upgrade_request(b"Origin: https://evil.example.com", b"X-Request-ID: origin-check-1234"))
            head, body = await http_response(reader)
            assert head.startswith(b"HTTP/1.1 403 ")
            assert b"\r\ncontent-type: application/problem+json" in head.lower()
            assert b"\r\nx-request-id: origin-check-1234\r\n" in head.lower()
            assert msgspec.json.decode(body)["status"] == 403
        finally:
            writer.close()
