"""Current-offset reads of ``RedisBroker``, coalesced: concurrent reads share one script call.

Every subscribe reads its channel's current offset (starting an epoch for an empty channel). During
a connect burst hundreds of them are in flight; sending them one command per pooled connection costs
a pool checkout and a round trip each, and even a pipeline costs redis-py a packed command and a
parsed reply per channel. Here the reads requested while a call is in flight go out together in the
next one: ``OFFSETS_SCRIPT``, which reads (or starts) every epoch of the batch, atomic as a whole.
On a Redis Cluster a batch is split by the node that owns each channel's slot: one call per node.
Offsets stay exact: nothing is cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import NoScriptError, RedisError, ResponseError, SlotNotCoveredError

from channels.errors import BrokerError, BrokerUnavailable
from channels.offsets import Offset, new_epoch
from channels.redis_connector import RedisClient
from channels.redis_errors import REDIS_UNAVAILABLE
from channels.redis_scripts import OFFSETS_SCRIPT

__all__ = ["OffsetReader"]

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
        client: RedisClient,
        keys: Callable[[str], list[str]],
        history_ttl: int,
        timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._script = client.register_script(OFFSETS_SCRIPT)
        self._sha: str | None = None  # on a cluster, loaded on every primary by _load()
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
        try:
            # On timeout redis-py drops the connection it was reading (no stray reply later).
            async with asyncio.timeout(self._timeout):
                if isinstance(self._client, RedisCluster):
                    return await self._call_cluster(self._client, channels)
                # The Script object loads itself again after a NOSCRIPT (a restarted or flushed Redis).
                reply: list[Any] = await self._script(keys=[], args=self._args(channels))
                return _offsets(reply)
        except REDIS_UNAVAILABLE as exc:
            raise BrokerUnavailable(f"Redis unavailable: {exc}") from exc
        except RedisError as exc:
            raise BrokerError(f"Redis error: {exc}") from exc

    def _args(self, channels: list[str]) -> list[str | int]:
        args: list[str | int] = [self._history_ttl]
        for channel in channels:
            args.extend(self._keys(channel))
            args.append(new_epoch())
        return args

    async def _call_cluster(self, client: RedisCluster, channels: list[str]) -> list[Offset]:
        """One call per node owning some of ``channels``; after a slot moved under us, once more on the new map."""
        await client.initialize()  # a no-op once the slot map is known
        try:
            return await self._call_nodes(client, channels)
        except (ResponseError, SlotNotCoveredError):
            # The script touched a key that is no longer on its node (a slot migrated or failed over).
            await client.nodes_manager.initialize()
            return await self._call_nodes(client, channels)

    async def _call_nodes(self, client: RedisCluster, channels: list[str]) -> list[Offset]:
        groups: dict[str, tuple[ClusterNode, list[int]]] = {}
        for index, channel in enumerate(channels):
            node = client.get_node_from_key(self._keys(channel)[0])
            if node is None:
                raise BrokerUnavailable(f"no cluster node serves {channel}")
            groups.setdefault(node.name, (node, []))[1].append(index)
        results: list[Offset | None] = [None] * len(channels)
        replies = await asyncio.gather(
            *(self._on_node(client, node, [channels[i] for i in indexes]) for node, indexes in groups.values())
        )
        for (_, indexes), offsets in zip(groups.values(), replies, strict=True):
            for index, offset in zip(indexes, offsets, strict=True):
                results[index] = offset
        return [offset for offset in results if offset is not None]

    async def _on_node(self, client: RedisCluster, node: ClusterNode, channels: list[str]) -> list[Offset]:
        if self._sha is None:
            self._sha = await client.script_load(OFFSETS_SCRIPT)
        args = self._args(channels)
        try:
            reply = await client.execute_command("EVALSHA", self._sha, 0, *args, target_nodes=node)
        except NoScriptError:  # a restarted or new node: load on every primary, then once more
            self._sha = await client.script_load(OFFSETS_SCRIPT)
            reply = await client.execute_command("EVALSHA", self._sha, 0, *args, target_nodes=node)
        return _offsets(reply)


def _offsets(reply: list[Any]) -> list[Offset]:
    return [Offset(reply[i].decode(), int(reply[i + 1])) for i in range(0, len(reply), 2)]
