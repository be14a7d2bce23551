"""The upgrade shortcut (app/realtime/fast_path/upgrade.py): raw sockets against a real uvicorn server.

A well-formed WebSocket upgrade head goes straight to the WebSocket protocol; every other head
(HTTP requests, malformed heads) must get exactly what uvicorn's own HTTP protocol answers; a head
that does not arrive in time, or never ends, is refused (408, 431).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from app.main import create_app
from app.platform.settings import Settings
from app.realtime.fast_path.upgrade import UpgradeFirstProtocol, websocket_upgrade
from app.server import uvicorn_options
from tests.live import serving
from tests.rawsocket import (
    UPGRADE,
    http_response,
    open_socket,
    response_head,
    text_frame,
    upgrade_request,
)
from tests.waiting import eventually

pytestmark = pytest.mark.fast_path

# --- the classifier ---------------------------------------------------------------------------


def test_a_websocket_upgrade_is_parsed_with_header_names_lowered() -> None:
    """A whole upgrade head parses: names lowered, values trimmed, later bytes kept; it serialises back to itself."""
    head = upgrade_request(b"AUTHORIZATION: Bearer Abc.Def", b"X-Mixed-Case:  Value With Spaces ")
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
    """The parsed target keeps the query string as sent (a ticket, percent-encoded)."""
    request = websocket_upgrade(upgrade_request().replace(b"GET /ws ", b"GET /ws?ticket=abc%20d "))
    assert request is not None and request.target == b"/ws?ticket=abc%20d"


def test_connection_may_list_several_tokens() -> None:
    """Connection: keep-alive, Upgrade is an upgrade: Upgrade may be one token of several."""
    head = UPGRADE.replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade") + b"\r\n"
    assert websocket_upgrade(head) is not None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(UPGRADE, id="head not complete yet"),
        pytest.param(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", id="plain GET"),
        pytest.param(upgrade_request().replace(b"GET ", b"POST "), id="not GET"),
        pytest.param(upgrade_request().replace(b"HTTP/1.1", b"HTTP/1.0"), id="HTTP/1.0"),
        pytest.param(upgrade_request().replace(b"Upgrade: websocket", b"Upgrade: h2c"), id="another upgrade"),
        pytest.param(
            upgrade_request().replace(b"Connection: Upgrade", b"Connection: keep-alive"), id="no Connection upgrade"
        ),
        pytest.param(upgrade_request(b"Bad Header Line"), id="line without colon"),
        pytest.param(upgrade_request(b"Bad Name: x"), id="space in a name"),
        pytest.param(upgrade_request(b"X-Control: a\x01b"), id="control character in a value"),
        pytest.param(upgrade_request(b"Transfer-Encoding: chunked"), id="chunked body"),
        pytest.param(upgrade_request(b"Content-Length: 5"), id="a body"),
        pytest.param(upgrade_request(b"X-Long: " + b"a" * 9000), id="line too long"),
        pytest.param(upgrade_request(*(b"X-H%d: 1" % i for i in range(130))), id="too many fields"),
        pytest.param(upgrade_request().replace(b"/ws", b"/w s"), id="space in the target"),
    ],
)
def test_everything_else_goes_to_uvicorns_http_protocol(data: bytes) -> None:
    """An incomplete, non-GET, HTTP/1.0, non-websocket, malformed, bodied or oversized head is no upgrade."""
    assert websocket_upgrade(data) is None


def test_an_empty_body_length_is_still_an_upgrade() -> None:
    """Content-Length: 0 announces no body, so the head is still an upgrade."""
    assert websocket_upgrade(upgrade_request(b"Content-Length: 0")) is not None


def test_serve_configures_the_shortcut(sqlite_settings: Settings) -> None:
    """serve's uvicorn options select UpgradeFirstProtocol as the HTTP protocol."""
    from uvicorn.config import Config

    config = Config("app.main:create_app", **{**uvicorn_options(sqlite_settings), "workers": 1})
    config.load()
    assert config.http_protocol_class is UpgradeFirstProtocol


# --- live ---------------------------------------------------------------------------------------


@pytest.fixture
def head_chunks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The chunks the server's ``UpgradeFirstProtocol`` received, in order (the head, before any hand-over)."""
    chunks: list[bytes] = []
    data_received = UpgradeFirstProtocol.data_received

    def recording(self: UpgradeFirstProtocol, data: bytes) -> None:
        chunks.append(data)
        data_received(self, data)

    monkeypatch.setattr(UpgradeFirstProtocol, "data_received", recording)
    return chunks


