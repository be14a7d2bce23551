"""A real uvicorn server on a free port, configured exactly as ``python -m app serve`` configures it.

The server runs as a task of the test's own event loop, so tests can also use the database
directly. Its socket is bound and listening before uvicorn starts, so clients may connect at once:
the kernel queues them until the server accepts (no polling for readiness).
"""

from __future__ import annotations

import asyncio
import socket
import weakref
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar

from app.platform.settings import Settings
from app.server import uvicorn_options


@asynccontextmanager
async def serving(app: Litestar, settings: Settings, port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` until the block ends (on ``port``, or a free one); yields ``host:port``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    host, port = sock.getsockname()
    options = {**uvicorn_options(settings), "host": host, "port": port, "workers": 1}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"{host}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()


# Messages already received in a batched frame but not yet handed to the test, per client.
_pending: weakref.WeakKeyDictionary[Any, deque[dict[str, Any]]] = weakref.WeakKeyDictionary()


async def receive_json(ws: Any, within: float = 5.0) -> dict[str, Any]:
    """The next message of a ``websockets`` client, splitting batched frames on newlines (SPEC)."""
    pending = _pending.setdefault(ws, deque())
    if not pending:
        frame = await asyncio.wait_for(ws.recv(), within)
        pending.extend(msgspec.json.decode(line) for line in frame.split("\n") if line)
    return pending.popleft()


async def receive_messages(ws: Any, count: int, within: float = 10.0) -> list[dict[str, Any]]:
    """The next ``count`` messages."""

    async def collect() -> list[dict[str, Any]]:
        return [await receive_json(ws, within) for _ in range(count)]

    return await asyncio.wait_for(collect(), within)
