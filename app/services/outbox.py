"""The transactional outbox: events are written with the change they announce and published after commit.

Nothing is lost between the database and the broker: a service writes its events into ``outbox``
inside its own transaction; :class:`OutboxRelay` publishes them after commit (woken at once, with a
periodic sweep as a safety net), retries while the broker is down, and marks what it sent. Each
publish carries ``outbox:<id>:<created>`` as its idempotency key, so a relay that crashes between publishing
and marking (or two processes sweeping the same rows) does not put an event into history twice.

Some payloads must be computed at publish time rather than in the writing transaction: an unread
count computed inside concurrent transactions could be published out of commit order and end
stale. Such events are written with ``data`` null and a *resolver* computes them when published.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

import msgspec

from app.platform.database import Database
from app.platform.outages import OutageLog
from app.platform.timefmt import utc_now
from app.services.background import BackgroundLoop
from channels import BrokerError, InvalidEvent, Publisher
from models.notifications import OutboxEvent

__all__ = ["OutboxRelay", "PendingEvent", "Resolver", "write_events"]

logger = logging.getLogger(__name__)


Resolver = Callable[[str], Awaitable[Any]]
"""Computes an event's data at publish time from its channel name."""


class PendingEvent(msgspec.Struct, frozen=True):
    """An event to publish after commit; ``data`` None means "let the type's resolver compute it"."""

    channel: str
    type: str
    data: Any = None


async def write_events(events: Iterable[PendingEvent]) -> None:
    """Insert ``events`` into the outbox; call inside the transaction of the change they announce."""
    now = utc_now()
    rows = [
        OutboxEvent(
            channel=event.channel,
            type=event.type,
            data=None if event.data is None else msgspec.json.encode(event.data).decode(),
            created_at=now,
        )
        for event in events
    ]
    if rows:
        await OutboxEvent.insert(*rows)


class OutboxRelay:
    """Publishes unsent outbox rows in id order; one per process, several may run safely."""

    def __init__(
        self,
        database: Database,
        publisher: Publisher,
        resolvers: Mapping[str, Resolver] | None = None,
        *,
        sweep_interval: float = 1.0,
        batch_size: int = 200,
        retention: timedelta = timedelta(days=1),
        outages: OutageLog | None = None,
    ) -> None:
        self.database = database
        self.publisher = publisher
        self.resolvers = dict(resolvers or {})
        self.sweep_interval = sweep_interval
        self.batch_size = batch_size
        self.retention = retention
        self.published = 0
        self.dropped_invalid = 0  # rows that could never be published (InvalidEvent), marked sent and logged
        self.oldest_unsent_at: float | None = None
        self._loop = BackgroundLoop(
            "outbox-relay", self._step, sweep_interval, expected=(BrokerError,), outages=outages
        )
        self._last_prune = 0.0

    def wake(self) -> None:
        """Publish now: a transaction that wrote outbox rows has committed."""
        self._loop.wake()

    @property
    def failures(self) -> int:
        """Failed relay attempts (broker or database away) since start."""
        return self._loop.failures

    @property
    def lag_seconds(self) -> float:
        """Age of the oldest event not yet published (0 when none)."""
        return 0.0 if self.oldest_unsent_at is None else max(time.time() - self.oldest_unsent_at, 0.0)

    async def start(self) -> None:
        """Start relaying (whatever an earlier run left unsent goes first)."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop after the current batch; unsent rows wait for the next start (or another process)."""
        await self._loop.stop()

    async def drain(self) -> None:
        """Publish everything unsent now, in this task (tests and tools)."""
        while await self._relay_batch():
            pass

    async def _step(self) -> bool:
        more = await self._relay_batch()
        if not more:
            await self._prune()
        return more

    async def _relay_batch(self) -> bool:
        """Publish one batch; True when a full batch was taken (there may be more)."""
        rows = (
            await OutboxEvent.select()
            .where(OutboxEvent.sent_at.is_null())
            .order_by(OutboxEvent.id)
            .limit(self.batch_size)
        )
        if not rows:
            self.oldest_unsent_at = None
            return False
        self.oldest_unsent_at = rows[0]["created_at"].timestamp()
        # A resolved event (an unread count) followed by another of the same channel and type is
        # superseded: only the last one in the batch needs publishing, with the value of now.
        last_resolved = {(row["channel"], row["type"]): row["id"] for row in rows if row["data"] is None}
        sent: list[int] = []
        try:
            for row in rows:
                key = (row["channel"], row["type"])
                if row["data"] is None and last_resolved.get(key) != row["id"]:
                    sent.append(row["id"])
                    continue
                try:
                    await self._publish(row)
                except InvalidEvent:
                    # It can never be published (a bug in its writer): retrying would block every row after it.
                    logger.exception(
                        "outbox row %s (%s on %s) is not a valid event; dropped", row["id"], row["type"], row["channel"]
                    )
                    self.dropped_invalid += 1
                sent.append(row["id"])
        finally:
            if sent:
                async with self.database.write():
                    await OutboxEvent.update({OutboxEvent.sent_at: utc_now()}).where(OutboxEvent.id.is_in(sent))
        if len(rows) < self.batch_size:
            self.oldest_unsent_at = None  # all published; rows committed since then wake the relay again
            return False
        return True

    async def _publish(self, row: dict[str, Any]) -> None:
        data: Any
        if row["data"] is None:
            resolver = self.resolvers.get(row["type"])
            data = await resolver(row["channel"]) if resolver is not None else None
        else:
            data = row["data"].encode() if isinstance(row["data"], str) else row["data"]
        # The creation time joins the id in the key: ids restart when a database is recreated, keys must not.
        key = f"outbox:{row['id']}:{int(row['created_at'].timestamp() * 1_000_000)}"
        await self.publisher.publish(row["channel"], row["type"], data, idempotency_key=key)
        self.published += 1

    async def _prune(self) -> None:
        """Delete rows sent longer ago than the retention, at most once a minute."""
        if time.monotonic() - self._last_prune < 60:
            return
        self._last_prune = time.monotonic()
        async with self.database.write():
            await OutboxEvent.delete().where(OutboxEvent.sent_at < utc_now() - self.retention)
