"""A keep-alive HTTP/1.1 load client on raw asyncio streams, fast enough to saturate one server core.

httpx spends about a millisecond of client CPU per request, so from one core it holds ~1,000
requests/s and measures the client, not the server. This client writes prebuilt request bytes and
reads only the status line, the headers and ``Content-Length`` bytes of body: tens of microseconds
per request, so the server is the bottleneck and the rate it holds is its capacity.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec


@dataclass
class LoadResult:
    """What one load held: completed requests, their latencies (seconds) and the wall time."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


def post_request(host: str, port: int, path: str, token: str, body: object) -> bytes:
    """The bytes of one ``POST`` with a JSON body, ready to write."""
    payload = msgspec.json.encode(body)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length) if length else b""


async def hammer(host: str, port: int, clients: int, seconds: float, request: Callable[[], bytes]) -> LoadResult:
    """``clients`` connections, each sending ``request()`` and waiting for its answer, for ``seconds``.

    Any answer other than 200 stops the load with the server's words, so a bench never reports
    the speed of an error page.
    """
    result = LoadResult()
    stop = time.perf_counter() + seconds

    async def one() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (started := time.perf_counter()) < stop:
                writer.write(request())
                status, body = await _read_response(reader)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
                result.latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(clients)))
    result.seconds = time.perf_counter() - began
    result.requests = len(result.latencies)
    return result
