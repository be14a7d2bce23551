"""Presence (SPEC ``GET /realtime/presence``): a user's sockets and SSE streams across every process.

With Redis, each user with connections has a hash ``{<prefix>:presence:<user>}`` with one field
per process: ``"<count> <unix time>"``. Nothing on the connect path waits for it: the sessions
registry marks users whose count changed, and one task writes the changed ones every
``FLUSH_SECONDS`` in one pipeline (``HSET``/``HDEL``) and rewrites every field of this process every
``REFRESH_SECONDS``. A reader counts only fields refreshed within ``STALE_SECONDS``, and the key
expires when no process refreshes it, so a process that dies (SIGKILL: no goodbye) stops counting
within a minute. Without Redis the counts are this process's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from abc import ABC, abstractmethod

from redis.exceptions import RedisError

from app.realtime.sessions import Sessions
from channels import RedisClient

__all__ = ["LocalPresence", "Presence", "RedisPresence"]

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
REFRESH_SECONDS = 15.0
STALE_SECONDS = 45.0  # three refreshes missed: the process is gone
KEY_TTL_SECONDS = 60


class Presence(ABC):
    """Counts of connections per user, across processes."""

    sessions: Sessions

    def changed(self, user_id: str) -> None:  # noqa: B027  (a hook: the local store has nothing to do)
        """``user_id``'s count in this process changed (called by ``Sessions``)."""

    async def start(self) -> None:  # noqa: B027
        """Start writing (no-op for the local store)."""

    async def stop(self) -> None:  # noqa: B027
        """Stop writing and take this process's counts away."""

    @abstractmethod
    async def connections(self, user_id: str) -> int:
        """Sockets and streams of ``user_id`` on every live process."""


class LocalPresence(Presence):
    """One process (the in-process broker): the registry is the truth."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def connections(self, user_id: str) -> int:
        """This process's count."""
        return self.sessions.connections_of(user_id)


class RedisPresence(Presence):
    """Counts in Redis hashes, written in batches (see the module docstring).

    Args:
        sessions: This process's registry.
        redis: A command client (any topology: each user's hash is one key).
        prefix: ``REDIS_PREFIX``.
    """

    def __init__(self, sessions: Sessions, redis: RedisClient, prefix: str) -> None:
        self.sessions = sessions
        self._redis = redis
        self._prefix = prefix
        self._field = secrets.token_hex(8)  # this process
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.write_failures = 0

    def _key(self, user_id: str) -> str:
        return f"{{{self._prefix}:presence:{user_id}}}"

    def changed(self, user_id: str) -> None:
        """Mark ``user_id`` for the next batch."""
        self._dirty.add(user_id)
        self._wake.set()

    async def start(self) -> None:
        """Start the writer."""
        self._task = asyncio.create_task(self._write_loop(), name="presence-writer")

    async def stop(self) -> None:
        """Stop the writer and delete this process's fields (a crash leaves them to go stale)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        users = list(self.sessions.users()) + list(self._dirty)
        with contextlib.suppress(RedisError, OSError):
            await self._write({user: 0 for user in users})

    async def connections(self, user_id: str) -> int:
        """Fresh counts of other processes, plus this one's exact count."""
        fields = await self._redis.hgetall(self._key(user_id))
        now = time.time()
        total = self.sessions.connections_of(user_id)
        for name, value in fields.items():
            if (name.decode() if isinstance(name, bytes) else name) == self._field:
                continue
            count, _, at = (value.decode() if isinstance(value, bytes) else value).partition(" ")
            if count.isdigit() and now - float(at or 0) < STALE_SECONDS:
                total += int(count)
        return total

    async def _write_loop(self) -> None:
        next_refresh = time.monotonic() + REFRESH_SECONDS
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_refresh - time.monotonic())):
                    await self._wake.wait()
            await asyncio.sleep(FLUSH_SECONDS)  # batch what changes meanwhile: a burst of connects, one pipeline
            self._wake.clear()
            counts = self.sessions.users()
            if time.monotonic() >= next_refresh:
                users = set(counts) | self._dirty
                next_refresh = time.monotonic() + REFRESH_SECONDS
            else:
                users = set(self._dirty)
            self._dirty.clear()
            try:
                await self._write({user: counts.get(user, 0) for user in users})
            except (RedisError, OSError) as exc:
                self.write_failures += 1
                self._dirty.update(users)  # written at the next round
                logger.debug("presence not written: %r", exc)

    async def _write(self, counts: dict[str, int]) -> None:
        if not counts:
            return
        stamp = f"{time.time():.0f}"
        async with self._redis.pipeline(transaction=False) as pipe:
            for user, count in counts.items():
                key = self._key(user)
                if count:
                    pipe.hset(key, self._field, f"{count} {stamp}")
                    pipe.expire(key, KEY_TTL_SECONDS)
                else:
                    pipe.hdel(key, self._field)
            await pipe.execute()
