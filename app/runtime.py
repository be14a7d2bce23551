"""What one server process runs on: settings, database, identity and limits, started and stopped together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar.di import Provide

from app.platform.auth import TokenVerifier
from app.platform.database import Database
from app.platform.metrics import Metrics
from app.platform.outages import OutageLog
from app.platform.pagination import CursorCodec
from app.platform.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from app.platform.readiness import Readiness
from app.platform.settings import Settings
from app.realtime.edge import RealtimeEdge
from app.realtime.relay import Relay
from app.services.deliveries import DeliveryDispatcher
from app.services.inbox_states import counts_event
from app.services.insights import CustomerInsightsService
from app.services.insights_cache import InsightsCache, MemoryInsightsCache, RedisInsightsCache
from app.services.notifications import Inbox, unread_count_event
from app.services.order_writes import OrderWriter
from app.services.outbox import OutboxRelay
from app.services.preferences import PreferencesStore
from app.services.revocations import Revocations
from app.services.scheduler import ScheduledDelivery
from app.services.senders import EmailSender, Sender, WebhookSender
from app.services.tracking import PingRecorder
from app.services.users import UserDirectory
from channels.redis_connector import RedisClient, RedisConnector
from models import ALL_TABLES
from models.enums import DeliveryMedium

__all__ = ["Runtime"]

logger = logging.getLogger(__name__)


class Runtime:
    """The process-wide objects every request handler and background task shares."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Database.from_url(settings.database_url, ALL_TABLES)
        self.verifier = TokenVerifier(settings)
        self.users = UserDirectory(self.database)
        # One factory for every Redis user of the process, whatever the topology (REDIS_URL's three forms).
        self.redis_connector = RedisConnector(settings.redis) if settings.redis is not None else None
        self.redis: RedisClient | None = (
            self.redis_connector.client(client_name=f"{settings.redis_prefix}-app")
            if self.redis_connector is not None
            else None
        )
        self.rate_limiter: RateLimiter = (
            RedisRateLimiter(settings.rate_limit, self.redis, settings.redis_prefix)
            if self.redis is not None
            else MemoryRateLimiter(settings.rate_limit)
        )
        self.metrics = Metrics()
        probes: dict[str, Callable[[], Awaitable[object]]] = {"database": self.database.ping}
        if self.redis is not None:
            probes["redis"] = self.redis.ping
        self.outages = OutageLog(probes)
        self.revocations = Revocations(self.database)
        self.relay = Relay(settings, self.redis_connector, self.redis, self.metrics, self.revocations)
        self.cursors = CursorCodec(settings.jwt_secret)
        self.outbox = OutboxRelay(
            self.database,
            self.relay.publisher,
            {"notification.unread_count": unread_count_event, "notification.counts": counts_event},
            outages=self.outages,
        )
        self.pings = PingRecorder(self.database, self.relay.publisher)
        self.http = httpx.AsyncClient()
        senders = self._senders()
        self.inbox = Inbox(self.database, self.outbox, self.cursors, frozenset(DeliveryMedium(c) for c in senders))
        self.preferences = PreferencesStore(self.database)
        self.scheduler = ScheduledDelivery(self.database, self.outbox, outages=self.outages)
        self.insights_cache: InsightsCache = (
            RedisInsightsCache(self.redis, settings.redis_prefix) if self.redis is not None else MemoryInsightsCache()
        )
        self.deliveries = DeliveryDispatcher(self.database, senders, outages=self.outages)
        self.order_writer = OrderWriter(self.database, self.outbox, self.insights_cache, self.inbox.configured)
        self.insights = CustomerInsightsService(self.database, self.insights_cache)
        self.readiness = Readiness(self.database, self.relay.broker)
        self.realtime = RealtimeEdge(settings, self.relay, self.verifier, self.users, self.revocations)
        self._register_metrics()

    def dependencies(self) -> dict[str, Provide]:
        """What request handlers may ask for by name: each built once, here, for the process's life."""
        services: dict[str, object] = {
            "settings": self.settings,
            "database": self.database,
            "metrics": self.metrics,
            "readiness": self.readiness,
            "cursors": self.cursors,
            "inbox": self.inbox,
            "preferences": self.preferences,
            "order_writer": self.order_writer,
            "insights": self.insights,
            "pings": self.pings,
            "revocations": self.revocations,
            "relay": self.relay,
            "tickets": self.relay.tickets,
        }
        return {
            name: Provide(_constant(service), use_cache=True, sync_to_thread=False)
            for name, service in services.items()
        }

    def _register_metrics(self) -> None:
        """The domain's counters, read at scrape time (the relay registers its own)."""
        metrics = self.metrics
        metrics.gauge(
            "push_outbox_lag_seconds", "Age of the oldest unpublished outbox event.", lambda: self.outbox.lag_seconds
        )
        metrics.counter("push_outbox_published", "Outbox events published.", lambda: self.outbox.published)
        metrics.counter(
            "push_outbox_dropped_invalid",
            "Outbox events that were not valid events (a bug in their writer): logged, marked sent, not published.",
            lambda: self.outbox.dropped_invalid,
        )
        metrics.counter(
            "push_tracking_publish_failures",
            "tracking.location/tracking.eta events not published (broker away); the pings were recorded.",
            lambda: self.pings.publish_failures,
        )
        metrics.counter("push_insights_cache_hits", "Insights served from cache.", lambda: self.insights_cache.hits)
        metrics.counter(
            "push_insights_cache_misses", "Insights computed (cache miss).", lambda: self.insights_cache.misses
        )
        metrics.counter(
            "push_notification_deliveries_sent", "EMAIL/SMS/PUSH deliveries sent.", lambda: self.deliveries.sent
        )
        metrics.counter(
            "push_notification_deliveries_skipped",
            "EMAIL/SMS/PUSH deliveries skipped at send time: turned off, seen before escalation, or no sender here.",
            lambda: self.deliveries.skipped,
        )
        metrics.counter(
            "push_notification_delivery_failures",
            "Failed EMAIL/SMS/PUSH attempts.",
            lambda: self.deliveries.failed_attempts,
        )

    def _senders(self) -> dict[str, Sender]:
        """The delivery media this deployment has configured (the others are recorded as skipped)."""
        senders: dict[str, Sender] = {}
        if self.settings.smtp_url:
            senders[DeliveryMedium.EMAIL.value] = EmailSender(self.settings.smtp_url)
        if self.settings.notify_webhook_url:
            for medium in (DeliveryMedium.SMS, DeliveryMedium.PUSH):
                senders[medium.value] = WebhookSender(
                    self.settings.notify_webhook_url, self.settings.notify_webhook_secret, medium.value, self.http
                )
        return senders

    @asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """Start everything before the server accepts clients; stop it all on the way out."""
        for name in self.settings.generated_secrets:
            logger.warning(
                "%s is not set: using a generated development secret from .dev-secrets.json. "
                "Never run production like this (APP_ENV=production refuses it).",
                name,
            )
        await self.database.start()
        try:
            await self.relay.start()
            await self.revocations.load()  # after the control channel is joined: no revocation is missed
            background = (self.outbox, self.scheduler, self.deliveries)
            try:
                for task in background:
                    await task.start()
                yield
            finally:
                for task in reversed(background):
                    await task.stop()
                await self.outages.stop()
                await self.relay.stop()
                await self.http.aclose()
        finally:
            await self.database.stop()
            if self.redis is not None:
                await self.redis.aclose()
            if self.redis_connector is not None:
                await self.redis_connector.aclose()


def _constant(value: object) -> Callable[[], object]:
    def provide() -> object:
        return value

    return provide
