"""Raw-socket helpers for tests that speak HTTP and WebSocket bytes to a live server by hand."""

from __future__ import annotations

import asyncio
import base64
import os

__all__ = [
    "KEY",
    "UPGRADE",
    "http_response",
    "masked_text_frame",
    "open_socket",
    "response_head",
    "text_frame",
    "upgrade_request",
]

KEY = base64.b64encode(os.urandom(16))
UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n"
)


def upgrade_request(*extra: bytes) -> bytes:
    """A whole WebSocket upgrade request for ``/ws``, with ``extra`` header lines."""
    return UPGRADE + b"".join(line + b"\r\n" for line in extra) + b"\r\n"


async def open_socket(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = address.split(":")
    return await asyncio.open_connection(host, int(port))


async def response_head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


async def http_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One whole HTTP response: its head and its body (by Content-Length)."""
    head = await response_head(reader)
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    return head, await asyncio.wait_for(reader.readexactly(length), 5)


async def text_frame(reader: asyncio.StreamReader) -> str:
    """One unmasked server text frame (the server's messages are short: 7- or 16-bit lengths)."""
    first, second = await asyncio.wait_for(reader.readexactly(2), 5)
    assert first == 0x81, f"expected a final text frame, got {first:#x}"
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    return (await asyncio.wait_for(reader.readexactly(length), 5)).decode()


def masked_text_frame(payload: bytes) -> bytes:
    """A client text frame (masked, as RFC 6455 requires of clients)."""
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
