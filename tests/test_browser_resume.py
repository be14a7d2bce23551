"""Resuming in a real Chromium: an EventSource dropped before its first event, and push-client.js after a 4008."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar

from app.main import create_app
from app.runtime import Runtime
from app.settings import Settings
from tests.live import serving
from tests.proxy import cutting_proxy

pytestmark = pytest.mark.browser

RECORD_EVENTS = """() => {
  window.received = [];
  const source = new EventSource("/sse");
  source.addEventListener("notification.created", (event) => window.received.push(JSON.parse(event.data).data.n));
}"""


async def test_event_source_dropped_after_the_open_cursor_resumes_from_it(
    browser: Any, make_settings: Callable[..., Settings], sqlite_database: str, token_for: Callable[..., str]
) -> None:
    """An EventSource whose stream drops after its opening cursor alone reconnects with it and gets what it missed."""
    settings = make_settings(DATABASE_URL=sqlite_database)
    app: Litestar = create_app(settings)
    runtime: Runtime = app.state.runtime
    async with serving(app, settings) as address, cutting_proxy(address) as (proxy, seen):
        # The bearer header on every request, the browser's own reconnects included (a ticket works once).
        context = await browser.new_context(extra_http_headers={"Authorization": f"Bearer {token_for('u_es')}"})
        try:
            page = await context.new_page()
            await page.goto(f"http://{proxy}/health")
            await page.evaluate(RECORD_EVENTS)
            await asyncio.wait_for(seen.cut.wait(), 10)
            for number in range(3):  # while the browser waits to reconnect (its default retry is 3 s)
                await runtime.relay.publisher.publish("user:u_es", "notification.created", {"n": number})
            await page.wait_for_function("window.received.length >= 3", timeout=15_000)
            assert await page.evaluate("window.received") == [0, 1, 2]
        finally:
            await context.close()
    first, again = seen.stream_requests[:2]
    assert b"last-event-id" not in first.lower() and b"last-event-id:" in again.lower()
