"""Outages of the database or Redis: recognised in one place, answered 503, logged once each way.

During an outage every request that needs the dependency fails the same way, so a line (let alone a
traceback) per failure tells an operator nothing new and can fill a disk: 826 tracebacks in 8 s were
seen in a PostgreSQL outage. :class:`OutageLog` logs the first failure of an outage as a warning,
counts the rest, probes the dependency until it answers, then logs the end with the count. Requests
answer 503 with ``Retry-After`` throughout (``app/platform/problems.py``), so clients and load balancers retry.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels import BrokerUnavailable

__all__ = ["UNAVAILABLE", "OutageLog", "dependency_of", "is_outage"]

logger = logging.getLogger(__name__)

UNAVAILABLE: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused or reset: the server is down or went away
    TimeoutError,  # a connect, a pool checkout or a query that never answered
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # "the underlying connection is closed"
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, terminated by an administrator
    asyncpg.exceptions.TooManyConnectionsError,
    # A pooled connection the server terminated mid-query can fail its next use with "cannot switch to
    # state ...; another operation is in progress" before the pool replaces it.
    asyncpg.exceptions.InternalClientError,
    RedisConnectionError,
    RedisTimeoutError,
    BrokerUnavailable,
)
"""What the drivers raise when their server is unreachable, overloaded or went away mid-query."""

# SQLite's transient failures; its other OperationalErrors ("no such table") are bugs, not outages.
_SQLITE_TRANSIENT = ("database is locked", "disk i/o error", "unable to open database file")
_REDIS_MODULES = ("redis", "channels")
_DATABASE_MODULES = ("asyncpg", "piccolo", "aiosqlite", "sqlite3")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says a backing service is unavailable (retry later) rather than a bug."""
    if isinstance(exc, sqlite3.OperationalError):
        return str(exc).lower().startswith(_SQLITE_TRANSIENT)
    return isinstance(exc, UNAVAILABLE)


def dependency_of(exc: BaseException) -> str:
    """``database`` or ``redis``: which service ``exc`` came from (by its type, else its traceback)."""
    root = type(exc).__module__.partition(".")[0]
    if root in _REDIS_MODULES:
        return "redis"
    if root in _DATABASE_MODULES:
        return "database"
    # A builtin error (ConnectionRefusedError, TimeoutError): the innermost library frame tells.
    for module in reversed(_traceback_modules(exc.__traceback__)):
        if module in _REDIS_MODULES:
            return "redis"
        if module in _DATABASE_MODULES:
            return "database"
    return "database"


def _traceback_modules(tb: TracebackType | None) -> list[str]:
    modules = []
    while tb is not None:
        modules.append(str(tb.tb_frame.f_globals.get("__name__", "")).partition(".")[0])
        tb = tb.tb_next
    return modules


@dataclass
class _Outage:
    started: float
    refused: int
    watcher: asyncio.Task[None] | None = None


class OutageLog:
    """Logs each dependency's outage when it starts and when it ends (with a count), never per failure.

    Args:
        probes: Dependency name -> a cheap call that succeeds once it is reachable again.
        interval: Seconds between probes during an outage.
    """

    def __init__(self, probes: Mapping[str, Callable[[], Awaitable[object]]], interval: float = 0.5) -> None:
        self._probes = dict(probes)
        self._interval = interval
        self._outages: dict[str, _Outage] = {}

    @property
    def current(self) -> frozenset[str]:
        """The dependencies that are down right now."""
        return frozenset(self._outages)

    def record(self, exc: BaseException) -> str:
        """Count one failure caused by an outage (logged if it is the first); answers the dependency."""
        dependency = dependency_of(exc)
        outage = self._outages.get(dependency)
        if outage is not None:
            outage.refused += 1
            return dependency
        outage = self._outages[dependency] = _Outage(time.monotonic(), 1)
        logger.warning("%s unavailable: %r; answering 503 until it is back", dependency, exc)
        probe = self._probes.get(dependency)
        if probe is not None:
            try:
                outage.watcher = asyncio.get_running_loop().create_task(
                    self._watch(dependency, probe), name=f"outage-{dependency}"
                )
            except RuntimeError:  # no running loop (a synchronous caller): the next failure will retry
                del self._outages[dependency]
        return dependency

    async def _watch(self, dependency: str, probe: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await probe()
            except Exception as exc:
                if not is_outage(exc):
                    logger.debug("outage probe of %s failed", dependency, exc_info=True)
                continue
            outage = self._outages.pop(dependency)
            logger.warning(
                "%s reachable again after %.1f s; %d failures during the outage",
                dependency,
                time.monotonic() - outage.started,
                outage.refused,
            )
            return

    async def stop(self) -> None:
        """Stop probing (at shutdown)."""
        watchers = [outage.watcher for outage in self._outages.values() if outage.watcher is not None]
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        self._outages.clear()
