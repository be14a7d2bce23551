"""Waiting on a condition instead of sleeping: a test states what it waits for, and fails saying so.

A fixed sleep is either too short (the test flakes on a loaded machine) or too long (the suite is
slow), and it hides what the test needs to have happened. ``eventually`` re-checks a condition
until it holds, or fails with an ``AssertionError`` naming it once a deadline has passed.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["eventually"]

T = TypeVar("T")


async def eventually(
    condition: Callable[[], T | Awaitable[T]], within: float = 5.0, interval: float = 0.01, what: str = ""
) -> T:
    """Re-check ``condition`` every ``interval`` s until it is truthy, for at most ``within`` s; answer its value.

    ``condition`` is a plain callable or an async one (to poll another process, say). It is checked
    once more at the deadline, so a condition that holds by then never fails.

    Raises:
        AssertionError: when ``condition`` is still falsy after ``within`` s; the message names
            ``what`` (or the condition) and its last value.
    """
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            name = what or getattr(condition, "__qualname__", repr(condition))
            raise AssertionError(f"not true within {within:g} s: {name} (last value: {value!r})")
        await asyncio.sleep(interval)  # the polling interval: the condition has no event to wait on