@pytest.fixture
def accepted(monkeypatch: pytest.MonkeyPatch) -> list[UpgradeFirstProtocol]:
    """The server's ``UpgradeFirstProtocol`` of each connection it accepted."""
    protocols: list[UpgradeFirstProtocol] = []
    connection_made = UpgradeFirstProtocol.connection_made

    def recording(self: UpgradeFirstProtocol, transport: asyncio.BaseTransport) -> None:
        protocols.append(self)
        connection_made(self, transport)

    monkeypatch.setattr(UpgradeFirstProtocol, "connection_made", recording)
    return protocols


async def test_upgrade_in_one_packet_with_mixed_case_headers_is_welcomed(
    sqlite_server: str, token_for: Callable[..., str]
) -> None:
    """An upgrade sent in one packet, AUTHORIZATION in capitals, gets 101 and the welcome for the token's user."""
    reader, writer = await open_socket(sqlite_server)
    try:
        writer.write(upgrade_request(b"AUTHORIZATION: Bearer " + token_for("u_raw").encode()))
        head = await response_head(reader)
        assert head.startswith(b"HTTP/1.1 101 ")
        welcome = json.loads((await text_frame(reader)).split("\n")[0])
        assert welcome == {"op": "welcome", "userId": "u_raw", "channels": ["user:u_raw"]}
    finally:
        writer.close()


async def test_upgrade_split_over_packets_still_upgrades(
    sqlite_server: str, token_for: Callable[..., str], head_chunks: list[bytes]
) -> None:
    """A head whose first 25 bytes the server has already read on their own is still upgraded when the rest comes."""
    request = upgrade_request(b"Authorization: Bearer " + token_for("u_split").encode())
    reader, writer = await open_socket(sqlite_server)
    try:
        writer.write(request[:25])
        await writer.drain()
        await eventually(lambda: head_chunks == [request[:25]], what="the server read the first 25 bytes alone")
        writer.write(request[25:])
        assert (await response_head(reader)).startswith(b"HTTP/1.1 101 ")
        assert '"op":"welcome"' in await text_frame(reader)
        assert b"".join(head_chunks) == request and len(head_chunks) >= 2
    finally:
        writer.close()


@pytest.mark.parametrize(
    "request_head",
    [
        upgrade_request(b"Bad Header Line", b"X-Request-ID: malformed-12345"),
        b"GET /health HTTP/1.1\r\nX-Request-ID: malformed-12345\r\nBad Header Line\r\n\r\n",
        b"GET /health HTTP/1.1 extra\r\nX-Request-ID: malformed-12345\r\n\r\n",
        b"\x16\x03\x01 not http\r\nX-Request-ID: malformed-12345\r\n\r\n",
    ],
    ids=["upgrade", "plain", "request line", "tls"],
)
async def test_a_malformed_head_gets_a_problem_400_with_request_id(sqlite_server: str, request_head: bytes) -> None:
    """A head that is not HTTP/1.x grammar is answered 400 problem+json with the request id, then closed."""
    reader, writer = await open_socket(sqlite_server)
    try:
        writer.write(request_head)
        head, body = await http_response(reader)
        assert head.startswith(b"HTTP/1.1 400 ")
        assert b"content-type: application/problem+json" in head
        assert b"x-request-id: malformed-12345" in head
        assert b'"status":400' in body
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


async def test_incomplete_handshake_gets_websockets_400(sqlite_server: str) -> None:
    """An upgrade without Sec-WebSocket-Key is answered 400 by websockets, naming the missing header."""
    reader, writer = await open_socket(sqlite_server)
    try:
        writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        head = await response_head(reader)
        assert head.startswith(b"HTTP/1.1 400 ")
        assert b"Sec-WebSocket-Key" in await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_plain_http_keeps_alive_over_several_requests(sqlite_server: str) -> None:
    """Plain HTTP through the shortcut keeps the connection alive: two requests, two 200s."""
    reader, writer = await open_socket(sqlite_server)
    try:
        for _ in range(2):
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            head, body = await http_response(reader)
            assert head.startswith(b"HTTP/1.1 200 ") and b'"ok"' in body
    finally:
        writer.close()


async def test_a_socket_that_never_speaks_is_closed_at_shutdown(
    sqlite_settings: Settings, accepted: list[UpgradeFirstProtocol]
) -> None:
    """A connection the server accepted but that never sent a byte is closed by the shutdown, not leaked."""
    app = create_app(sqlite_settings)
    async with serving(app, sqlite_settings) as address:
        reader, writer = await open_socket(address)
        await eventually(lambda: accepted, what="the server accepted the connection")  # not a byte sent
    # serving() returned, so uvicorn's shutdown finished; the silent socket was closed, not leaked.
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


