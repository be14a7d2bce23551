"""Sharded pub/sub over Redis Cluster: one ``SSUBSCRIBE`` connection per shard master, channels routed by slot.

redis-py's ``RedisCluster`` keeps the slot map (and refreshes it on ``MOVED``); this module keeps,
for each primary it names, one ``PubSubListener`` in sharded mode, and for each channel the node it
was subscribed on. The map is re-read and every channel re-routed when a node answers ``MOVED`` or
ends a subscription with ``sunsubscribe`` (its slot migrated or it failed over), when a listener
cannot reach its node, and every few seconds regardless. A channel that moved is subscribed where
it lives now and then refilled from history (``on_resync``), so nothing with an offset is lost in
the switch; the listeners' own guarantees (confirmed subscribe, backoff, resync after reconnect)
hold per shard. Each listener has a canary on a channel of its own shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster

from channels.broker import BrokerStats
from channels.errors import BrokerUnavailable
from channels.redis_canary import Canary
from channels.redis_connector import RedisConnector
from channels.redis_layout import ChannelKeys
from channels.redis_pubsub import PubSubListener

__all__ = ["ShardedSubscriber"]

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0  # the slot map is re-read this often even when nothing says it changed


class ShardedSubscriber:
    """The broker's subscriptions on a Redis Cluster, with the same interface as one ``PubSubListener``.

    Args:
        cluster: The broker's command client (whose slot map is used and refreshed).
        connector: Makes the per-node pub/sub connections.
        keys: The deployment's channel names.
        on_message: As ``PubSubListener``.
        on_resync: Called with channels that may have missed events (a reconnect, a move).
        stats: Shared counters.
        name: Prefix of the listeners' names.
        listener_options: Passed to every ``PubSubListener`` (timeouts, backoff, ping).
    """

    def __init__(
        self,
        cluster: RedisCluster,
        connector: RedisConnector,
        keys: ChannelKeys,
        *,
        on_message: Callable[[str, bytes], None],
        on_resync: Callable[[tuple[str, ...]], None],
        stats: BrokerStats,
        name: str,
        **listener_options: Any,
    ) -> None:
        self._cluster = cluster
        self._connector = connector
        self._keys = keys
        self._on_message = on_message
        self._on_resync = on_resync
        self._stats = stats
        self._name = name
        self._options = listener_options
        self._token = secrets.token_hex(6)
        self._listeners: dict[str, PubSubListener] = {}  # node name -> its listener
        self._routes: dict[str, str] = {}  # channel -> node name it is subscribed on
        self._wanted: set[str] = set()
        self._moved = asyncio.Event()
        self._lock = asyncio.Lock()  # one re-route at a time, and none during a subscribe's routing
        self._maintainer: asyncio.Task[None] | None = None
        self.refreshes = 0

    @property
    def listeners(self) -> list[PubSubListener]:
        """One listener per shard master (for the canary loop and per-shard metrics)."""
        return list(self._listeners.values())

    @property
    def healthy(self) -> bool:
        """Every shard master's listener is healthy and every channel is routed to one."""
        if not self._listeners or any(not listener.healthy for listener in self._listeners.values()):
            return False
        return all(channel in self._routes for channel in self._wanted)

    @property
    def connected(self) -> bool:
        """Every shard's listener is connected."""
        return bool(self._listeners) and all(listener.connected for listener in self._listeners.values())

    @property
    def subscriptions(self) -> frozenset[str]:
        """Channels currently asked for."""
        return frozenset(self._wanted)

    async def wait_healthy(self, healthy: bool = True) -> None:
        """Wait until every listener is connected (or, for False, until one is not)."""
        while True:  # the state of several connections: polled
            if self.connected is healthy:
                return
            await asyncio.sleep(0.05)

    async def start(self) -> None:
        """Read the slot map and connect to every primary (``BrokerUnavailable`` when the cluster is down)."""
        try:
            await self._cluster.initialize()
        except Exception as exc:
            raise BrokerUnavailable(f"cannot reach the Redis Cluster: {exc}") from exc
        for node in self._cluster.get_primaries():
            await self._listener_for(node)
        self._maintainer = asyncio.create_task(self._maintain(), name=f"{self._name}-shards")

    async def stop(self) -> None:
        """Stop re-routing and every listener."""
        if self._maintainer is not None:
            self._maintainer.cancel()
            await asyncio.gather(self._maintainer, return_exceptions=True)
        await asyncio.gather(*(listener.stop() for listener in self._listeners.values()))
        self._listeners.clear()

    async def subscribe(self, channels: Iterable[str]) -> None:
        """Subscribe each channel on the master of its slot; returns once every one is confirmed."""
        channels = list(dict.fromkeys(channels))
        self._wanted.update(channels)
        async with self._lock:
            groups = self._group(channels)
            for node, _ in groups.values():
                await self._listener_for(node)
        await asyncio.gather(*(self._subscribe_on(node, group) for node, group in groups.values()))

    async def _subscribe_on(self, node: ClusterNode, channels: list[str]) -> None:
        await self._listeners[node.name].subscribe(channels)
        for channel in channels:
            if channel in self._wanted:
                self._routes[channel] = node.name

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        """Unsubscribe wherever each channel is subscribed."""
        by_node: dict[str, list[str]] = {}
        for channel in channels:
            self._wanted.discard(channel)
            node_name = self._routes.pop(channel, None)
            if node_name is not None:
                by_node.setdefault(node_name, []).append(channel)
        for node_name, group in by_node.items():
            listener = self._listeners.get(node_name)
            if listener is not None:
                await listener.unsubscribe(group)

    def _group(self, channels: Iterable[str]) -> dict[str, tuple[ClusterNode, list[str]]]:
        groups: dict[str, tuple[ClusterNode, list[str]]] = {}
        for channel in channels:
            node = self._cluster.get_node_from_key(self._keys.pubsub(channel))
            if node is None:
                raise BrokerUnavailable(f"no cluster node serves {channel}")
            groups.setdefault(node.name, (node, []))[1].append(channel)
        return groups

    async def _listener_for(self, node: ClusterNode) -> PubSubListener:
        listener = self._listeners.get(node.name)
        if listener is not None:
            return listener
        listener = PubSubListener(
            self._connector.shard_pool(node.host, int(node.port), f"{self._name}-{node.name}"),
            self._keys,
            name=f"{self._name}@{node.name}",
            on_message=self._on_message,
            on_resync=self._on_resync,
            stats=self._stats,
            sharded=True,
            on_moved=self._on_moved,
            canary=Canary(self._canary_channel(node)),
            **self._options,
        )
        self._listeners[node.name] = listener
        try:
            await listener.start()
        except BaseException:
            del self._listeners[node.name]
            raise
        return listener

    def _canary_channel(self, node: ClusterNode) -> str:
        """A canary channel of this process whose slot the node serves now."""
        for number in range(100_000):
            channel = f"canary:{self._token}:{number}"
            owner = self._cluster.get_node_from_key(self._keys.pubsub(channel))
            if owner is not None and owner.name == node.name:
                return channel
        raise BrokerUnavailable(f"node {node.name} serves no slot")

    def _on_moved(self, _channels: tuple[str, ...]) -> None:
        self._moved.set()

    async def _maintain(self) -> None:
        """Re-read the slot map when something moved, a listener is down, or every few seconds."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0 if not self.connected else REFRESH_SECONDS):
                    await self._moved.wait()
            self._moved.clear()
            try:
                await self._reroute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The cluster may be mid-failover: keep the old routes and try again shortly.
                logger.info("cluster re-route failed, retrying: %r", exc)
                await asyncio.sleep(0.5)
                self._moved.set()

    async def _reroute(self) -> None:
        """Follow the cluster's current slot map: move channels to their new masters, then resync them."""
        async with self._lock:
            await self._cluster.nodes_manager.initialize()
            self.refreshes += 1
            primaries = {node.name: node for node in self._cluster.get_primaries()}
            # A listener whose node is no longer a master, or whose canary slot moved away, is replaced.
            for node_name, listener in list(self._listeners.items()):
                node = primaries.get(node_name)
                canary = listener.canary
                keeps_canary = node is not None and canary is not None and self._owner(canary.channel) == node_name
                if not keeps_canary:
                    del self._listeners[node_name]
                    await listener.stop()
                    for channel, route in list(self._routes.items()):
                        if route == node_name:
                            del self._routes[channel]
            for node in primaries.values():
                await self._listener_for(node)
            misrouted = [c for c in self._wanted if self._routes.get(c) != self._owner(c)]
            for channel in misrouted:
                old = self._routes.pop(channel, None)
                if old is not None and old in self._listeners:
                    self._listeners[old].forget((channel,))
            groups = self._group(misrouted)
        if not misrouted:
            return
        logger.info("cluster slots moved: %d channels re-subscribed on their new masters", len(misrouted))
        await asyncio.gather(*(self._subscribe_on(node, group) for node, group in groups.values()))
        # Events published while a channel was between nodes come from history.
        self._on_resync(tuple(sorted(misrouted)))

    def _owner(self, channel: str) -> str | None:
        node = self._cluster.get_node_from_key(self._keys.pubsub(channel))
        return node.name if node is not None else None
