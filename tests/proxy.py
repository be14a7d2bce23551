"""A TCP proxy in front of a live server that ends the first SSE stream right after its opening block.

Browsers reach the server through it; every connection is relayed byte for byte, except that the
first ``GET /sse`` response is ended after its first chunk (the stream's opening block), as a proxy
that closes long responses would: the stream drops at the worst moment, before its first event.
It is ended with the last chunk rather than a reset: a browser may discard data that arrives with a
connection error, and the test is about what the stream sent, not about that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

__all__ = ["StreamCutter", "cutting_proxy"]


@dataclass
class StreamCutter:
    """What the proxy saw: set when the first stream was cut, and the request heads of every stream."""

    cut: asyncio.Event = field(default_factory=asyncio.Event)
    stream_requests: list[bytes] = field(default_factory=list)


class _Relayed:
    """One browser connection through the proxy (HTTP keep-alive: the stream may follow other requests on it)."""

    def __init__(self, seen: StreamCutter) -> None:
        self.seen = seen
        self.watching = False  # the stream's request went out and it was not cut yet: watch its response
        self.response = b""

    async def to_server(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            if b"GET /sse" in data:
                self.seen.stream_requests.append(data)
                self.watching = not self.seen.cut.is_set()
                self.response = b""
            sink.write(data)
            await sink.drain()

    async def to_client(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Relay the server's bytes; return once the first stream's first chunk was passed on and the response ended."""
        while data := await source.read(65536):
            if not self.watching:
                sink.write(data)
                await sink.drain()
                continue
            self.response += data
            end = _first_chunk_end(self.response)
            if end is None:
                continue
            sink.write(self.response[:end] + b"0\r\n\r\n")  # the last chunk: the response ends here
            await sink.drain()
            self.seen.cut.set()
            return


def _first_chunk_end(response: bytes) -> int | None:
    """Where the first chunk of a chunked response ends, once it is all there."""
    head, separator, body = response.partition(b"\r\n\r\n")
    size_line, crlf, rest = body.partition(b"\r\n")
    if not separator or not crlf:
        return None
    size = int(size_line.split(b";")[0], 16)
    if len(rest) < size + 2:
        return None
    return len(head) + 4 + len(size_line) + 2 + size + 2


@asynccontextmanager
async def cutting_proxy(upstream: str) -> AsyncIterator[tuple[str, StreamCutter]]:
    """Serve a proxy to ``upstream`` (host:port) for the block; yields its host:port and what it saw."""
    seen = StreamCutter()
    host, port = upstream.split(":")
    tasks: set[asyncio.Task[None]] = set()

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(host, int(port))
        relayed = _Relayed(seen)
        to_server = asyncio.create_task(relayed.to_server(client_reader, server_writer))
        try:
            await relayed.to_client(server_reader, client_writer)
        except ConnectionError:
            pass
        finally:
            to_server.cancel()
            for writer in (client_writer, server_writer):
                writer.close()
            await asyncio.gather(to_server, return_exceptions=True)

    def start(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(relay(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(start, "127.0.0.1", 0)
    proxy_host, proxy_port = server.sockets[0].getsockname()[:2]
    try:
        yield f"{proxy_host}:{proxy_port}", seen
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await server.wait_closed()
