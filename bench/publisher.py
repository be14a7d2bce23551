"""The load publisher: bare Redis ``PUBLISH`` commands written as raw RESP on one socket.

A bare PUBLISH of the producer envelope is what any service (and the baseline's own producers) can
send; it is relayed live with ``offset: null``. By default the envelope is what producers really
send: ``{"type","data"}`` without ``ts`` (the server stamps it) and a ~250-byte payload
(``stamped=True`` adds ``ts``; ``payload_bytes`` sets the size). Writing RESP by hand
keeps the publisher's CPU cost (it shares core 1 with the clients) to about a microsecond a message.
Each PUBLISH reply (the number of Redis subscribers that got it) is read back: a ``0`` means the
server was not subscribed to that channel.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime

from bench.wsclient import poll_until

__all__ = ["RawPublisher"]


_NOTE = b"courier is two streets away, ring twice; " * 100


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


class RawPublisher(asyncio.Protocol):
    """One RESP connection that pipelines PUBLISH commands and counts their integer replies."""

    def __init__(self, stamped: bool = False, payload_bytes: int = 250) -> None:
        self.stamped = stamped
        self.payload_bytes = payload_bytes
        self.replies = 0
        self.lost = False
        self.unheard = 0  # replies of 0: nobody subscribed to that channel
        self._sent = 0
        self._buf = b""
        self._transport: asyncio.Transport | None = None

    @classmethod
    async def connect(
        cls, host: str = "127.0.0.1", port: int = 6379, *, stamped: bool = False, payload_bytes: int = 250
    ) -> RawPublisher:
        loop = asyncio.get_running_loop()
        _transport, protocol = await loop.create_connection(lambda: cls(stamped, payload_bytes), host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True  # Redis went away (it is shared: other test suites restart it)

    async def reconnected(self) -> RawPublisher:
        """This publisher, or a fresh one if Redis dropped the connection."""
        if not self.lost:
            return self
        print("  (publisher: Redis connection was lost, probably restarted by another suite; reconnecting)")
        return await RawPublisher.connect(stamped=self.stamped, payload_bytes=self.payload_bytes)

    def data_received(self, data: bytes) -> None:
        lines = (self._buf + data).split(b"\r\n")
        self._buf = lines.pop()
        for line in lines:
            self.replies += 1
            if line == b":0":
                self.unheard += 1
            elif not line.startswith(b":"):
                raise RuntimeError(f"unexpected Redis reply {line[:200]!r}")

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def publish(self, commands: list[bytes]) -> None:
        """Write already-encoded PUBLISH commands in one write."""
        if self._transport is None or self._transport.is_closing():
            # Redis went away mid-step (another suite restarted it): the step will show these as missing.
            self.lost = True
            return
        self._transport.write(b"".join(commands))
        self._sent += len(commands)

    async def wait_replies(self, within: float = 10.0) -> bool:
        """Wait (bounded) until Redis answered every command sent; False if it did not within ``within`` s."""
        return await poll_until(lambda: self.replies >= self._sent, within)

    def command(self, channel: bytes, seq: int, sent: float, ts: bytes) -> bytes:
        """``PUBLISH <channel> {"type":"bench.tick","data":{"seq","sent","note"}[,"ts"]}`` as RESP.

        ``note`` pads the envelope to ``payload_bytes`` (a courier's status line, say); ``ts`` is
        there only when ``stamped``.
        """
        head = b'{"type":"bench.tick","data":{"seq":%d,"sent":%.6f,"note":"' % (seq, sent)
        tail = b'"},"ts":"%s"}' % ts if self.stamped else b'"}}'
        pad = max(0, self.payload_bytes - len(head) - len(tail))
        return b"*3\r\n$7\r\nPUBLISH\r\n" + _bulk(channel) + _bulk(head + _NOTE[:pad] + tail)

    async def run(
        self, channels: list[bytes], rate: float, seconds: float, expected: list[int] | None = None
    ) -> tuple[int, float]:
        """Publish ``rate`` messages a second for ``seconds`` to random ``channels``.

        ``expected[i]`` is incremented for each message sent to ``channels[i]``. Returns the number
        published and the perf_counter time of the last publish.
        """
        total = max(1, round(rate * seconds))
        sent = 0
        start = time.perf_counter()
        single = len(channels) == 1
        rng = random.Random(total)
        while sent < total:
            now = time.perf_counter()
            due = min(total, int((now - start) * rate) + 1)
            if due > sent:
                wall = time.time()
                ts = datetime.fromtimestamp(wall, UTC).isoformat().encode()
                commands: list[bytes] = []
                for seq in range(sent + 1, due + 1):
                    index = 0 if single else rng.randrange(len(channels))
                    if expected is not None:
                        expected[index] += 1
                    commands.append(self.command(channels[index], seq, wall, ts))
                self.publish(commands)
                sent = due
            if sent < total:
                next_at = start + sent / rate
                await asyncio.sleep(min(0.01, max(0.001, next_at - time.perf_counter())))
        return sent, time.perf_counter()
