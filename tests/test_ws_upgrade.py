"""The upgrade shortcut (app/realtime/uvicorn_upgrade.py): raw sockets against a real uvicorn server.

A well-formed WebSocket upgrade in the first packet goes straight to the WebSocket protocol; every
other first packet (HTTP requests, split heads, malformed heads) must get exactly what uvicorn's own
HTTP protocol answers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator, Callable

import pytest
from litestar import Litestar

from app.main import create_app
from app.realtime.uvicorn_upgrade import UpgradeFirstProtocol, websocket_upgrade
from app.server import uvicorn_options
from app.settings import Settings
from tests.live import serving

KEY = base64.b64encode(os.urandom(16))
UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n"
)


def _upgrade(*extra: bytes) -> bytes:
    return UPGRADE + b"".join(line + b"\r\n" for line in extra) + b"\r\n"


# --- the classifier ---------------------------------------------------------------------------


def test_a_websocket_upgrade_is_recognised_and_its_header_names_lowered() -> None:
    head = _upgrade(b"AUTHORIZATION: Bearer Abc.Def", b"X-Mixed-Case:  Value With Spaces ")
    frame_after_head = b"\x81\x85 masked bytes"
    routed = websocket_upgrade(head + frame_after_head)
    assert routed is not None
    assert b"\r\nauthorization:Bearer Abc.Def\r\n" in routed
    assert b"\r\nx-mixed-case:Value With Spaces\r\n" in routed
    assert routed.startswith(b"GET /ws HTTP/1.1\r\nhost:127.0.0.1\r\n")
    assert routed.endswith(b"\r\n\r\n" + frame_after_head), "bytes after the head are passed on untouched"


def test_connection_may_list_several_tokens() -> None:
    head = UPGRADE.replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade") + b"\r\n"
    assert websocket_upgrade(head) is not None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(UPGRADE, id="head not complete yet"),
        pytest.param(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", id="plain GET"),
        pytest.param(_upgrade().replace(b"GET ", b"POST "), id="not GET"),
        pytest.param(_upgrade().replace(b"HTTP/1.1", b"HTTP/1.0"), id="HTTP/1.0"),
        pytest.param(_upgrade().replace(b"Upgrade: websocket", b"Upgrade: h2c"), id="another upgrade"),
        pytest.param(_upgrade().replace(b"Connection: Upgrade", b"Connection: keep-alive"), id="no Connection upgrade"),
        pytest.param(_upgrade(b"Bad Header Line"), id="line without colon"),
        pytest.param(_upgrade(b"Bad Name: x"), id="space in a name"),
        pytest.param(_upgrade(b"X-Control: a\x01b"), id="control character in a value"),
        pytest.param(_upgrade(b"Transfer-Encoding: chunked"), id="chunked body"),
        pytest.param(_upgrade(b"Content-Length: 5"), id="a body"),
        pytest.param(_upgrade(b"X-Long: " + b"a" * 9000), id="line too long"),
        pytest.param(_upgrade(*(b"X-H%d: 1" % i for i in range(130))), id="too many fields"),
        pytest.param(_upgrade().replace(b"/ws", b"/w s"), id="space in the target"),
    ],
)
def test_everything_else_goes_to_uvicorns_http_protocol(data: bytes) -> None:
    assert websocket_upgrade(data) is None


def test_an_empty_body_length_is_still_an_upgrade() -> None:
    assert websocket_upgrade(_upgrade(b"Content-Length: 0")) is not None


def test_serve_configures_the_shortcut(ws_settings: Settings) -> None:
    from uvicorn.config import Config

    config = Config("app.main:create_app", **{**uvicorn_options(ws_settings), "workers": 1})
    config.load()
    assert config.http_protocol_class is UpgradeFirstProtocol


# --- live ---------------------------------------------------------------------------------------


@pytest.fixture
def ws_settings(make_settings: Callable[..., Settings], sqlite_database: str) -> Settings:
    return make_settings(DATABASE_URL=sqlite_database)


@pytest.fixture
async def server(ws_settings: Settings) -> AsyncIterator[str]:
    app: Litestar = create_app(ws_settings)
    async with serving(app, ws_settings) as address:
        yield address


async def _open(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = address.split(":")
    return await asyncio.open_connection(host, int(port))


async def _response_head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


async def _text_frame(reader: asyncio.StreamReader) -> str:
    """One unmasked server text frame (the server's messages are short: 7- or 16-bit lengths)."""
    first, second = await asyncio.wait_for(reader.readexactly(2), 5)
    assert first == 0x81, f"expected a final text frame, got {first:#x}"
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    return (await asyncio.wait_for(reader.readexactly(length), 5)).decode()


async def test_upgrade_in_one_packet_with_mixed_case_headers_is_welcomed(
    server: str, token_for: Callable[..., str]
) -> None:
    reader, writer = await _open(server)
    try:
        writer.write(_upgrade(b"AUTHORIZATION: Bearer " + token_for("u_raw").encode()))
        head = await _response_head(reader)
        assert head.startswith(b"HTTP/1.1 101 ")
        welcome = json.loads((await _text_frame(reader)).split("\n")[0])
        assert welcome == {"op": "welcome", "userId": "u_raw", "channels": ["user:u_raw"]}
    finally:
        writer.close()


async def test_upgrade_split_over_packets_still_upgrades(server: str, token_for: Callable[..., str]) -> None:
    request = _upgrade(b"Authorization: Bearer " + token_for("u_split").encode())
    reader, writer = await _open(server)
    try:
        writer.write(request[:25])
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(request[25:])
        assert (await _response_head(reader)).startswith(b"HTTP/1.1 101 ")
        assert '"op":"welcome"' in await _text_frame(reader)
    finally:
        writer.close()


async def test_malformed_upgrade_gets_uvicorns_400_not_silence(server: str) -> None:
    reader, writer = await _open(server)
    try:
        writer.write(_upgrade(b"Bad Header Line"))
        head = await _response_head(reader)
        assert head.startswith(b"HTTP/1.1 400 ")
    finally:
        writer.close()


async def test_incomplete_handshake_gets_websockets_400(server: str) -> None:
    reader, writer = await _open(server)
    try:
        writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        head = await _response_head(reader)
        assert head.startswith(b"HTTP/1.1 400 ")
        assert b"Sec-WebSocket-Key" in await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_plain_http_keeps_alive_over_several_requests(server: str) -> None:
    reader, writer = await _open(server)
    try:
        for _ in range(2):
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await _response_head(reader)
            assert head.startswith(b"HTTP/1.1 200 ")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
    finally:
        writer.close()


async def test_a_socket_that_never_speaks_is_closed_at_shutdown(ws_settings: Settings) -> None:
    app = create_app(ws_settings)
    async with serving(app, ws_settings) as address:
        reader, writer = await _open(address)
        await asyncio.sleep(0.1)  # accepted by the server, not a byte sent
    # serving() returned, so uvicorn's shutdown finished; the silent socket was closed, not leaked.
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
