"""The demo's inbox bell in a real Chromium (SPEC "The inbox", issue 16): the badge counts the unseen, from the
server and live; opening the bell marks all seen; a click reads one; archive removes one; other tabs follow through
notification.updated; the same over SSE and REST polling; and the preferences panel, or its note where the server
has no preferences endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from playwright.async_api import expect

from app.main import create_app
from app.ops.seeding import SeedPlan, run_seed
from app.platform.settings import Settings
from app.runtime import Runtime
from app.services.notifications import NotificationDraft, write_notifications
from models.enums import NotificationPriority, NotificationType
from models.notifications import OutboxEvent
from tests.asgi import lifespan_running
from tests.live import serving
from tests.processes import free_port
from tests.waiting import eventually

pytestmark = pytest.mark.browser
Headers = Callable[..., dict[str, str]]
USER = "customer_demo"
WAIT = 15_000  # milliseconds: a bound on each wait for a condition, never a sleep


@pytest.fixture
async def demo_settings(make_settings: Callable[..., Settings], tmp_path: Any) -> Settings:
    """Settings on a fresh SQLite file with the demo data `make run` seeds."""
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    await run_seed(url, SeedPlan.sized(orders=20, notifications=10), show_progress=False)
    return make_settings(DATABASE_URL=url)


@pytest.fixture
async def demo_base(demo_settings: Settings) -> AsyncIterator[str]:
    """A live server on ``demo_settings``."""
    settings = demo_settings
    app: Litestar = create_app(settings)
    async with serving(app, settings) as address:
        yield f"http://{address}"


@pytest.fixture
async def rest(demo_base: str, auth: Headers) -> AsyncIterator[Callable[..., Any]]:
    """``await rest(method, path, json=?, as_service=False)``: the server's answer, as the demo user or a service."""
    async with httpx.AsyncClient(base_url=demo_base) as http:

        async def call(method: str, path: str, json: Any = None, as_service: bool = False) -> httpx.Response:
            headers = auth("svc", "service") if as_service else auth(USER)
            return await http.request(method, path, json=json, headers=headers)

        yield call


async def _counts(rest: Callable[..., Any]) -> dict[str, int]:
    response = await rest("GET", "/notifications/counts")
    assert response.status_code == 200
    return dict(response.json())


async def _listed_ids(rest: Callable[..., Any], query: str = "") -> list[str]:
    response = await rest("GET", f"/notifications?limit=100{query}")
    assert response.status_code == 200
    return [item["id"] for item in response.json()["items"]]


async def _notify(rest: Callable[..., Any], title: str) -> dict[str, Any]:
    body = {"userId": USER, "type": "ACCOUNT_UPDATED", "title": title, "message": "from the test"}
    response = await rest("POST", "/notifications", json=body, as_service=True)
    assert response.status_code == 201
    return dict(response.json())


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught errors of the test's pages (a failed fetch the page did not handle shows up here)."""
    return []


@pytest.fixture(autouse=True)
async def _no_page_errors(page_errors: list[str]) -> AsyncIterator[None]:
    yield
    assert page_errors == []


async def _new_page(browser: Any, errors: list[str]) -> Any:
    page = await browser.new_page()
    page.on("pageerror", lambda error: errors.append(str(error) + (error.stack or "")))
    return page


async def _open_demo(browser: Any, errors: list[str], base: str, transport: str = "websocket", query: str = "") -> Any:
    page = await _new_page(browser, errors)
    await page.goto(f"{base}/demo?user={USER}{query}")
    await page.wait_for_function(f"document.body.dataset.transport === '{transport}'", timeout=WAIT)
    await page.wait_for_function("document.body.dataset.unseen !== undefined", timeout=WAIT)
    return page


async def _expect_unseen(page: Any, count: int) -> None:
    await page.wait_for_function(f"document.body.dataset.unseen === '{count}'", timeout=WAIT)
    if count:
        await expect(page.locator("#badge")).to_have_text(str(count))
        await expect(page.locator("#badge")).to_be_visible()
        await expect(page.locator("#bell")).to_have_attribute("aria-label", f"Notifications, {count} new")
    else:
        await expect(page.locator("#badge")).to_be_hidden()


