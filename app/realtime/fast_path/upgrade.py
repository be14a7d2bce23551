"""uvicorn's HTTP protocol with a shortcut for WebSocket upgrades: the request head picks the protocol.

uvicorn builds its full HTTP protocol for every socket, parses the upgrade request with httptools
(a Python callback per header), re-serialises it and only then hands the socket to the WebSocket
protocol, which parses it again. About a tenth of the CPU of a ``/ws`` connect went there.

``UpgradeFirstProtocol`` reads a connection's request head. When it is a well-formed WebSocket
upgrade (``Connection: upgrade``, ``Upgrade: websocket``, the test uvicorn applies) the socket goes
straight to the configured WebSocket protocol: parsed, to a protocol that can take it so
(``FramedWebSocketProtocol.open_parsed``), else as bytes, which it validates itself (websockets
answers 400 to a bad key, as before). Anything else goes to uvicorn's own HTTP protocol with the
bytes received, so its answers are unchanged. A head that does not arrive within
``HEAD_TIMEOUT_SECONDS`` gets 408, one larger than ``MAX_HEAD_BYTES`` 431 (slow and hostile clients).
Selected by ``app.realtime.fast_path.uvicorn_protocols`` (``app/server.py``) where this uvicorn passes its checks.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.server import ServerState

from app.platform.problems import raw_problem_response
from app.platform.request_context import new_request_id

__all__ = ["UpgradeFirstProtocol", "UpgradeRequest", "websocket_upgrade"]

_HEAD_END = b"\r\n\r\n"
# RFC 9110/9112 grammar, as websockets' parser applies it: a head that matches is one it parses. One
# that does not goes to uvicorn's HTTP protocol, whose answer (400, 431, an upgrade after all) is the
# one it always gave; websockets would only have dropped the connection without a word. One regex
# checks every line at once (C speed); names are tokens, values visible characters, spaces or tabs.
_HEAD = re.compile(
    rb"GET [\x21-\x7e]+ HTTP/1\.1"
    rb"(?:\r\n[-!#$%&'*+.^_`|~0-9a-zA-Z]+:[\x09\x20-\x7e\x80-\xff]*)*"
)
# Any HTTP/1.x request head (RFC 9112: method, target, version; field lines). One that does not match
# is answered 400 here, as problem+json with a request id, rather than by uvicorn's plain-text 400.
_ANY_HEAD = re.compile(
    rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+ [\x21-\x7e]+ HTTP/1\.[01]"
    rb"(?:\r\n[-!#$%&'*+.^_`|~0-9a-zA-Z]+:[\x09\x20-\x7e\x80-\xff]*)*"
)
_REQUEST_ID = re.compile(rb"\r\nx-request-id:[ \t]*([^\r]*?)[ \t]*\r\n", re.IGNORECASE)
_MAX_LINE = 8190  # websockets reads lines of at most 8,192 bytes, CRLF included
_MAX_FIELDS = 128


class UpgradeRequest:
    """A parsed WebSocket upgrade request head, with header names in lower case as ASGI wants them."""

    __slots__ = ("headers", "rest", "target")

    def __init__(self, target: bytes, headers: list[tuple[bytes, bytes]], rest: bytes) -> None:
        self.target = target  # the request target: path and query string
        self.headers = headers
        self.rest = rest  # bytes that followed the head (frames a client sent without waiting)

    def serialize(self) -> bytes:
        """The request as bytes again, for a WebSocket protocol that parses its own."""
        lines = [b"GET " + self.target + b" HTTP/1.1"]
        lines += [name + b": " + value for name, value in self.headers]
        return b"\r\n".join(lines) + _HEAD_END + self.rest


def websocket_upgrade(data: bytes) -> UpgradeRequest | None:
    """The request, when ``data`` starts with a whole, well-formed WebSocket upgrade head; else None."""
    end = data.find(_HEAD_END)
    if end < 0 or not _HEAD.fullmatch(data, 0, end):
        return None
    request_line, *lines = data[:end].split(b"\r\n")
    if len(lines) > _MAX_FIELDS or max(len(request_line), *map(len, lines)) > _MAX_LINE:
        return None
    headers: list[tuple[bytes, bytes]] = []
    upgrade = connection_upgrade = False
    for line in lines:
        name, _, value = line.partition(b":")
        name = name.lower()
        value = value.strip(b" \t")
        headers.append((name, value))
        if name == b"upgrade":
            upgrade = value.lower() == b"websocket"
        elif name == b"connection":
            connection_upgrade = b"upgrade" in (token.strip() for token in value.lower().split(b","))
        elif name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return None  # a request body: websockets refuses it
    if not (upgrade and connection_upgrade):
        return None
    return UpgradeRequest(request_line[4:-9], headers, data[end + 4 :])


class UpgradeFirstProtocol(asyncio.Protocol):
    """Holds a new connection until its request head says which uvicorn protocol takes it over.

    The head is buffered until its blank line arrives, so a head split over packets is still
    recognised. A connection that has not sent a whole head within ``HEAD_TIMEOUT_SECONDS`` is
    answered 408 and closed, one whose head grows past ``MAX_HEAD_BYTES`` 431: uvicorn would hold a
    silent or trickling socket (slowloris) for ever, and with it a file descriptor.
    """

    HEAD_TIMEOUT_SECONDS = 10.0
    MAX_HEAD_BYTES = 65_536  # a head that is not over by then is refused with 431

    __slots__ = ("_app_state", "_buffer", "_config", "_deadline", "_loop", "_server_state", "_transport")

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self._loop = _loop
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses
        # Tracked like uvicorn's protocols, so a shutdown closes a socket that never sent a whole head.
        self._server_state.connections.add(self)  # type: ignore[arg-type]
        loop = self._loop or asyncio.get_running_loop()
        self._deadline = loop.call_later(self.HEAD_TIMEOUT_SECONDS, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server_state.connections.discard(self)
        self._cancel_deadline()

    def shutdown(self) -> None:
        """uvicorn's shutdown hook: no request was read, so there is nothing to answer."""
        self._cancel_deadline()
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if not self._buffer and _HEAD_END in data:  # the usual case: the whole head in the first packet
            self._cancel_deadline()
            self._hand_over(data)
            return
        searched = max(len(self._buffer) - 3, 0)  # the blank line may straddle the previous chunk
        self._buffer += data  # a bytearray: a head trickled byte by byte costs linear, not quadratic, copying
        if self._buffer.find(_HEAD_END, searched) < 0:
            if len(self._buffer) >= self.MAX_HEAD_BYTES:
                self._refuse(431, f"the request head is over {self.MAX_HEAD_BYTES} bytes", bytes(self._buffer))
            return
        head, self._buffer = bytes(self._buffer), bytearray()
        self._cancel_deadline()
        self._hand_over(head)

    def _hand_over(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:  # data_received only ever follows connection_made
            raise RuntimeError("data received before connection_made")
        self._server_state.connections.discard(self)
        end = data.find(_HEAD_END)
        if not _ANY_HEAD.fullmatch(data, 0, end):
            self._refuse(400, "malformed HTTP request head", data[: end + 2])
            return
        upgrade = websocket_upgrade(data) if self._config.ws_protocol_class is not None else None
        protocol_class: Any = AutoHTTPProtocol if upgrade is None else self._config.ws_protocol_class
        protocol = protocol_class(
            config=self._config, server_state=self._server_state, app_state=self._app_state, _loop=self._loop
        )
        protocol.connection_made(transport)
        transport.set_protocol(protocol)
        if upgrade is None:
            protocol.data_received(data)
        elif not (hasattr(protocol, "open_parsed") and protocol.open_parsed(upgrade)):
            protocol.data_received(upgrade.serialize())

    def _head_timed_out(self) -> None:
        self._deadline = None
        self._refuse(
            408, f"the request head did not arrive within {self.HEAD_TIMEOUT_SECONDS:g} s", bytes(self._buffer)
        )

    def _refuse(self, status: int, detail: str, head: bytes) -> None:
        """Answer problem+json (with the client's well-formed X-Request-ID, else a new one) and close."""
        self._cancel_deadline()
        self._buffer = bytearray()
        if self._transport is not None and not self._transport.is_closing():
            incoming = _REQUEST_ID.search(head)
            request_id = new_request_id(incoming.group(1) if incoming else None)
            self._transport.write(raw_problem_response(status, detail, request_id))
            self._transport.close()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