# --- the request-head deadline and size limit (slow and hostile clients) ----------------------


@pytest.fixture
def short_head_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(UpgradeFirstProtocol, "HEAD_TIMEOUT_SECONDS", 0.3)
    return 0.3


async def _answer_then_eof(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), 5)


@pytest.mark.parametrize("sent", [b"", b"GET /ws HTT"], ids=["silent", "trickling"])
async def test_a_head_not_sent_in_time_gets_408_and_the_socket_is_closed(
    sqlite_server: str, short_head_timeout: float, sent: bytes
) -> None:
    """A silent or trickling head past the deadline gets a 408 problem+json with a request id, then EOF."""
    reader, writer = await open_socket(sqlite_server)
    try:
        writer.write(sent)
        answer = await _answer_then_eof(reader)  # read() returns once the server closed
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert b"\r\nx-request-id: " in answer and b"application/problem+json" in answer
    finally:
        writer.close()


async def test_an_endless_head_gets_431(sqlite_server: str) -> None:
    """A head that grows past MAX_HEAD_BYTES gets a 431 problem+json with its request id, then EOF."""
    reader, writer = await open_socket(sqlite_server)
    try:
        writer.write(
            b"GET /ws HTTP/1.1\r\nX-Request-ID: endless-12345\r\nX-Filler: "
            + b"a" * UpgradeFirstProtocol.MAX_HEAD_BYTES
        )
        answer = await _answer_then_eof(reader)
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert b"\r\nx-request-id: endless-12345\r\n" in answer and b"application/problem+json" in answer
    finally:
        writer.close()


async def test_a_head_sent_byte_by_byte_in_time_is_upgraded(
    sqlite_server: str, token_for: Callable[..., str], monkeypatch: pytest.MonkeyPatch, head_chunks: list[bytes]
) -> None:
    """Buffered until its blank line, then parsed like a head sent in one packet (the shortcut, not uvicorn's path)."""
    from app.realtime.fast_path.framed_ws import FramedWebSocketProtocol

    opened: list[bool] = []
    open_parsed = FramedWebSocketProtocol.open_parsed

    def recording(self: FramedWebSocketProtocol, request: object) -> bool:
        opened.append(open_parsed(self, request))  # type: ignore[arg-type]
        return opened[-1]

    monkeypatch.setattr(FramedWebSocketProtocol, "open_parsed", recording)
    request = upgrade_request(b"Authorization: Bearer " + token_for("u_trickle").encode())
    reader, writer = await open_socket(sqlite_server)
    try:
        for index in range(len(request)):
            writer.write(request[index : index + 1])
            await writer.drain()
            if index % 50 == 0:  # separate packets: the server has read every byte sent so far

                def read_all(sent: int = index + 1) -> bool:
                    return sum(map(len, head_chunks)) == sent

                await eventually(read_all, what=f"the server read the {index + 1} bytes sent")
        assert (await response_head(reader)).startswith(b"HTTP/1.1 101 ")
        assert '"op":"welcome"' in await text_frame(reader)
        assert opened == [True]
        assert b"".join(head_chunks) == request and len(head_chunks) > len(request) // 50
    finally:
        writer.close()


async def test_plain_http_is_not_held_by_the_deadline(sqlite_server: str, short_head_timeout: float) -> None:
    """The deadline covers the first head only: a keep-alive connection's later requests are uvicorn's."""
    reader, writer = await open_socket(sqlite_server)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await http_response(reader))[0].startswith(b"HTTP/1.1 200 ")
        # A real pause, twice the head deadline: what is held is that nothing fires when it has passed.
        await asyncio.sleep(short_head_timeout * 2)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        # uvicorn's keep-alive timeout is 5 s: the second request is still answered
        assert (await http_response(reader))[0].startswith(b"HTTP/1.1 200 ")
    finally:
        writer.close()


async def test_pipelined_http_requests_are_all_answered(sqlite_server: str) -> None:
    """Bytes past the first head (a second request) reach uvicorn's HTTP protocol with it."""
    reader, writer = await open_socket(sqlite_server)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        for _ in range(2):
            head, body = await http_response(reader)
            assert head.startswith(b"HTTP/1.1 200 ") and b'"ok"' in body
    finally:
        writer.close()
