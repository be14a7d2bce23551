"""uvicorn's websockets-sansio protocol plus a direct frame writer, offered to the app as a scope extension.

Server frames are unmasked, so a message framed once (``channels.text_frame``) can be written as is
to every socket: ``scope["extensions"]["push.frames"]`` gives ``/ws`` a ``FrameWriter`` that calls
``transport.write`` with those bytes, skipping the ASGI ``send`` round trip (bytes to str and back,
a frame build and a task switch per message). Everything else stays uvicorn's: the handshake,
pings and their timeout, 1009 for oversized frames and the 1012 shutdown close. The app's close is
sent at once, even while the transport is paused (a slow consumer's 4008), and the client gets
``CLOSE_HANDSHAKE_SECONDS`` to answer it before the TCP connection is dropped (uvicorn waits 10 s).
Selected by ``app.realtime.fast_path.uvicorn_protocols`` (``app/server.py``) where this uvicorn passes its checks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from typing import Any
from urllib.parse import unquote

from uvicorn.protocols.utils import ClientDisconnected, get_client_addr, get_path_with_query_string
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.http11 import Request
from websockets.protocol import OPEN

from app.realtime.fast_path import FRAMES_EXTENSION
from app.realtime.fast_path.upgrade import UpgradeRequest

__all__ = ["CLOSE_HANDSHAKE_SECONDS", "FrameWriter", "FramedWebSocketProtocol"]

# How long a client has to answer the server's close frame before its TCP connection is dropped.
CLOSE_HANDSHAKE_SECONDS = 1.0
_WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
_SWITCHING_PROTOCOLS = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
)


class FrameWriter:
    """The ``FrameSink`` of one uvicorn WebSocket connection (see ``channels.frames.FrameSink``)."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    def write(self, frame: bytes) -> bool:
        """Write one complete frame; False once a close was sent or the socket is closing."""
        protocol = self._protocol
        # Only after the app accepted: before that the handshake response has not been written.
        if not protocol.handshake_complete or protocol.close_sent or protocol.transport.is_closing():
            return False
        protocol.transport.write(frame)
        return True

    def buffered(self) -> int:
        """Bytes in the transport's write buffer."""
        return self._protocol.transport.get_write_buffer_size()

    def writable(self) -> bool:
        """False while the transport paused writing (its buffer is over the high-water mark)."""
        return self._protocol.writable.is_set()

    async def wait_writable(self) -> None:
        """Wait for ``resume_writing`` (uvicorn also sets it when the connection is lost)."""
        await self._protocol.writable.wait()


class _Inbox:
    """uvicorn's receive queue, lighter: one consumer (the app's ``receive``), no ``join``.

    ``asyncio.Queue`` holds three deques and an Event (~3 KiB per idle socket); this holds a list.
    uvicorn pauses reading after each message until the app takes it, so the list stays short.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class _Writable:
    """uvicorn's ``writable`` Event, lighter: no deque until someone actually waits (a paused transport)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if not self._set:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return True


class FramedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol whose scope carries a ``FrameWriter``; lighter per socket.

    A request already parsed by ``UpgradeFirstProtocol`` is opened by ``open_parsed``: the handshake is
    checked and answered here (RFC 6455 4.2), and websockets' protocol starts in the OPEN state to read
    frames, so the request is not parsed a second time nor its response built through ``Headers`` (with a
    ``Date`` that uvicorn then replaces). Whatever that path does not cover goes through uvicorn's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Same interface as far as uvicorn uses them (put_nowait/get/empty; set/clear/wait/is_set).
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Writable()  # type: ignore[assignment]
        self.close_timeout = CLOSE_HANDSHAKE_SECONDS
        self._accept_value: bytes | None = None  # Sec-WebSocket-Accept of a request opened by open_parsed

    def open_parsed(self, request: UpgradeRequest) -> bool:
        """Start the ASGI app for a parsed upgrade request; False (nothing done) when uvicorn's path must take it.

        That is: a missing, repeated or malformed ``Sec-WebSocket-Key`` or ``Sec-WebSocket-Version``
        other than 13 (websockets answers those with 400), and per-message deflate to negotiate.
        """
        if self.config.ws_per_message_deflate:
            return False
        key = version = None
        subprotocols: list[str] = []
        for name, value in request.headers:
            if name == b"sec-websocket-key":
                if key is not None:
                    return False
                key = value
            elif name == b"sec-websocket-version":
                if version is not None:
                    return False
                version = value
            elif name == b"sec-websocket-protocol":
                subprotocols.extend(token.strip() for token in value.decode("latin-1").split(","))
        if version != b"13" or key is None or not _is_handshake_key(key):
            return False
        self._accept_value = base64.b64encode(hashlib.sha1(key + _WEBSOCKET_GUID).digest())
        # The handshake is ours: websockets' protocol only reads and writes frames from here on. uvicorn's
        # ServerProtocol still waits for a request line; opening it and restarting its parser makes it what
        # ServerProtocol(state=OPEN) is, without a second one per socket (a uuid4 and a parser: ~4% of a connect).
        conn = self.conn
        conn.state = OPEN
        conn.parser = conn.parse()
        next(conn.parser)
        raw_path, _, query_string = request.target.partition(b"?")
        scope: Any = {  # as uvicorn's handle_connect builds it, plus the frame writer
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": self.root_path,
            "path": self.root_path + unquote(raw_path.decode("ascii")),
            "raw_path": self.root_path.encode("ascii") + raw_path,
            "query_string": query_string,
            "headers": request.headers,
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}, FRAMES_EXTENSION: FrameWriter(self)},
        }
        self.scope = scope
        self.handshake_initiated = True
        self.queue.put_nowait({"type": "websocket.connect"})
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)
        if request.rest:
            self.data_received(request.rest)
        return True

    def handle_connect(self, event: Request) -> None:
        """Build the scope as uvicorn does, then add the frame writer to its extensions."""
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None:  # None when the handshake was refused before a scope existed
            scope["extensions"][FRAMES_EXTENSION] = FrameWriter(self)

    async def send(self, message: Any) -> None:
        """uvicorn's ``send``, except the accept of an ``open_parsed`` request and the app's close (``_close``)."""
        if self._accept_value is not None and message["type"] == "websocket.accept" and not self.handshake_complete:
            await self._accept_parsed(message)
            return
        if (
            message["type"] == "websocket.close"
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.disconnected
        ):
            self._close(message)
            return
        await super().send(message)
        # After uvicorn's own handshake its request and response would stay for the socket's life (~3 KiB).
        if self.handshake_complete and getattr(self, "response", None) is not None:
            request: Request | None = getattr(self, "request", None)
            if request is not None:
                # websockets' suspended parser generator keeps the Request (a local of its frame) for the
                # socket's life: emptying its headers frees them (~2.4 KiB; the scope has its own copy).
                request.headers.clear()
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]

    def _close(self, message: Any) -> None:
        """Send the app's close frame now and give the client ``CLOSE_HANDSHAKE_SECONDS`` to answer it.

        uvicorn first waits for the transport to be writable: a slow consumer closed with 4008 has a paused
        transport, so its close (and the app's ``websocket.disconnect``, which ends the endpoint and its count in
        ``push_connections``) waited until the client read its backlog or the ping timeout dropped it. Then
        uvicorn waits 10 s for the client's close frame. The frame is queued behind the backlog here, the
        endpoint ends at once, and a client that has not answered within the bound is cut off: ``abort``,
        because ``close`` would wait for a client that reads nothing to take the buffered bytes.
        """
        if self.transport.is_closing():
            return
        code = message.get("code", 1000)
        reason = message.get("reason", "") or ""
        try:
            self.conn.send_close(code, reason)
        except InvalidState:
            raise ClientDisconnected() from None
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()  # the client's close frame must be read
        self.close_timer = self.loop.call_later(self.close_timeout, self._close_handshake_expired)

    def _close_handshake_expired(self) -> None:
        self.close_timer = None
        self.transport.abort()

    async def _accept_parsed(self, message: Any) -> None:
        """Answer 101 with uvicorn's default headers (its ``date``) and the app's, as uvicorn's ``send`` does."""
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info(
                '%s - "WebSocket %s" [accepted]', get_client_addr(self.scope), get_path_with_query_string(self.scope)
            )
        accept_value = self._accept_value
        if accept_value is None:  # send() only calls this while it is set
            raise RuntimeError("no parsed upgrade request to accept")
        response = [_SWITCHING_PROTOCOLS, accept_value, b"\r\n"]
        for name, value in (*self.default_headers, *message.get("headers", ())):
            response += [name, b": ", value, b"\r\n"]
        subprotocol = message.get("subprotocol")
        if subprotocol:
            response += [b"Sec-WebSocket-Protocol: ", subprotocol.encode("latin-1"), b"\r\n"]
        response.append(b"\r\n")
        self._accept_value = None
        if not self.transport.is_closing():
            self.handshake_complete = True
            self.transport.write(b"".join(response))
            self.start_keepalive()


def _is_handshake_key(key: bytes) -> bool:
    """RFC 6455 4.2.1: the base64 encoding of 16 bytes (websockets' own check)."""
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False
