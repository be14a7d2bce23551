"""Current-offset reads of ``RedisBroker``, coalesced: concurrent reads share one script call.

Every subscribe reads its channel's current offset (starting an epoch for an empty channel). During
a connect burst hundreds of them are in flight; sending them one command per pooled connection costs
a pool checkout and a round trip each, and even a pipeline costs redis-py a packed command and a
parsed reply per channel. Here the reads requested while a call is in flight go out together in the
next one: ``OFFSETS_SCRIPT``, which reads (or starts) every epoch of the batch, atomic as a whole.
Offsets stay exact: nothing is cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.errors import BrokerError, BrokerUnavailable
from channels.offsets import Offset, new_epoch
from channels.redis_scripts import OFFSETS_SCRIPT

__all__ = ["OffsetReader"]

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
_MAX_BATCH = 500


class OffsetReader:
    """Reads the current offsets of many channels per call of ``OFFSETS_SCRIPT``.

    Args:
        client: A client of its own, without ``socket_timeout``: one ``timeout`` bounds each call.
        keys: Channel -> its three history keys.
        history_ttl: Seconds a new epoch lives, passed to the script.
        timeout: Seconds one call may take.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Callable[[str], list[str]],
        history_ttl: int,
        timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._script = client.register_script(OFFSETS_SCRIPT)
        self._keys = keys
        self._history_ttl = history_ttl
        self._requests: list[tuple[str, asyncio.Future[Offset]]] = []
        self._reader: asyncio.Task[None] | None = None

    async def current_offset(self, channel: str) -> Offset:
        """The channel's current offset (an epoch is started for a channel without one).

        Raises:
            BrokerUnavailable: Redis is unreachable.
            BrokerError: Redis answered with an error.
        """
        future: asyncio.Future[Offset] = asyncio.get_running_loop().create_future()
        self._requests.append((channel, future))
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="redis-offset-reader")
        return await future

    async def stop(self) -> None:
        """Cancel the reader and close the client; pending reads fail with ``BrokerUnavailable``."""
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        self._fail(self._requests, BrokerUnavailable("broker stopped"))
        self._requests = []
        await self._client.aclose()

    @staticmethod
    def _fail(batch: list[tuple[str, asyncio.Future[Offset]]], exc: BaseException) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)

    async def _read(self) -> None:
        batch: list[tuple[str, asyncio.Future[Offset]]] = []
        try:
            while self._requests:
                batch, self._requests = self._requests[:_MAX_BATCH], self._requests[_MAX_BATCH:]
                try:
                    offsets = await self._call([channel for channel, _ in batch])
                except BrokerError as exc:
                    self._fail(batch, exc)
                    continue
                for (_, future), offset in zip(batch, offsets, strict=True):
                    if not future.done():  # else the caller gave up (cancelled)
                        future.set_result(offset)
                batch = []
        except BaseException:
            self._fail(batch, BrokerUnavailable("offset read cancelled"))
            raise
        finally:
            self._reader = None

    async def _call(self, channels: list[str]) -> list[Offset]:
        keys = [key for channel in channels for key in self._keys(channel)]
        args: list[str | int] = [self._history_ttl, *(new_epoch() for _ in channels)]
        try:
            # On timeout redis-py drops the connection it was reading (no stray reply later).
            async with asyncio.timeout(self._timeout):
                # The Script object loads itself again after a NOSCRIPT (a restarted or flushed Redis).
                reply: list[Any] = await self._script(keys=keys, args=args)
        except _UNAVAILABLE as exc:
            raise BrokerUnavailable(f"Redis unavailable: {exc}") from exc
        except RedisError as exc:
            raise BrokerError(f"Redis error: {exc}") from exc
        return [Offset(reply[i].decode(), int(reply[i + 1])) for i in range(0, len(reply), 2)]
