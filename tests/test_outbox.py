"""The outbox relay: an event that can never be published is dropped and logged, not retried for ever."""

from __future__ import annotations

from app.main import create_app
from app.platform.settings import Settings
from app.runtime import Runtime
from app.services.outbox import PendingEvent, write_events
from models.notifications import OutboxEvent
from tests.asgi import lifespan_running


async def test_an_invalid_event_does_not_block_the_rows_after_it(sqlite_settings: Settings) -> None:
    """A row the publisher refuses (InvalidEvent) is marked sent and logged; the next row is published."""
    app = create_app(sqlite_settings)
    async with lifespan_running(app):
        runtime: Runtime = app.state.runtime
        async with runtime.database.write():
            await write_events(
                [
                    PendingEvent("user:u_outbox", "Not A Type", {"n": 0}),
                    PendingEvent("user:u_outbox", "notification.created", {"n": 1}),
                ]
            )
        await runtime.outbox.drain()
        history = await runtime.relay.broker.history("user:u_outbox", None)
        assert [event.type for event in history.events] == ["notification.created"]
        assert runtime.outbox.dropped_invalid >= 1
        unsent = await OutboxEvent.select().where(
            OutboxEvent.sent_at.is_null() & (OutboxEvent.channel == "user:u_outbox")
        )
        assert unsent == []
