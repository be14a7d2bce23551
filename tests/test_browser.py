"""The demo page in a real Chromium: the live bell, two tabs in step, the moving courier, reconnect and resume,
and the SSE fallback when WebSockets are blocked."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from app.main import create_app
from app.ops.seeding import SeedPlan, run_seed
from app.platform.settings import Settings
from app.runtime import Runtime
from channels import Publisher, RedisBroker
from tests.live import serving
from tests.processes import free_port
from tests.services import REDIS_URL, reachable, unavailable, unique_name

pytestmark = pytest.mark.browser
# Screenshots for the README are refreshed on request only, so a test run leaves the tree clean.
SCREENSHOTS = Path("docs/screenshots") if os.environ.get("UPDATE_SCREENSHOTS") == "1" else None
Headers = Callable[..., dict[str, str]]


@pytest.fixture
async def demo_database(tmp_path: Any) -> str:
    """A fresh SQLite file with the demo data `make run` seeds."""
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    await run_seed(url, SeedPlan.sized(orders=60, notifications=10), show_progress=False)
    return url


async def _open_demo(browser: Any, base: str, query: str = "") -> Any:
    page = await browser.new_page()
    await page.goto(f"{base}/demo?user=customer_demo{query}")
    await page.wait_for_function("document.body.dataset.unread !== undefined", timeout=10_000)
    return page


async def _unread(page: Any) -> int:
    return int(await page.evaluate("document.body.dataset.unread"))


async def _wait_unread(page: Any, count: int) -> None:
    await page.wait_for_function(f"document.body.dataset.unread === '{count}'", timeout=10_000)


async def _notify(base: str, auth: Headers, title: str = "Hello") -> dict[str, Any]:
    body = {"userId": "customer_demo", "type": "ACCOUNT_UPDATED", "title": title, "message": "from the test"}
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.post("/notifications", json=body, headers=auth("svc", "service"))
    assert response.status_code == 201
    return dict(response.json())


@pytest.fixture
async def demo_server(make_settings: Callable[..., Settings], demo_database: str) -> AsyncIterator[tuple[str, Runtime]]:
    settings = make_settings(DATABASE_URL=demo_database)
    app: Litestar = create_app(settings)
    async with serving(app, settings) as address:
        yield f"http://{address}", app.state.runtime


async def test_badge_updates_live_and_read_all_clears_second_tab(
    browser: Any, demo_server: tuple[str, Runtime], auth: Headers
) -> None:
    """A notification created over REST raises the badge at once; marking all read in one tab clears the other."""
    base, _ = demo_server
    first, second = await _open_demo(browser, base), await _open_demo(browser, base)
    for page in (first, second):
        await page.wait_for_function("document.body.dataset.transport === 'websocket'", timeout=10_000)
    before = await _unread(first)
    await _notify(base, auth, "Live one")
    await _wait_unread(first, before + 1)
    await _wait_unread(second, before + 1)
    assert await first.locator("#notifications li.unread strong", has_text="Live one").count() == 1
    await first.click("#bell")
    await first.click("#read-all")
    await _wait_unread(first, 0)
    await _wait_unread(second, 0)
    assert await second.locator("#badge").is_hidden()
    if SCREENSHOTS:
        await first.screenshot(path=SCREENSHOTS / "demo-bell.png")


async def test_courier_marker_moves(browser: Any, demo_server: tuple[str, Runtime]) -> None:
    """Tracking updates move the courier marker on the map while the page watches the order."""
    base, runtime = demo_server
    from app.ops.demo_courier import drive_courier

    page = await _open_demo(browser, base)
    await page.wait_for_function("document.body.dataset.transport === 'websocket'", timeout=10_000)
    driving = asyncio.create_task(drive_courier(runtime.settings, base, steps=8, interval=0.25))
    await page.wait_for_function("document.getElementById('courier').dataset.lat !== undefined", timeout=15_000)
    position = "document.getElementById('courier').dataset.lat + ',' + document.getElementById('courier').dataset.lng"
    first = await page.evaluate(position)
    await page.wait_for_function(f"({position}) !== '{first}'", timeout=15_000)
    await asyncio.wait_for(driving, 30)
    await page.wait_for_function("document.getElementById('status').textContent === 'DELIVERED'", timeout=10_000)
    if SCREENSHOTS:
        await page.screenshot(path=SCREENSHOTS / "demo-tracking.png")


async def test_websockets_blocked_falls_back_to_sse(
    browser: Any, demo_server: tuple[str, Runtime], auth: Headers
) -> None:
    """With the WebSocket upgrade refused, the page still updates live over SSE."""
    base, _ = demo_server
    page = await browser.new_page()
    # A proxy that refuses WebSockets: every /ws is closed before it reaches the server.
    await page.route_web_socket("**/ws*", lambda ws: ws.close(code=1011, reason="blocked"))
    await page.goto(f"{base}/demo?user=customer_demo")
    await page.wait_for_function("document.body.dataset.transport === 'sse'", timeout=20_000)
    before = await _unread(page)
    await _notify(base, auth, "Over SSE")
    await _wait_unread(page, before + 1)


async def test_restart_with_memory_broker_refetches_over_rest(
    browser: Any, make_settings: Callable[..., Settings], demo_database: str
) -> None:
    """After a restart on the in-process broker (history lost), the page refetches over REST what it missed."""
    settings = make_settings(DATABASE_URL=demo_database)
    port = free_port()
    app: Litestar = create_app(settings)
    async with serving(app, settings, port) as address:
        page = await _open_demo(browser, f"http://{address}")
        await page.wait_for_function("document.body.dataset.transport === 'websocket'", timeout=10_000)
        before = await _unread(page)
    # While the server is down, another process commits a notification (its event dies with the old broker).
    restarted: Litestar = create_app(settings)
    runtime: Runtime = restarted.state.runtime
    from app.services.notifications import NotificationDraft
    from models.enums import NotificationPriority, NotificationType

    async with serving(restarted, settings, port):
        draft = NotificationDraft(
            user_id="customer_demo",
            type=NotificationType.ACCOUNT_UPDATED,
            title="While you were away",
            message="m",
            priority=NotificationPriority.LOW,
        )
        async with runtime.database.write():
            from app.services.notifications import write_notifications
            from models.notifications import OutboxEvent

            await write_notifications([draft], frozenset())
            await OutboxEvent.update({OutboxEvent.sent_at: OutboxEvent.created_at}, force=True)  # never published
        await _wait_unread(page, before + 1)


async def test_restart_with_redis_replays_missed_events(
    browser: Any, make_settings: Callable[..., Settings], demo_database: str
) -> None:
    """After a restart on Redis (history kept), the page resumes its channels and shows the events it missed."""
    if not reachable("127.0.0.1", 6379):
        unavailable("Redis is not reachable at 127.0.0.1:6379")
    prefix = unique_name("push_test_browser")
    settings = make_settings(DATABASE_URL=demo_database, REDIS_URL=REDIS_URL, REDIS_PREFIX=prefix)
    port = free_port()
    app: Litestar = create_app(settings)
    async with serving(app, settings, port) as address:
        page = await _open_demo(browser, f"http://{address}")
        await page.wait_for_function("document.body.dataset.transport === 'websocket'", timeout=10_000)
    broker = RedisBroker(REDIS_URL, prefix)
    await broker.start()
    try:
        await Publisher(broker).publish("user:customer_demo", "notification.unread_count", {"count": 42})
    finally:
        await broker.stop()
    restarted: Litestar = create_app(settings)
    async with serving(restarted, settings, port):
        await _wait_unread(page, 42)
