"""Current-offset reads of ``RedisBroker``, coalesced: concurrent reads share one pipelined round trip.

Every subscribe reads its channel's current offset (the read script, which also starts an epoch for
an empty channel). During a connect burst hundreds of them are in flight; sending them one command
per pooled connection costs a pool checkout and a round trip each. Here the reads requested while
a pipeline is in flight go out together in the next one. Each read is still the same atomic script
call, so offsets stay exact: nothing is cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.errors import BrokerError, BrokerUnavailable
from channels.offsets import Offset, new_epoch

__all__ = ["OffsetReader"]

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
_MAX_BATCH = 500


class OffsetReader:
    """Runs the read script in ``offset`` mode for many channels per pipeline.

    Args:
        client: A client of its own, without ``socket_timeout``: redis-py would arm a timer per reply
            of a pipeline (~10% of a connect's CPU); one ``timeout`` bounds the whole round trip instead.
        script: The registered read script (``redis_scripts.READ_SCRIPT``).
        keys: Channel -> its three history keys.
        history_ttl: Seconds a new epoch lives, passed to the script.
        timeout: Seconds one pipeline may take.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        script: Any,
        keys: Callable[[str], list[str]],
        history_ttl: int,
        timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._script = script
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
                    replies = await self._pipeline([channel for channel, _ in batch])
                except BrokerError as exc:
                    self._fail(batch, exc)
                    continue
                for (_, future), reply in zip(batch, replies, strict=True):
                    if future.done():  # the caller gave up (cancelled)
                        continue
                    if isinstance(reply, Exception):
                        future.set_exception(BrokerError(f"Redis error: {reply}"))
                    else:
                        future.set_result(Offset(reply[0].decode(), int(reply[1])))
                batch = []
        except BaseException:
            self._fail(batch, BrokerUnavailable("offset read cancelled"))
            raise
        finally:
            self._reader = None

    async def _pipeline(self, channels: list[str]) -> list[Any]:
        for attempt in range(2):
            pipe = self._client.pipeline(transaction=False)
            for channel in channels:
                args = (new_epoch(), self._history_ttl, "offset", "", 0)
                pipe.evalsha(self._script.sha, 3, *self._keys(channel), *args)
            try:
                # On timeout redis-py drops the connection it was reading (no stray replies later).
                async with asyncio.timeout(self._timeout):
                    replies: list[Any] = await pipe.execute(raise_on_error=False)
                if attempt == 0 and any(isinstance(reply, NoScriptError) for reply in replies):
                    # Redis restarted or its script cache was flushed: load once and retry the batch.
                    await self._client.script_load(self._script.script)
                    continue
            except _UNAVAILABLE as exc:
                raise BrokerUnavailable(f"Redis unavailable: {exc}") from exc
            except RedisError as exc:
                raise BrokerError(f"Redis error: {exc}") from exc
            return replies
        raise BrokerError("Redis kept forgetting the read script")
