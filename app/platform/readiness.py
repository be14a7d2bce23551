"""``/ready``'s answer: whether this process can serve, dependency by dependency."""

from __future__ import annotations

import logging

from app.platform.database import Database
from channels import Broker

__all__ = ["Readiness"]

logger = logging.getLogger(__name__)


class Readiness:
    """Checks the database with a query and the broker by its pub/sub link, at each ``/ready``."""

    def __init__(self, database: Database, broker: Broker) -> None:
        self.database = database
        self.broker = broker

    async def checks(self) -> dict[str, str]:
        """Each dependency's state: ``ok`` or a short reason."""
        checks: dict[str, str] = {}
        try:
            await self.database.ping()
            checks["database"] = "ok"
        except Exception as exc:  # any driver error means "not ready"; the reason is reported
            logger.warning("readiness: database unreachable: %s", exc)
            checks["database"] = type(exc).__name__
        checks["broker"] = "ok" if self.broker.healthy else "pub/sub disconnected"
        return checks
