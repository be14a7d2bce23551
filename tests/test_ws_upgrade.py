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
import websockets
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


def test_a_websocket_upgrade_is_parsed_with_header_names_lowered() -> None:
    head = _upgrade(b"AUTHORIZATION: Bearer Abc.Def", b"X-Mixed-Case:  Value With Spaces ")
    frame_after_head = b"\x81\x85 masked bytes"
    request = websocket_upgrade(head + frame_after_head)
    assert request is not None
    assert request.target == b"/ws"
    assert (b"authorization", b"Bearer Abc.Def") in request.headers
    assert (b"x-mixed-case", b"Value With Spaces") in request.headers
    assert request.headers[0] == (b"host", b"127.0.0.1")
    assert request.rest == frame_after_head, "bytes after the head are kept for the WebSocket protocol"
    reparsed = websocket_upgrade(request.serialize())
    assert reparsed is not None and (reparsed.target, reparsed.headers, reparsed.rest) == (
        request.target,
        request.headers,
        request.rest,
    )


def test_the_query_string_stays_in_the_target() -> None:
    request = websocket_upgrade(_upgrade().replace(b"GET /ws ", b"GET /ws?ticket=abc%20d "))
    assert request is not None and request.target == b"/ws?ticket=abc%20d"


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


async def _http_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One whole HTTP response: its head and its body (by Content-Length)."""
    head = await _response_head(reader)
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    return head, await asyncio.wait_for(reader.readexactly(length), 5)


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
            head, body = await _http_response(reader)
            assert head.startswith(b"HTTP/1.1 200 ") and b'"ok"' in body
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


# --- the handshake answered from the parsed request (FramedWebSocketProtocol.open_parsed) ---------


def _mask(payload: bytes) -> bytes:
    """A client text frame (masked, as RFC 6455 requires of clients)."""
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_accept_key_and_headers_follow_rfc_6455(server: str, token_for: Callable[..., str]) -> None:
    """RFC 6455 1.3's own example key; the response carries uvicorn's date header, nothing of websockets'."""
    head = _upgrade(b"Authorization: Bearer " + token_for("u_rfc").encode()).replace(KEY, b"dGhlIHNhbXBsZSBub25jZQ==")
    reader, writer = await _open(server)
    try:
        writer.write(head)
        response = await _response_head(reader)
        lines = response.split(b"\r\n")
        assert lines[0] == b"HTTP/1.1 101 Switching Protocols"
        assert b"Upgrade: websocket" in lines and b"Connection: Upgrade" in lines
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in lines
        assert any(line.startswith(b"date: ") for line in lines)
        assert not any(line.lower().startswith(b"sec-websocket-extensions") for line in lines)
    finally:
        writer.close()


async def test_frames_sent_with_the_request_are_read(server: str, token_for: Callable[..., str]) -> None:
    """A client that pipelines a message behind its request (one packet) still gets its answer."""
    head = _upgrade(b"Authorization: Bearer " + token_for("u_eager").encode())
    reader, writer = await _open(server)
    try:
        writer.write(head + _mask(b'{"op":"ping","ref":7}'))
        assert (await _response_head(reader)).startswith(b"HTTP/1.1 101 ")
        messages: list[dict[str, object]] = []
        while len(messages) < 3:
            messages += [json.loads(line) for line in (await _text_frame(reader)).split("\n")]
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
    server: str, change: tuple[bytes, bytes], status: int, says: bytes
) -> None:
    """What the shortcut does not accept, websockets refuses exactly as it did before the shortcut."""
    reader, writer = await _open(server)
    try:
        writer.write(_upgrade().replace(*change))
        response = await _response_head(reader) + await asyncio.wait_for(reader.read(), 5)
        assert response.startswith(b"HTTP/1.1 %d " % status)
        assert says in response
    finally:
        writer.close()


async def test_refused_origin_is_403_before_any_frame(
    make_settings: Callable[..., Settings], sqlite_database: str
) -> None:
    settings = make_settings(DATABASE_URL=sqlite_database, ALLOWED_ORIGINS="https://shop.example.com")
    async with serving(create_app(settings), settings) as address:
        reader, writer = await _open(address)
        try:
            writer.write(_upgrade(b"Origin: https://evil.example.com"))
            assert (await _response_head(reader)).startswith(b"HTTP/1.1 403 ")
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


# --- the request-head deadline and size limit (slow and hostile clients) ----------------------


@pytest.fixture
def short_head_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(UpgradeFirstProtocol, "HEAD_TIMEOUT_SECONDS", 0.3)
    return 0.3


async def _answer_then_eof(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), 5)


@pytest.mark.parametrize("sent", [b"", b"GET /ws HTT"], ids=["silent", "trickling"])
async def test_a_head_not_sent_in_time_gets_408_and_the_socket_is_closed(
    server: str, short_head_timeout: float, sent: bytes
) -> None:
    reader, writer = await _open(server)
    try:
        writer.write(sent)
        answer = await _answer_then_eof(reader)  # read() returns once the server closed
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    finally:
        writer.close()


async def test_an_endless_head_gets_431(server: str) -> None:
    reader, writer = await _open(server)
    try:
        writer.write(b"GET /ws HTTP/1.1\r\nX-Filler: " + b"a" * UpgradeFirstProtocol.MAX_HEAD_BYTES)
        answer = await _answer_then_eof(reader)
        assert answer.startswith(b"HTTP/1.1 431 ")
    finally:
        writer.close()


async def test_a_head_sent_byte_by_byte_in_time_is_upgraded(
    server: str, token_for: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Buffered until its blank line, then parsed like a head sent in one packet (the shortcut, not uvicorn's path)."""
    from app.realtime.uvicorn_ws import FramedWebSocketProtocol

    opened: list[bool] = []
    open_parsed = FramedWebSocketProtocol.open_parsed

    def recording(self: FramedWebSocketProtocol, request: object) -> bool:
        opened.append(open_parsed(self, request))  # type: ignore[arg-type]
        return opened[-1]

    monkeypatch.setattr(FramedWebSocketProtocol, "open_parsed", recording)
    request = _upgrade(b"Authorization: Bearer " + token_for("u_trickle").encode())
    reader, writer = await _open(server)
    try:
        for index in range(len(request)):
            writer.write(request[index : index + 1])
            await writer.drain()
            if index % 50 == 0:
                await asyncio.sleep(0.01)  # separate packets
        assert (await _response_head(reader)).startswith(b"HTTP/1.1 101 ")
        assert '"op":"welcome"' in await _text_frame(reader)
        assert opened == [True]
    finally:
        writer.close()


async def test_plain_http_is_not_held_by_the_deadline(server: str, short_head_timeout: float) -> None:
    """The deadline covers the first head only: a keep-alive connection's later requests are uvicorn's."""
    reader, writer = await _open(server)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await _http_response(reader))[0].startswith(b"HTTP/1.1 200 ")
        await asyncio.sleep(short_head_timeout * 2)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        # uvicorn's keep-alive timeout is 5 s: the second request is still answered
        assert (await _http_response(reader))[0].startswith(b"HTTP/1.1 200 ")
    finally:
        writer.close()


async def test_pipelined_http_requests_are_all_answered(server: str) -> None:
    """Bytes past the first head (a second request) reach uvicorn's HTTP protocol with it."""
    reader, writer = await _open(server)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        for _ in range(2):
            head, body = await _http_response(reader)
            assert head.startswith(b"HTTP/1.1 200 ") and b'"ok"' in body
    finally:
        writer.close()