def _item(page: Any, notification_id: str) -> Any:
    return page.locator(f"#notifications li[data-id='{notification_id}']")


async def test_badge_counts_unseen_live_and_opening_the_bell_sees_all(
    browser: Any, demo_base: str, rest: Callable[..., Any], page_errors: list[str]
) -> None:
    """The badge is the server's unseen count (not unread), a new notification bumps it live, opening zeroes it."""
    # One unread notification seen but not read: unseen and unread then differ, so the badge must say which.
    seen_only = await _notify(rest, "Seen, not read")
    await _notify(rest, "Neither")
    response = await rest("PATCH", "/notifications/bulk", json={"ids": [seen_only["id"]], "action": "seen"})
    assert response.status_code == 200 and response.json() == {"updated": 1}
    counts = await _counts(rest)
    assert counts["unseen"] == counts["unread"] - 1
    page = await _open_demo(browser, page_errors, demo_base)
    await _expect_unseen(page, counts["unseen"])
    await expect(page.locator("#unread-summary")).to_have_text(f"{counts['unread']} unread")

    created = await _notify(rest, "Live inbox one")
    await _expect_unseen(page, counts["unseen"] + 1)
    await expect(_item(page, created["id"]).locator("strong")).to_have_text("Live inbox one")
    await expect(_item(page, created["id"])).to_have_attribute("data-seen", "false")

    await page.click("#bell")
    await expect(page.locator("#bell")).to_have_attribute("aria-expanded", "true")
    await _expect_unseen(page, 0)
    await expect(_item(page, created["id"])).to_have_attribute("data-seen", "true")  # through notification.updated
    after = await _counts(rest)
    assert after["unseen"] == 0 and after["unread"] == counts["unread"] + 1  # seen is not read

    # While the list is open, what arrives is shown, so it is seen at once.
    shown = await _notify(rest, "Arrives while open")
    await expect(_item(page, shown["id"])).to_have_attribute("data-seen", "true")
    await _expect_unseen(page, 0)
    assert (await _counts(rest))["unseen"] == 0


async def test_click_reads_and_archive_removes_in_every_tab(
    browser: Any, demo_base: str, rest: Callable[..., Any], page_errors: list[str]
) -> None:
    """A click marks one read and archive removes it, for the server and, live, for a second tab."""
    first, second = await _open_demo(browser, page_errors, demo_base), await _open_demo(browser, page_errors, demo_base)
    created = await _notify(rest, "Read me")
    for page in (first, second):
        await expect(_item(page, created["id"])).to_have_class("unread")
    before = await _counts(rest)

    await first.click("#bell")
    await _item(first, created["id"]).locator("button.open").click()
    for page in (first, second):
        await expect(_item(page, created["id"])).not_to_have_class("unread")
    response = await rest("GET", "/notifications?limit=100")
    listed = {item["id"]: item for item in response.json()["items"]}
    assert listed[created["id"]]["isRead"] is True and listed[created["id"]]["isSeen"] is True
    await expect(first.locator("#unread-summary")).to_have_text(
        f"{before['unread'] - 1} unread" if before["unread"] > 1 else ""
    )

    archive = _item(first, created["id"]).locator("button.archive")
    await expect(archive).to_have_attribute("aria-label", "Archive: Read me")
    await archive.click()
    for page in (first, second):
        await expect(_item(page, created["id"])).to_have_count(0)
    assert created["id"] not in await _listed_ids(rest)
    assert created["id"] in await _listed_ids(rest, "&archived=true")
    assert (await _counts(rest))["total"] == before["total"] - 1


