"""A periodic background job that stops between steps, never in the middle of one.

Cancelling a task inside a database query leaks the query's connection (aiosqlite keeps a thread
per connection, which then keeps the process alive), so :meth:`BackgroundLoop.stop` asks the loop
to finish its current step and only cancels it if that takes longer than the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from app.platform.outages import OutageLog, is_outage

__all__ = ["BackgroundLoop"]

logger = logging.getLogger(__name__)


class BackgroundLoop:
    """Runs ``step`` whenever woken or every ``interval`` seconds; a failing step is retried with backoff.

    Args:
        name: for the task and the logs.
        step: one unit of work; answers True when it should run again at once (more work waiting).
        interval: seconds between steps when idle.
        expected: exceptions logged as a warning rather than with a stack trace.
        outages: where a failure caused by an unavailable database or Redis is counted instead of
            logged on every retry (``OutageLog`` logs the outage's start and end).
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[bool]],
        interval: float,
        expected: tuple[type[Exception], ...] = (),
        outages: OutageLog | None = None,
    ) -> None:
        self.name = name
        self.outages = outages
        self.step = step
        self.interval = interval
        self.expected = expected
        self.failures = 0
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Run a step now (new work arrived)."""
        self._wakeup.set()

    def start(self) -> None:
        """Start the loop; the first step runs at once."""
        self._stopping = False
        self._wakeup.set()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, grace: float = 10.0) -> None:
        """Let the current step finish (cancelling only after ``grace`` seconds), then end the loop."""
        if self._task is None:
            return
        self._stopping = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        backoff = self.interval
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.interval)
            self._wakeup.clear()
            if self._stopping:
                return
            try:
                while await self.step() and not self._stopping:
                    pass
                backoff = self.interval
            except Exception as exc:
                self.failures += 1
                if self.outages is not None and is_outage(exc):
                    self.outages.record(exc)
                elif isinstance(exc, self.expected):
                    logger.warning("%s: will retry: %s", self.name, exc)
                else:
                    logger.exception("%s failed; will retry", self.name)
                # Jittered exponential backoff, interruptible by stop().
                backoff = min(backoff * 2, 10.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_requested(), random.uniform(0, backoff))
                self._wakeup.set()

    async def _stop_requested(self) -> None:
        while not self._stopping:
            await self._wakeup.wait()
            self._wakeup.clear()
