"""Running an app's lifespan in its own task, so async fixtures can start and stop it from different tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar


@asynccontextmanager
async def lifespan_running(app: Litestar, startup_timeout: float = 30.0) -> AsyncIterator[None]:
    """Start ``app``'s lifespan in a dedicated task (anyio scopes must exit in the task that entered them)."""
    started = asyncio.Event()
    stop = asyncio.Event()

    async def run() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run())
    waiter = asyncio.create_task(started.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=startup_timeout, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # raises what start-up raised
    if not started.is_set():
        task.cancel()
        raise TimeoutError("the app did not start")
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, startup_timeout)