async def test_badge_over_sse(browser: Any, demo_base: str, rest: Callable[..., Any], page_errors: list[str]) -> None:
    """With WebSockets refused, the badge still moves live: SSE delivers notification.counts and .updated too."""
    page = await _new_page(browser, page_errors)
    await page.route_web_socket("**/ws*", lambda ws: ws.close(code=1011, reason="blocked"))
    await page.goto(f"{demo_base}/demo?user={USER}")
    await page.wait_for_function("document.body.dataset.transport === 'sse'", timeout=20_000)
    unseen = (await _counts(rest))["unseen"]
    await _expect_unseen(page, unseen)
    created = await _notify(rest, "Over SSE")
    await _expect_unseen(page, unseen + 1)
    assert (await rest("PATCH", f"/notifications/{created['id']}/archive")).status_code == 200
    await expect(_item(page, created["id"])).to_have_count(0)
    await _expect_unseen(page, unseen)


async def test_badge_while_polling(
    browser: Any, demo_base: str, rest: Callable[..., Any], page_errors: list[str]
) -> None:
    """In the last fallback the client polls the counts (If-None-Match) and the badge follows them."""
    page = await _open_demo(browser, page_errors, demo_base, "polling", "&transports=polling")
    unseen = (await _counts(rest))["unseen"]
    await _expect_unseen(page, unseen)
    created = await _notify(rest, "Polled")
    await _expect_unseen(page, unseen + 1)
    await expect(_item(page, created["id"])).to_have_count(1)  # the list is refetched when the counts move


async def test_preferences_panel(
    browser: Any, demo_base: str, rest: Callable[..., Any], page_errors: list[str]
) -> None:
    """The panel's switches follow the server's preferences and PATCH a change; without the endpoint, a note."""
    page = await _open_demo(browser, page_errors, demo_base)
    await page.wait_for_function("document.body.dataset.preferences !== undefined", timeout=WAIT)
    await page.click("#bell")
    await page.click("#prefs-toggle")
    await expect(page.locator("#prefs-toggle")).to_have_attribute("aria-expanded", "true")
    served = await rest("GET", "/notifications/preferences")
    if served.status_code == 404:
        assert await page.evaluate("document.body.dataset.preferences") == "unavailable"
        await expect(page.locator("#prefs-form")).to_be_hidden()
        await expect(page.locator("#prefs-note")).to_have_text("Preferences are not available on this server.")
        return
    assert served.status_code == 200
    assert await page.evaluate("document.body.dataset.preferences") == "ready"
    await expect(page.locator("#prefs-form")).to_be_visible()
    channels = served.json()["channels"]
    for name, on in channels.items():
        switch = page.locator(f"#prefs-form input[name='{name}']")
        await (expect(switch).to_be_checked() if on else expect(switch).not_to_be_checked())
    email = page.locator("#prefs-form input[name='EMAIL']")
    await email.click()
    await expect(page.locator("#prefs-note")).to_contain_text("Saved")

    # "Saved" is shown once the PATCH answered: the server has the change by then.
    assert (await rest("GET", "/notifications/preferences")).json()["channels"]["EMAIL"] is not channels["EMAIL"]
    await expect(email).to_be_checked(checked=not channels["EMAIL"])


