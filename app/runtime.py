"""What one server process runs on: settings, database, identity and limits, started and stopped together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

from app.auth import TokenVerifier
from app.database import Database
from app.metrics import Metrics
from app.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from app.realtime.relay import Relay
from app.services.users import UserDirectory
from app.settings import Settings
from models import ALL_TABLES

__all__ = ["Runtime"]

logger = logging.getLogger(__name__)


class Runtime:
    """The process-wide objects every request handler and background task shares."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = Database.from_url(settings.database_url, ALL_TABLES)
        self.verifier = TokenVerifier(settings)
        self.users = UserDirectory(self.database)
        self.redis: Redis | None = Redis.from_url(settings.redis_url) if settings.redis_url else None
        self.rate_limiter: RateLimiter = (
            RedisRateLimiter(settings.rate_limit, self.redis, settings.redis_prefix)
            if self.redis is not None
            else MemoryRateLimiter(settings.rate_limit)
        )
        self.metrics = Metrics()
        self.relay = Relay(settings, self.redis, self.metrics)

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
            try:
                yield
            finally:
                await self.relay.stop()
        finally:
            await self.database.stop()
            if self.redis is not None:
                await self.redis.aclose()

    async def readiness(self) -> dict[str, str]:
        """Each dependency's state: ``ok`` or a short reason."""
        checks: dict[str, str] = {}
        try:
            await self.database.ping()
            checks["database"] = "ok"
        except Exception as exc:  # any driver error means "not ready"; the reason is reported
            logger.warning("readiness: database unreachable: %s", exc)
            checks["database"] = type(exc).__name__
        checks["broker"] = "ok" if self.relay.broker.healthy else "pub/sub disconnected"
        return checks
