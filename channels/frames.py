"""Server-to-client WebSocket text frames (RFC 6455 section 5.2), built once and shared.

A server's frames are never masked, so the framed bytes of a message are the same for every
recipient: the hub frames an event once and each connection hands those very bytes to its
transport. ``FrameSink`` is what a transport must offer for that (``app/realtime/fast_path/framed_ws.py``
provides it over uvicorn); transports without one use ``SendFrame`` and frame on their own.
"""

from __future__ import annotations

import struct
from typing import Protocol

__all__ = ["FrameSink", "text_frame"]

_FIN_TEXT = 0x81  # FIN bit set, opcode 0x1 (text): every message fits one frame
_HEADER_16 = struct.Struct("!BBH")
_HEADER_64 = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """Frame ``payload`` (UTF-8 JSON) as one unmasked, unfragmented text frame."""
    length = len(payload)
    if length < 126:
        return bytes((_FIN_TEXT, length)) + payload
    if length < 1 << 16:
        return _HEADER_16.pack(_FIN_TEXT, 126, length) + payload
    return _HEADER_64.pack(_FIN_TEXT, 127, length) + payload


class FrameSink(Protocol):
    """A WebSocket transport that takes pre-framed bytes, written without a task switch."""

    def write(self, frame: bytes) -> bool:
        """Write one complete frame; False once the socket is closing (nothing was written)."""
        ...

    def buffered(self) -> int:
        """Bytes accepted by ``write`` but not yet handed to the kernel."""
        ...

    def writable(self) -> bool:
        """False while the transport asked us to pause writing (its buffer is over the high-water mark)."""
        ...

    async def wait_writable(self) -> None:
        """Wait until writing may resume (also returns when the connection is lost)."""
        ...
