"""EMAIL, SMS and PUSH deliveries: real SMTP and HTTP servers started by the test, retries recorded; preferences
read at send time, escalations skipped when seen, the deliveries endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import httpx
import msgspec
import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar

from app.main import create_app
from app.platform.settings import Settings
from app.runtime import Runtime
from app.services.deliveries import MAX_ATTEMPTS
from app.services.senders import sign
from models import Notification, NotificationDelivery
from tests.asgi import lifespan_running
from tests.processes import free_port, server_process
from tests.scaling import server_env
from tests.services import REDIS_URL, reachable, unavailable, unique_name
from tests.waiting import eventually


class Mailbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


class Provider:
    """A tiny HTTP server standing in for the SMS/PUSH provider; answers ``status`` and keeps the requests."""

    def __init__(self) -> None:
        self.status = 500
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n")[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        writer.write(f"HTTP/1.1 {self.status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
def mailbox() -> Any:
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
async def provider() -> AsyncIterator[tuple[Provider, int]]:
    fake = Provider()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    yield fake, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def delivering_app(
    make_settings: Callable[..., Settings], database_url: str, mailbox: Any, provider: tuple[Provider, int]
) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    """An app with SMTP and a provider webhook configured, and a client of it."""
    settings = make_settings(
        DATABASE_URL=database_url,
        SMTP_URL=f"smtp://127.0.0.1:{mailbox[1]}",
        NOTIFY_WEBHOOK_URL=f"http://127.0.0.1:{provider[1]}/deliver",
        NOTIFY_WEBHOOK_SECRET="provider-secret",
    )
    app = create_app(settings)
    async with lifespan_running(app):
        await app.state.runtime.deliveries.stop()  # the test drives dispatch itself, step by step
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


async def _deliveries(notification_id: str) -> dict[str, dict[str, Any]]:
    rows = await NotificationDelivery.select().where(NotificationDelivery.notification == notification_id)
    return {row["channel"]: row for row in rows}


async def test_email_sms_push_delivered_and_failures_retried(
    delivering_app: tuple[Litestar, httpx.AsyncClient],
    auth: Callable[..., dict[str, str]],
    mailbox: Any,
    provider: tuple[Provider, int],
) -> None:
    """Email reaches the SMTP server; a failing provider is retried with backoff and recorded, then succeeds."""
    app, client = delivering_app
    runtime: Runtime = app.state.runtime
    fake, _ = provider
    token_headers = auth("u_mail")
    await client.get("/me", headers=token_headers)
    from app.platform.auth import mint_token
    from models.enums import Role

    with_email = mint_token(runtime.settings, "u_mail", Role.CUSTOMER, email="ada@example.com")
    await client.get("/me", headers={"Authorization": f"Bearer {with_email}"})
    body = {
        "userId": "u_mail",
        "type": "PAYMENT_FAILED",
        "title": "Payment failed",
        "message": "Card declined",
        "priority": "URGENT",
        "channels": ["IN_APP", "EMAIL", "SMS", "PUSH"],
    }
    created = (await client.post("/notifications", json=body, headers=auth("svc", "service"))).json()
    assert await runtime.deliveries.dispatch_due() == 3

    (mail,) = mailbox[0].messages
    assert mail["To"] == "ada@example.com" and mail["Subject"] == "Payment failed"
    records = await _deliveries(created["id"])
    assert records["EMAIL"]["status"] == "SENT" and records["EMAIL"]["sent_at"] is not None
    for channel in ("SMS", "PUSH"):
        assert records[channel]["status"] == "PENDING"
        assert records[channel]["attempts"] == 1 and records[channel]["last_error"] == "provider answered 500"
        assert records[channel]["next_attempt_at"] > datetime.now(UTC)
    headers, payload = fake.requests[0]
    timestamp = headers["x-signature"].split(",")[0].removeprefix("t=")
    assert headers["x-signature"] == sign("provider-secret", payload, int(timestamp))

    assert await runtime.deliveries.dispatch_due() == 0  # backing off: nothing due yet
    fake.status = 200
    await NotificationDelivery.update({NotificationDelivery.next_attempt_at: datetime.now(UTC)}).where(
        NotificationDelivery.notification == created["id"]
    )
    assert await runtime.deliveries.dispatch_due() == 2
    records = await _deliveries(created["id"])
    assert {records[channel]["status"] for channel in ("SMS", "PUSH")} == {"SENT"}
    assert {records[channel]["attempts"] for channel in ("SMS", "PUSH")} == {2}


async def test_delivery_gives_up_after_max_attempts(
    delivering_app: tuple[Litestar, httpx.AsyncClient], auth: Callable[..., dict[str, str]]
) -> None:
    """A provider that keeps failing leaves the delivery FAILED after MAX_ATTEMPTS, with the last error."""
    app, client = delivering_app
    runtime: Runtime = app.state.runtime
    await client.get("/me", headers=auth("u_fail"))
    body = {"userId": "u_fail", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m", "channels": ["SMS"]}
    created = (await client.post("/notifications", json=body, headers=auth("svc", "service"))).json()
    for _ in range(MAX_ATTEMPTS):
        await NotificationDelivery.update(
            {NotificationDelivery.next_attempt_at: datetime.now(UTC) - timedelta(seconds=1)}
        ).where(NotificationDelivery.status == "PENDING")
        await runtime.deliveries.dispatch_due()
    record = (await _deliveries(created["id"]))["SMS"]
    assert record["status"] == "FAILED" and record["attempts"] == MAX_ATTEMPTS
    assert record["last_error"] == "provider answered 500"


async def test_unconfigured_channel_is_skipped_not_failed(client: httpx.AsyncClient, auth: Callable[..., Any]) -> None:
    """Without SMTP_URL or a provider URL, EMAIL/SMS/PUSH deliveries are recorded as SKIPPED."""
    await client.get("/me", headers=auth("u_skip"))
    body = {"userId": "u_skip", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m", "channels": ["EMAIL", "PUSH"]}
    created = (await client.post("/notifications", json=body, headers=auth("svc", "service"))).json()
    records = await _deliveries(created["id"])
    assert {channel: row["status"] for channel, row in records.items()} == {"EMAIL": "SKIPPED", "PUSH": "SKIPPED"}
    assert "not configured" in records["EMAIL"]["last_error"]


async def _outcomes(client: httpx.AsyncClient, auth: Callable[..., Any], notification_id: str) -> list[dict[str, Any]]:
    """The items of ``GET /notifications/{id}/deliveries``, asked by a service."""
    response = await client.get(f"/notifications/{notification_id}/deliveries", headers=auth("svc", "service"))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _by_channel(items: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    return {item["channel"]: (item["outcome"], item["attempts"]) for item in items}


async def _sign_in_with_email(client: httpx.AsyncClient, runtime: Runtime, user_id: str) -> dict[str, str]:
    """Sign in with an email claim; answers the headers to keep using (a token without one would clear it)."""
    from app.platform.auth import mint_token
    from models.enums import Role

    token = mint_token(runtime.settings, user_id, Role.CUSTOMER, email=f"{user_id}@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/me", headers=headers)).status_code == 200
    return headers


async def test_deliveries_endpoint_roles_and_shape(client: httpx.AsyncClient, auth: Callable[..., Any]) -> None:
    """Admins and services read a notification's deliveries ({channel, outcome, attempts, at}); others get 403; an
    unknown id is 404; a notification for the bell only has none."""
    await client.get("/me", headers=auth("u_records"))
    body = {"userId": "u_records", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m"}
    created = (
        await client.post(
            "/notifications", json={**body, "channels": ["EMAIL", "IN_APP", "PUSH"]}, headers=auth("svc", "service")
        )
    ).json()
    for role, status in (("customer", 403), ("vendor", 403), ("admin", 200), ("service", 200)):
        response = await client.get(f"/notifications/{created['id']}/deliveries", headers=auth("u_records", role))
        assert response.status_code == status, (role, response.text)
    items = await _outcomes(client, auth, created["id"])
    assert [set(item) for item in items] == [{"channel", "outcome", "attempts", "at"}] * 2
    assert [(item["channel"], item["outcome"], item["attempts"]) for item in items] == [
        ("EMAIL", "skipped_unconfigured", 0),
        ("PUSH", "skipped_unconfigured", 0),
    ]
    assert items[0]["at"].endswith("Z")
    missing = await client.get("/notifications/ntf_nope/deliveries", headers=auth("admin", "admin"))
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    bell_only = (await client.post("/notifications", json=body, headers=auth("svc", "service"))).json()
    assert await _outcomes(client, auth, bell_only["id"]) == []


async def test_turned_off_media_are_skipped_at_send_time(
    delivering_app: tuple[Litestar, httpx.AsyncClient],
    auth: Callable[..., dict[str, str]],
    mailbox: Any,
    provider: tuple[Provider, int],
) -> None:
    """Preferences changed after creation decide at send time: a type's own setting beats the channel's; what is
    off is recorded skipped_preference and never reaches the SMTP server or the provider."""
    app, client = delivering_app
    runtime: Runtime = app.state.runtime
    fake, _ = provider
    fake.status = 200
    user_headers = await _sign_in_with_email(client, runtime, "u_prefs_send")
    everything = ["IN_APP", "EMAIL", "SMS", "PUSH"]
    body = {"userId": "u_prefs_send", "title": "t", "message": "m", "channels": everything}
    service = auth("svc", "service")
    account = (await client.post("/notifications", json={**body, "type": "ACCOUNT_UPDATED"}, headers=service)).json()
    order = (await client.post("/notifications", json={**body, "type": "ORDER_CREATED"}, headers=service)).json()
    change = {"channels": {"EMAIL": False, "SMS": False}, "types": {"ACCOUNT_UPDATED": {"EMAIL": True, "PUSH": False}}}
    changed = await client.patch("/notifications/preferences", json=change, headers=user_headers)
    assert changed.status_code == 200

    assert await runtime.deliveries.dispatch_due() == 6
    assert _by_channel(await _outcomes(client, auth, account["id"])) == {
        "EMAIL": ("sent", 1),  # the type's own "on" beats the channel's "off"
        "SMS": ("skipped_preference", 0),
        "PUSH": ("skipped_preference", 0),  # the type's own "off" beats the channel's "on"
    }
    assert _by_channel(await _outcomes(client, auth, order["id"])) == {
        "EMAIL": ("skipped_preference", 0),
        "SMS": ("skipped_preference", 0),
        "PUSH": ("sent", 1),
    }
    (mail,) = mailbox[0].messages
    assert mail["To"] == "u_prefs_send@example.com"
    assert [msgspec.json.decode(payload)["notificationId"] for _, payload in fake.requests] == [order["id"]]


@pytest.mark.parametrize("action", ["seen", "read"])
async def test_escalation_seen_before_it_is_due_is_skipped(
    delivering_app: tuple[Litestar, httpx.AsyncClient],
    auth: Callable[..., dict[str, str]],
    mailbox: Any,
    provider: tuple[Provider, int],
    action: str,
) -> None:
    """EMAIL/SMS/PUSH of a notification with escalateAfterSeconds wait that long; seen or read by then, they are
    skipped_seen and nothing is sent."""
    app, client = delivering_app
    runtime: Runtime = app.state.runtime
    fake, _ = provider
    fake.status = 200
    user = f"u_escalate_{action}"
    user_headers = await _sign_in_with_email(client, runtime, user)
    body = {"userId": user, "type": "PAYMENT_FAILED", "priority": "URGENT", "title": "t", "message": "m"}
    body |= {"channels": ["IN_APP", "EMAIL", "SMS", "PUSH"], "escalateAfterSeconds": 1}
    created = (await client.post("/notifications", json=body, headers=auth("svc", "service"))).json()
    records = await _deliveries(created["id"])
    row = await Notification.select(Notification.created_at).where(Notification.id == created["id"]).first()
    assert row is not None
    due = row["created_at"] + timedelta(seconds=1)
    assert {channel: row["next_attempt_at"] for channel, row in records.items()} == dict.fromkeys(records, due)
    change = {"ids": [created["id"]], "action": action}
    assert (await client.patch("/notifications/bulk", json=change, headers=user_headers)).json() == {"updated": 1}

    assert await eventually(runtime.deliveries.dispatch_due, within=10, what="the escalation fell due") == 3
    assert _by_channel(await _outcomes(client, auth, created["id"])) == dict.fromkeys(
        ("EMAIL", "SMS", "PUSH"), ("skipped_seen", 0)
    )
    assert mailbox[0].messages == [] and fake.requests == []


async def test_escalation_bounds(client: httpx.AsyncClient, auth: Callable[..., Any]) -> None:
    """escalateAfterSeconds outside 1..86400 is a 400 naming it."""
    await client.get("/me", headers=auth("u_bounds"))
    body = {"userId": "u_bounds", "type": "ACCOUNT_UPDATED", "title": "t", "message": "m", "channels": ["SMS"]}
    for seconds in (0, 86401, 1.5):
        response = await client.post(
            "/notifications", json={**body, "escalateAfterSeconds": seconds}, headers=auth("svc", "service")
        )
        assert response.status_code == 400, response.text
        assert [error["field"] for error in response.json()["errors"]] == ["escalateAfterSeconds"]


def test_implied_urgent_notifications_escalate_after_120_seconds() -> None:
    """Payment and payout failures (URGENT) go on every medium, escalating after 120 s; the others stay in-app."""
    from app.services.notification_catalog import payment_changed, payout_changed
    from models.enums import DeliveryMedium, PaymentStatus

    (failed,) = payment_changed("ord_1", "u_1", PaymentStatus.FAILED, 100, "USD")
    (payout_failed,) = payout_changed("v_1", "po_1", False, 100, "USD")
    for draft in (failed, payout_failed):
        assert draft.media == tuple(DeliveryMedium) and draft.escalate_after_seconds == 120
    (succeeded,) = payment_changed("ord_1", "u_1", PaymentStatus.SUCCEEDED, 100, "USD")
    assert succeeded.media == (DeliveryMedium.IN_APP,) and succeeded.escalate_after_seconds is None


async def test_escalation_not_seen_is_sent_once_by_three_processes(
    database_url: str,
    token_for: Callable[..., str],
    auth: Callable[..., dict[str, str]],
    mailbox: Any,
    provider: tuple[Provider, int],
) -> None:
    """Three server processes share the deliveries of an escalation nobody saw: each medium is sent exactly once."""
    if not reachable("127.0.0.1", 6379):
        unavailable("Redis is not reachable at 127.0.0.1:6379")
    fake, provider_port = provider
    fake.status = 200
    env = server_env(
        REDIS_URL,
        database_url,
        unique_name("escalate"),
        SMTP_URL=f"smtp://127.0.0.1:{mailbox[1]}",
        NOTIFY_WEBHOOK_URL=f"http://127.0.0.1:{provider_port}/deliver",
        NOTIFY_WEBHOOK_SECRET="provider-secret",
    )
    user = f"u_escalate_3p_{database_url[:6]}"
    with (
        server_process(env, host="127.0.0.2") as first,
        server_process(env, host="127.0.0.3") as second,
        server_process(env, host="127.0.0.4") as third,
    ):
        async with httpx.AsyncClient() as http:
            email_token = token_for(user, email=f"{user}@example.com")
            assert (
                await http.get(f"{first}/me", headers={"Authorization": f"Bearer {email_token}"})
            ).status_code == 200
            body = {"userId": user, "type": "ORDER_STATUS_UPDATED", "title": "Shipped", "message": "m"}
            body |= {"channels": ["IN_APP", "EMAIL", "SMS", "PUSH"], "escalateAfterSeconds": 2}
            created = (await http.post(f"{second}/notifications", json=body, headers=auth("svc", "service"))).json()
            url = f"{third}/notifications/{created['id']}/deliveries"

            async def all_final() -> list[dict[str, Any]] | None:
                items: list[dict[str, Any]] = (await http.get(url, headers=auth("svc", "service"))).json()["items"]
                return items if all(item["outcome"] != "retrying" for item in items) else None

            items = await eventually(all_final, within=30, interval=0.1, what="every delivery final")
            # attempts counts claims: 1 means no second process ever claimed the delivery.
            assert _by_channel(items) == dict.fromkeys(("EMAIL", "SMS", "PUSH"), ("sent", 1))
            assert datetime.fromisoformat(items[0]["at"]) >= datetime.fromisoformat(created["createdAt"]) + timedelta(
                seconds=2
            )
    assert len(mailbox[0].messages) == 1
    assert sorted(msgspec.json.decode(payload)["channel"] for _, payload in fake.requests) == ["PUSH", "SMS"]


async def test_failed_payment_webhook_escalates_after_120_seconds(
    delivering_app: tuple[Litestar, httpx.AsyncClient], auth: Callable[..., dict[str, str]]
) -> None:
    """A payment.failed webhook implies an URGENT notification in the bell at once, its EMAIL/SMS/PUSH due 120 s on."""
    from tests.marketplace import open_store, payment_event, place

    _, client = delivering_app
    store, (product, _) = await open_store(client, auth, "v_escalate_webhook")
    order = await place(client, auth, "c_escalate_webhook", store, [(product, 1)])
    assert (await payment_event(client, order, "failed", reason="card declined")).status_code == 200
    row = (
        await Notification.select()
        .where((Notification.user == "c_escalate_webhook") & (Notification.type == "PAYMENT_FAILED"))
        .first()
    )
    assert row is not None and row["priority"] == "URGENT" and row["escalate_after_seconds"] == 120
    assert row["sent_at"] is not None and row["archived_at"] is None
    records = await _deliveries(row["id"])
    assert sorted(records) == ["EMAIL", "PUSH", "SMS"]
    assert {record["next_attempt_at"] for record in records.values()} == {row["sent_at"] + timedelta(seconds=120)}


async def test_escalation_of_a_notification_kept_out_of_the_bell_is_sent_at_once(
    delivering_app: tuple[Litestar, httpx.AsyncClient], auth: Callable[..., dict[str, str]], mailbox: Any
) -> None:
    """With IN_APP off the notification is stored seen, so waiting for the user to see it makes no sense: its email
    is due at once and sent, not skipped_seen."""
    app, client = delivering_app
    runtime: Runtime = app.state.runtime
    user = "u_muted_escalation"
    user_headers = await _sign_in_with_email(client, runtime, user)
    muted = await client.put("/notifications/preferences", json={"channels": {"IN_APP": False}}, headers=user_headers)
    assert muted.status_code == 200
    body = {"userId": user, "type": "ACCOUNT_UPDATED", "title": "t", "message": "m", "channels": ["IN_APP", "EMAIL"]}
    created = await client.post(
        "/notifications", json={**body, "escalateAfterSeconds": 3600}, headers=auth("svc", "service")
    )
    assert created.json()["isSeen"] is True and created.json()["archivedAt"] is not None
    assert await runtime.deliveries.dispatch_due() == 1
    assert _by_channel(await _outcomes(client, auth, created.json()["id"])) == {"EMAIL": ("sent", 1)}
    assert len(mailbox[0].messages) == 1
