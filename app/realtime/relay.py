"""The relay of one process: broker (Redis or in-process), hub, publisher and tickets, built from the settings."""

from __future__ import annotations

import time

from app.platform.metrics import Metrics
from app.platform.settings import Settings
from app.realtime.control import ControlPlane
from app.realtime.presence import LocalPresence, Presence, RedisPresence
from app.realtime.sessions import Sessions
from app.realtime.tickets import MemoryTicketStore, RedisTicketStore, TicketStore
from app.services.revocations import Revocations
from channels import DROP_REASONS, Broker, Hub, HubMetrics, MemoryBroker, Publisher, RedisBroker
from channels.redis_connector import RedisClient, RedisConnector

__all__ = ["Relay"]


class Relay:
    """Everything real-time that a process runs, started before the server accepts clients."""

    def __init__(
        self,
        settings: Settings,
        connector: RedisConnector | None,
        redis: RedisClient | None,
        metrics: Metrics,
        revocations: Revocations,
    ) -> None:
        self.broker: Broker = (
            RedisBroker(
                connector,
                settings.redis_prefix,
                settings.history_size,
                settings.history_ttl,
                event_max_bytes=settings.event_max_bytes,
            )
            if connector is not None
            else MemoryBroker(settings.history_size, settings.history_ttl, event_max_bytes=settings.event_max_bytes)
        )
        self.hub_metrics = HubMetrics()
        self.hub = Hub(self.broker, settings.ws_send_queue, self.hub_metrics)
        self.publisher = Publisher(self.broker)
        self.tickets: TicketStore = (
            RedisTicketStore(redis, settings.redis_prefix) if redis is not None else MemoryTicketStore()
        )
        self.sessions = Sessions(on_change=lambda user_id: self.presence.changed(user_id))
        self.presence: Presence = (
            RedisPresence(self.sessions, redis, settings.redis_prefix)
            if redis is not None
            else LocalPresence(self.sessions)
        )
        self.control = ControlPlane(self.hub, self.broker, self.sessions, revocations)
        self.started_at = time.time()
        self._register(metrics)

    @property
    def connections(self) -> int:
        """Open sockets and SSE streams of this process."""
        return self.sessions.count

    def _register(self, metrics: Metrics) -> None:
        hub, stats = self.hub_metrics, self.broker.stats
        metrics.histogram(
            "push_relay_latency_seconds",
            "Seconds from an event's publish time (its ts) to its write on a client connection.",
            hub.latency,
        )
        metrics.gauge("push_connections", "Open WebSocket and SSE connections.", lambda: self.sessions.count)
        metrics.gauge(
            "push_subscriptions",
            "Channel subscriptions held by connections of this process.",
            lambda: sum(len(members) for members in self.hub.channels.values()),
        )
        metrics.gauge("push_channels", "Channels with at least one local subscriber.", lambda: len(self.hub.channels))
        metrics.gauge(
            "push_broker_up",
            "1 while every pub/sub connection is up, subscribed and delivers its canary within 2 s.",
            lambda: self.broker.healthy,
        )
        if isinstance(self.broker, RedisBroker):
            self._register_shards(metrics, self.broker)
        metrics.counter("push_events_in", "Events received from the broker.", lambda: hub.events_in)
        metrics.counter("push_events_out", "Event messages written to connections.", lambda: hub.events_out)
        metrics.counter(
            "push_slow_consumer_closes",
            "Connections closed with 4008 (send queue full).",
            lambda: hub.slow_consumer_closes,
        )
        metrics.counter(
            "push_events_dropped_coalesced",
            "Queued live tracking.location events replaced by a newer one (latest wins).",
            lambda: hub.coalesced,
        )
        metrics.counter("push_gaps_filled", "Events fetched from history to fill a live gap.", lambda: hub.gaps_filled)
        metrics.counter("push_history_lost", "Gaps history could no longer fill.", lambda: hub.history_lost)
        metrics.counter("push_pubsub_reconnects", "Reconnections of the broker's pub/sub.", lambda: stats.reconnects)
        metrics.counter_by(
            "push_producer_events_dropped",
            "Producer messages dropped as invalid (never relayed), by reason; see docs/operations.md.",
            "reason",
            lambda: {reason: stats.dropped.get(reason, 0) for reason in DROP_REASONS},
        )
        metrics.counter(
            "push_pubsub_message_errors",
            "Pub/sub messages whose handling failed; skipped, the listener stays up.",
            lambda: stats.listener_errors,
        )
        metrics.counter("push_events_published", "Events published by this process.", lambda: stats.published)

    @staticmethod
    def _register_shards(metrics: Metrics, broker: RedisBroker) -> None:
        """Per pub/sub connection (on a cluster: per shard master) up, reconnects and channels."""
        metrics.gauge_by(
            "push_redis_shard_up",
            "1 while this shard's pub/sub connection is subscribed and its canary comes back.",
            "shard",
            lambda: {name: float(up) for name, up, _, _ in broker.shards()},
        )
        metrics.counter_by(
            "push_redis_shard_reconnects",
            "Reconnections of this shard's pub/sub connection.",
            "shard",
            lambda: {name: reconnects for name, _, reconnects, _ in broker.shards()},
        )
        metrics.gauge_by(
            "push_redis_shard_channels",
            "Channels subscribed on this shard's pub/sub connection.",
            "shard",
            lambda: {name: channels for name, _, _, channels in broker.shards()},
        )
        metrics.counter(
            "push_redis_canary_restarts",
            "Pub/sub connections restarted because their canary did not come back within 2 s.",
            lambda: broker.canary_restarts,
        )

    async def start(self) -> None:
        """Connect the broker (pub/sub confirmed), start the hub's listener, join the control channel."""
        await self.broker.start()
        await self.hub.start()
        await self.control.start()
        await self.presence.start()

    async def stop(self) -> None:
        """Close every connection (1001: going away), then the broker."""
        await self.presence.stop()
        await self.control.stop()
        await self.hub.stop(1001)
        await self.broker.stop()
