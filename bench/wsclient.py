"""A lean WebSocket load client on asyncio Protocols: hand-made upgrade, a minimal frame parser.

One ``Client`` per socket, all sharing one ``Pool`` of counters. Text frames are counted as
``frame.count(b"\\n") + 1`` messages; only the first message of each frame (the oldest, so the
latency sample is pessimistic) and, for batched frames, the last one (the highest ``seq``) are
decoded. Client frames (pong, close) are masked as RFC 6455 requires.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

__all__ = ["Client", "Pool", "close_clients", "open_clients", "poll_until"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_ACK = b'"op":"subscribed"'
LATENCY_SAMPLE_CAP = 2_000_000


class _Data(msgspec.Struct):
    seq: int = -1
    sent: float = 0.0


class _Message(msgspec.Struct):
    data: _Data | None = None


_decode = msgspec.json.Decoder(_Message).decode


@dataclass(eq=False)
class Pool:
    """Counters shared by every client of one run (reset between measurement steps)."""

    received: int = 0  # messages after the subscribe ack, all clients
    frames: int = 0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    closes: dict[int, int] = field(default_factory=dict)  # close code -> clients
    errors: dict[str, int] = field(default_factory=dict)  # handshake or socket error -> clients

    def reset(self, clients: list[Client]) -> None:
        """Zero the step counters of the pool and of ``clients``."""
        self.received = 0
        self.frames = 0
        self.latencies = array("d")
        for client in clients:
            client.count = 0
            client.max_seq = -1

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def _mask(opcode: int, payload: bytes) -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + key + masked  # control frames are < 126 bytes


class Client(asyncio.Protocol):
    """One WebSocket connection that counts messages and samples latency into ``pool``."""

    def __init__(self, pool: Pool, host: str, port: int, token: str, name: str = "") -> None:
        self.pool = pool
        self.name = name  # the user id (token sub) this client connects as
        self.count = 0
        self.max_seq = -1
        self.close_code: int | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False
        self._host, self._port, self._token = host, port, token
        self._key = base64.b64encode(os.urandom(16))
        self._upgraded = False
        self._live = False
        self._buf = bytearray()
        self._fragments: bytearray | None = None
        self._transport: asyncio.Transport | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        request = (
            f"GET /ws HTTP/1.1\r\nHost: {self._host}:{self._port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self._key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {self._token}\r\n\r\n"
        )
        transport.write(request.encode())  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"lost before the subscribe ack ({exc or 'eof'})"))

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._handshake(bytes(buf[:end]))
            del buf[: end + 4]
            if not self._upgraded:
                return
        self._parse(buf)

    # internals

    def _handshake(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 101"):
            self._fail(f"handshake {lines[0][9:12].decode(errors='replace')}")
            return
        expected = base64.b64encode(hashlib.sha1(self._key + _GUID).digest())
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        if headers.get(b"sec-websocket-accept") != expected:
            self._fail("handshake bad accept")
            return
        self._upgraded = True

    def _fail(self, kind: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(kind))
        if self._transport is not None:
            self._transport.close()

    def _parse(self, buf: bytearray) -> None:
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if size - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            self._frame(b0 & 0x80, b0 & 0x0F, payload)
        if pos:
            del buf[:pos]

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode == 0x0:  # continuation
            if self._fragments is None:
                return
            self._fragments += payload
            if not fin:
                return
            payload, opcode, self._fragments = bytes(self._fragments), 0x1, None
        elif opcode in (0x1, 0x2) and not fin:
            self._fragments = bytearray(payload)
            return
        if opcode == 0x1 or opcode == 0x2:
            self._text(payload)
        elif opcode == 0x9:
            if self._transport is not None:
                self._transport.write(_mask(0xA, payload))
        elif opcode == 0x8:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.pool.closes[self.close_code] = self.pool.closes.get(self.close_code, 0) + 1
            if not self.ready.done():
                self.ready.set_exception(ConnectionError(f"closed {self.close_code} before the subscribe ack"))
            if self._transport is not None:
                self._transport.write(_mask(0x8, payload[:2]))
                self._transport.close()

    def _text(self, frame: bytes) -> None:
        if not self._live:
            if _ACK in frame:
                self._live = True
                if not self.ready.done():
                    self.ready.set_result(None)
            return
        pool = self.pool
        newline = frame.find(b"\n")
        if newline < 0:
            n, first, last = 1, frame, None
        else:
            n = frame.count(b"\n") + 1
            first, last = frame[:newline], frame[frame.rfind(b"\n") + 1 :]
        self.count += n
        pool.received += n
        pool.frames += 1
        try:
            data = _decode(first).data
            if data is not None:
                if data.sent and len(pool.latencies) < LATENCY_SAMPLE_CAP:
                    pool.latencies.append(time.time() - data.sent)
                if last is not None:
                    data = _decode(last).data or data
                if data.seq > self.max_seq:
                    self.max_seq = data.seq
        except msgspec.DecodeError:
            pool.error("undecodable message")

    def close(self) -> None:
        """Send a close frame and drop the socket."""
        if self._transport is not None and not self.closed:
            self._transport.write(_mask(0x8, (1000).to_bytes(2, "big")))
            self._transport.close()


async def poll_until(condition: Callable[[], bool], within: float, interval: float = 0.01) -> bool:
    """Check ``condition`` every ``interval`` s for at most ``within`` s; return its last value."""
    deadline = time.perf_counter() + within
    for _ in range(int(within / interval) + 2):
        if condition():
            return True
        if time.perf_counter() >= deadline:
            break
        await asyncio.sleep(interval)
    return condition()


async def _open_one(pool: Pool, host: str, port: int, token: str, name: str, within: float) -> Client | None:
    loop = asyncio.get_running_loop()
    client = Client(pool, host, port, token, name)
    try:
        async with asyncio.timeout(within):
            await loop.create_connection(lambda: client, host, port)
            await client.ready
    except (TimeoutError, OSError) as exc:
        pool.error(str(exc).split(" (")[0] if isinstance(exc, ConnectionError) else type(exc).__name__)
        client.close()
        return None
    return client


async def open_clients(
    pool: Pool, host: str, port: int, users: list[tuple[str, str]], *, concurrency: int, within: float = 60.0
) -> tuple[list[Client], float]:
    """Open one client per ``(user id, token)``, at most ``concurrency`` handshakes in flight (0: all at once).

    Returns the clients whose subscribe ack arrived (in order) and the seconds it took.
    """
    semaphore = asyncio.Semaphore(concurrency or len(users) or 1)

    async def one(name: str, token: str) -> Client | None:
        async with semaphore:
            return await _open_one(pool, host, port, token, name, within)

    started = time.perf_counter()
    results = await asyncio.gather(*(one(name, token) for name, token in users))
    elapsed = time.perf_counter() - started
    return [c for c in results if c is not None], elapsed


async def close_clients(clients: list[Client]) -> None:
    """Close every client and give the server a moment to see it."""
    for client in clients:
        client.close()
    await asyncio.sleep(0.2)
