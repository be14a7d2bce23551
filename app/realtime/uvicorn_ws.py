"""uvicorn's websockets-sansio protocol plus a direct frame writer, offered to the app as a scope extension.

Server frames are unmasked, so a message framed once (``channels.text_frame``) can be written as is
to every socket: ``scope["extensions"]["push.frames"]`` gives ``/ws`` a ``FrameWriter`` that calls
``transport.write`` with those bytes, skipping the ASGI ``send`` round trip (bytes to str and back,
a frame build and a task switch per message). Everything else stays uvicorn's: the handshake,
pings and their timeout, 1009 for oversized frames, the close handshake and the 1012 shutdown close.
Selected with ``ws="app.realtime.uvicorn_ws:FramedWebSocketProtocol"`` (``app/server.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

__all__ = ["FRAMES_EXTENSION", "FrameWriter", "FramedWebSocketProtocol"]

FRAMES_EXTENSION = "push.frames"


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
    """uvicorn's sans-I/O WebSocket protocol whose scope carries a ``FrameWriter``; lighter per idle socket."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Same interface as far as uvicorn uses them (put_nowait/get/empty; set/clear/wait/is_set).
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Writable()  # type: ignore[assignment]

    def handle_connect(self, event: Request) -> None:
        """Build the scope as uvicorn does, then add the frame writer to its extensions."""
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None:  # None when the handshake was refused before a scope existed
            scope["extensions"][FRAMES_EXTENSION] = FrameWriter(self)

    async def send(self, message: Any) -> None:
        """uvicorn's ``send``; once the handshake is answered its request and response are let go (~3 KiB)."""
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            request: Request | None = getattr(self, "request", None)
            if request is not None:
                # websockets' suspended parser generator keeps the Request (a local of its frame) for the
                # socket's life: emptying its headers frees them (~2.4 KiB; the scope has its own copy).
                request.headers.clear()
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