async def test_counts_refetched_after_reconnect_with_if_none_match(
    browser: Any, demo_settings: Settings, page_errors: list[str]
) -> None:
    """After a reconnect the counts are fetched again: a 304 when nothing changed, the new ones when something did.

    The in-process broker forgets its history on a restart, so what was written while the server was down is never
    pushed: only the refetch brings it.
    """
    port = free_port()
    counts_answers: list[tuple[int, str | None]] = []
    async with serving(create_app(demo_settings), demo_settings, port) as address:
        page = await _open_demo(browser, page_errors, f"http://{address}")
        unseen = int(await page.evaluate("document.body.dataset.unseen"))
        page.on(
            "response",
            lambda r: (
                counts_answers.append((r.status, r.request.headers.get("if-none-match")))
                if r.url.endswith("/notifications/counts")
                else None
            ),
        )
    async with serving(create_app(demo_settings), demo_settings, port):
        # Sent with the ETag it held, and answered 304: the counts did not change.
        await eventually(
            lambda: any(status == 304 and etag for status, etag in counts_answers), what="a 304", within=WAIT / 1000
        )
    # While the server is down another process commits a notification, its events marked sent: never pushed.
    writer: Litestar = create_app(demo_settings)
    runtime: Runtime = writer.state.runtime
    draft = NotificationDraft(
        user_id=USER,
        type=NotificationType.ACCOUNT_UPDATED,
        title="While you were away",
        message="m",
        priority=NotificationPriority.LOW,
    )
    async with lifespan_running(writer), runtime.database.write():
        [missed] = await write_notifications([draft], frozenset())
        await OutboxEvent.update({OutboxEvent.sent_at: OutboxEvent.created_at}, force=True)
    async with serving(create_app(demo_settings), demo_settings, port):
        await _expect_unseen(page, unseen + 1)
        await expect(_item(page, missed.id)).to_have_count(1)  # the list came back by onResync


START_COUNTING_CLIENT = """async ({ token, channel }) => {
  const { PushClient } = await import("/static/push-client.js");
  window.counts = [];
  window.types = [];
  window.statuses = [];
  window.client = new PushClient({
    getToken: async () => token,
    onStatus: (status) => window.statuses.push(status),
    onCounts: (counts) => window.counts.push(counts),
  });
  window.client.on(channel, (event) => window.types.push(event.type));
  window.client.start();
}"""


async def test_push_client_counts_api_keeps_the_newest(
    browser: Any, demo_base: str, rest: Callable[..., Any], token_for: Callable[..., str], page_errors: list[str]
) -> None:
    """push-client.js alone: onCounts from REST at start, then from events; a REST answer older than an event is
    dropped; notification.counts and notification.updated reach on() listeners too."""
    page = await _new_page(browser, page_errors)
    await page.goto(f"{demo_base}/health")
    await page.evaluate(START_COUNTING_CLIENT, {"token": token_for(USER), "channel": f"user:{USER}"})
    await page.wait_for_function("window.statuses.includes('websocket') && window.counts.length > 0", timeout=WAIT)
    start = await _counts(rest)
    assert await page.evaluate("window.counts.at(-1)") == start == await page.evaluate("window.client.counts")

    # An event moves the counts: the client forgets its ETag, so its next refresh gets a full answer (no 304).
    await _notify(rest, "Moves the counts")
    await page.wait_for_function(f"window.client.counts.unseen === {start['unseen'] + 1}", timeout=WAIT)

    # A refresh whose answer (the server's counts then) is held until a newer event has arrived.
    fetched, release = asyncio.Event(), asyncio.Event()
    statuses: list[int] = []

    async def hold(route: Any) -> None:
        answer = await route.fetch()
        statuses.append(answer.status)
        fetched.set()
        await release.wait()
        await route.fulfill(response=answer)

    await page.route("**/notifications/counts", hold)
    await page.evaluate("() => { window.refreshed = window.client.refreshCounts(); }")  # not awaited
    await asyncio.wait_for(fetched.wait(), 10)
    created = await _notify(rest, "Newer than the held answer")
    await page.wait_for_function(f"window.client.counts.unseen === {start['unseen'] + 2}", timeout=WAIT)
    release.set()
    newest = await _counts(rest)
    assert newest["unseen"] == start["unseen"] + 2
    assert statuses == [200]  # the held answer was a full one, with the older counts
    assert await page.evaluate("window.refreshed") == newest  # it answers what it knows, not what it was sent
    assert await page.evaluate("window.counts.at(-1)") == newest
    await page.unroute("**/notifications/counts")

    assert (await rest("PATCH", f"/notifications/{created['id']}/read")).status_code == 200
    await page.wait_for_function(f"window.client.counts.unread === {start['unread'] + 1}", timeout=WAIT)
    types = await page.evaluate("window.types")
    assert {"notification.created", "notification.counts", "notification.updated"} <= set(types)
